"""The inventory service: answers GET /healthz and GET /items on port 8080."""
import http.server
import json


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok" if self.path == "/healthz" else json.dumps({"items": []}).encode()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)


http.server.HTTPServer(("", 8080), Handler).serve_forever()
