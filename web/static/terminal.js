// ckslab web UI: the terminal pane. xterm.js (vendored, see vendor/xterm/VERSIONS.txt) draws the
// screen; a WebSocket to /terminal/<page> carries the shell's bytes. The CSRF token goes as a
// subprotocol (a WebSocket cannot carry other headers); the server answers "ckslab-terminal".
"use strict";

(function () {
  const card = document.getElementById("terminal");
  const screen = document.getElementById("terminal-screen");
  if (!card || !screen || !card.dataset.page || !window.Terminal) return;
  const status = document.getElementById("terminal-status");
  const reconnect = document.getElementById("terminal-reconnect");
  const nodeButton = document.getElementById("terminal-node");
  const token = document.querySelector('meta[name="csrf-token"]').content;
  const encoder = new TextEncoder();

  const term = new window.Terminal({
    cursorBlink: true,
    fontFamily: '"DejaVu Sans Mono", ui-monospace, Menlo, Consolas, monospace',
    fontSize: 14,
    scrollback: 5000,
    theme: { background: "#0b1020" },
  });
  const fit = new window.FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(screen);
  fit.fit();

  let socket = null;

  function setStatus(text) {
    status.textContent = text;
    card.dataset.state = text;
  }

  function sendSize() {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ cols: term.cols, rows: term.rows }));
    }
  }

  function send(text) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(encoder.encode(text));
  }

  function connect() {
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/terminal/" + card.dataset.page;
    socket = new WebSocket(url, ["ckslab-terminal", "csrf." + token]);
    socket.binaryType = "arraybuffer";
    setStatus("connecting…");
    reconnect.hidden = true;
    socket.onopen = () => {
      setStatus("connected");
      sendSize();
      term.focus();
    };
    socket.onmessage = (event) => {
      if (event.data instanceof ArrayBuffer) term.write(new Uint8Array(event.data));
    };
    socket.onclose = (event) => {
      setStatus(event.reason ? "closed: " + event.reason : "closed");
      reconnect.hidden = false;
      socket = null;
    };
  }

  term.onData((data) => send(data));
  term.onBinary((data) => {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff));
    }
  });
  term.onResize(() => sendSize());
  new ResizeObserver(() => fit.fit()).observe(screen);
  reconnect.addEventListener("click", () => {
    term.reset();
    connect();
  });
  if (nodeButton) {
    nodeButton.addEventListener("click", () => {
      send("node-shell\r");
      term.focus();
    });
  }
  // Lets scripts (and the end-to-end test) type into the terminal as a learner would.
  window.ckslabTerminal = { term, send };
  connect();
})();
