//! The web UI's router, driven with `oneshot` against a fake backend (no cluster): every route,
//! the Host/CSRF/busy rejections, streamed grading, the hint ladder, exam mode, and page times.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

mod common;

use ckslab::history::History;
use ckslab::lab::Lab;
use ckslab::scenario::Catalog;
use ckslab::web::terminal::TerminalPolicy;
use ckslab::web::{AppState, router};
use common::fake_backend::FakeBackend;

const PORT: u16 = 4242;
const HOST: &str = "127.0.0.1:4242";
const SECRET: &str = "super-secret-bearer-token-0123";
/// Server time a page may take.
const PAGE_BUDGET: Duration = Duration::from_millis(50);

// ---------------------------------------------------------------------------------------------
// Fixture: two tiny scenarios, one runnable here, one needing AppArmor.

const DEMO: &str = r#"
id: demo-file
title: Lock down the demo config
domain: cluster-hardening
competencies: [rbac]
difficulty: easy
minutes: 5
params:
  path: /etc/demo/config.yaml
task: |
  The file `{{ path }}` on the control plane is world-readable and enables the demo.

  1. Make it readable by its owner only.
  2. Set `enabled: false`.

  ```
  chmod 600 {{ path }}
  ```
  <script>alert("owned")</script>
setup:
  - write-file:
      path: /etc/demo/slow.yaml
      content: "ok: true\n"
break:
  - write-file:
      path: "{{ path }}"
      content: "enabled: true\n"
      mode: 420
checks:
  - id: mode
    description: The config is readable by its owner only
    hint: ls -l /etc/demo on the control-plane node
    node-file:
      path: "{{ path }}"
      max-mode: 384
  - id: disabled
    description: The demo is disabled
    hint: the enabled key of the config
    node-file:
      path: "{{ path }}"
      fields:
        - path: $.enabled
          equals: false
  - id: slow
    description: A slow check finishes last
    node-file:
      path: /etc/demo/slow.yaml
hints:
  - Look at the file's mode.
  - "chmod 600 and edit the file. <script>alert('hint')</script>"
solutions:
  - name: chmod-and-edit
    description: Write the file back, disabled, owner-only.
    steps:
      - write-file:
          path: "{{ path }}"
          content: "enabled: false\n"
          mode: 384
"#;

const APPARMOR: &str = r#"
id: needs-apparmor
title: Confine a pod with AppArmor
domain: system-hardening
competencies: [kernel-hardening]
difficulty: medium
minutes: 10
requires: [apparmor]
task: Load the profile.
checks:
  - id: profile
    description: The profile file exists
    node-file:
      path: /etc/apparmor.d/demo
solutions:
  - name: write
    steps:
      - write-file:
          path: /etc/apparmor.d/demo
          content: "profile demo {}\n"
"#;

struct Harness {
    app: Router,
    state: AppState,
    backend: Arc<FakeBackend>,
    _dir: tempfile::TempDir,
}

fn harness() -> Harness {
    harness_on(PORT)
}

/// A harness whose state believes it listens on `port` (the Host check names it).
fn harness_on(port: u16) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let scenarios = dir.path().join("scenarios");
    for (folder, text) in [("cluster-hardening/demo-file", DEMO), ("system-hardening/needs-apparmor", APPARMOR)] {
        std::fs::create_dir_all(scenarios.join(folder)).unwrap();
        std::fs::write(scenarios.join(folder).join("scenario.yaml"), text).unwrap();
    }
    let catalog = Catalog::from_dir(&scenarios).unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, format!("users:\n- name: admin\n  user:\n    token: {SECRET}\n")).unwrap();
    let backend = Arc::new(FakeBackend::new(kubeconfig));
    let home = dir.path().join("home");
    let lab = Lab::new(backend.clone(), &home);
    let history = History::open(&home).unwrap();
    let state = AppState::with_history(lab, catalog, &home, port, history).unwrap();
    Harness { app: router(state.clone()), state, backend, _dir: dir }
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).header(header::HOST, HOST).body(Body::empty()).unwrap()
}

fn post(uri: &str, token: &str) -> Request<Body> {
    Request::post(uri).header(header::HOST, HOST).header("x-csrf-token", token).body(Body::empty()).unwrap()
}

fn post_form(uri: &str, form: &str) -> Request<Body> {
    Request::post(uri)
        .header(header::HOST, HOST)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_string()))
        .unwrap()
}

impl Harness {
    async fn send(&self, request: Request<Body>) -> Response<Body> {
        self.app.clone().oneshot(request).await.unwrap()
    }

    /// Sends and reads the whole body, asserting the server answered within the page budget.
    async fn page(&self, uri: &str) -> (StatusCode, String) {
        let started = Instant::now();
        let response = self.send(get(uri)).await;
        let status = response.status();
        let body = text(response).await;
        let took = started.elapsed();
        eprintln!("{uri}: {took:?}");
        assert!(took < PAGE_BUDGET, "{uri} took {took:?}");
        (status, body)
    }

    async fn ok_page(&self, uri: &str) -> String {
        let (status, body) = self.page(uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        assert!(!body.contains(SECRET), "{uri} shows the kubeconfig's token");
        body
    }

    fn token(&self) -> String {
        self.state.csrf_token().to_string()
    }

    async fn post_ok(&self, uri: &str) -> (StatusCode, serde_json::Value) {
        let response = self.send(post(uri, &self.token())).await;
        let status = response.status();
        let body = text(response).await;
        assert!(status.is_success(), "{uri}: {status} {body}");
        (status, serde_json::from_str(&body).unwrap_or(serde_json::Value::Null))
    }

    /// Polls /api/job until the operation finished; returns it.
    async fn wait_job(&self) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let job = json(self.send(get("/api/job")).await).await["job"].clone();
            if job["running"] == false {
                return job;
            }
            assert!(Instant::now() < deadline, "the job did not finish: {job}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Posts a check and collects its events, with when each arrived.
    async fn check(&self, uri: &str) -> Vec<(String, serde_json::Value, Duration)> {
        let started = Instant::now();
        let response = self.send(post(uri, &self.token())).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/event-stream"));
        let mut body = response.into_body();
        let mut events = Vec::new();
        let mut buffer = String::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.unwrap();
            let Some(data) = frame.data_ref() else { continue };
            buffer.push_str(std::str::from_utf8(data).unwrap());
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                let mut name = String::new();
                let mut payload = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        payload.push_str(v.trim_start());
                    }
                }
                if !name.is_empty() {
                    events.push((name, serde_json::from_str(&payload).unwrap(), started.elapsed()));
                }
            }
        }
        events
    }
}

/// Undoes tera's HTML escaping (it escapes `/` too).
fn unescape(html: &str) -> String {
    html.replace("&#x2F;", "/")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

async fn text(response: Response<Body>) -> String {
    String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

async fn json(response: Response<Body>) -> serde_json::Value {
    serde_json::from_str(&text(response).await).unwrap()
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_page_renders_fast_with_the_csrf_meta_and_no_secrets() {
    let h = harness();
    h.state.refresh_cluster().await;
    h.state.set_doctor(vec![ckslab::doctor::Finding {
        ok: false,
        name: "bwrap".into(),
        detail: "not on PATH".into(),
        fix: Some("apt-get install bubblewrap".into()),
    }]);
    let token = h.token();
    for uri in ["/", "/catalog", "/scenarios/demo-file", "/scenarios/needs-apparmor", "/history", "/exam"] {
        let body = h.ok_page(uri).await;
        assert!(body.contains(&format!(r#"<meta name="csrf-token" content="{token}">"#)), "{uri}");
        assert!(body.contains("/static/app.js"), "{uri}");
    }
    let home = h.ok_page("/").await;
    assert!(home.contains("exists") && home.contains("healthy"), "cluster state on the home page");
    assert!(home.contains("exited: &lt;boom&gt; &amp; gone"), "component detail, escaped");
    assert!(home.contains("apt-get install bubblewrap"), "doctor fix");
    assert!(
        unescape(&home).contains(&format!("export KUBECONFIG={}", h.backend.kubeconfig.display())),
        "kubeconfig path"
    );

    let catalog = h.ok_page("/catalog").await;
    assert!(catalog.contains("Cluster Hardening") && catalog.contains("15% of the exam"));
    assert!(catalog.contains("Lock down the demo config"));
    assert!(catalog.contains("needs apparmor"), "what the backend lacks");
    assert!(catalog.contains("Use Role Based Access Controls"), "competencies");

    let scenario = h.ok_page("/scenarios/demo-file").await;
    assert!(scenario.contains("<code>/etc/demo/config.yaml</code>"), "params rendered, inline code");
    assert!(scenario.contains("<pre><code>chmod 600 /etc/demo/config.yaml</code></pre>"), "fenced block");
    assert!(!scenario.contains("<script>alert"), "task HTML is escaped");
    assert!(scenario.contains("&lt;script&gt;alert"), "task HTML is escaped");
    assert!(scenario.contains("ckslab node-shell fake-control-plane"));
    assert!(!scenario.contains("chmod-and-edit"), "no solution before an attempt");
    assert!(scenario.contains(r#"data-minutes="5""#), "timer");

    let blocked = h.ok_page("/scenarios/needs-apparmor").await;
    assert!(blocked.contains("cannot run this scenario"));

    for uri in ["/static/style.css", "/static/app.js", "/static/favicon.svg", "/api/job"] {
        let (status, _) = h.page(uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
    }
    let cluster = json(h.send(get("/api/cluster")).await).await;
    assert_eq!(cluster["cluster"]["status"]["exists"], true);
    assert!(!cluster.to_string().contains(SECRET));
}

#[tokio::test]
async fn static_files_have_types_and_etags() {
    let h = harness();
    let response = h.send(get("/static/app.js")).await;
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
    let etag = response.headers()[header::ETAG].to_str().unwrap().to_string();
    let again = Request::get("/static/app.js")
        .header(header::HOST, HOST)
        .header(header::IF_NONE_MATCH, &etag)
        .body(Body::empty())
        .unwrap();
    assert_eq!(h.send(again).await.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(h.send(get("/static/nope.css")).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn unknown_pages_are_404() {
    let h = harness();
    assert_eq!(h.send(get("/scenarios/no-such")).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(h.send(get("/nowhere")).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(h.send(get("/exam/nope")).await.status(), StatusCode::NOT_FOUND);
    let response = h.send(post("/scenarios/no-such/start", &h.token())).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_foreign_host_header_is_rejected() {
    let h = harness();
    for host in ["evil.example:4242", "127.0.0.1:9999", "localhost", "127.0.0.1", "attacker.com"] {
        let request = Request::get("/").header(header::HOST, host).body(Body::empty()).unwrap();
        let response = h.send(request).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{host}");
        let body = text(response).await;
        assert!(!body.contains(&h.token()), "no token to a foreign host");
    }
    let request = Request::get("/").body(Body::empty()).unwrap();
    assert_eq!(h.send(request).await.status(), StatusCode::FORBIDDEN, "no Host header");
    let request = Request::post("/cluster/down")
        .header(header::HOST, "rebind.example:4242")
        .header("x-csrf-token", h.token())
        .body(Body::empty())
        .unwrap();
    assert_eq!(h.send(request).await.status(), StatusCode::FORBIDDEN, "POST with a foreign host");
    assert!(h.backend.exists.load(Ordering::SeqCst), "nothing was deleted");
    // Both names of the bound address work.
    let request = Request::get("/").header(header::HOST, "localhost:4242").body(Body::empty()).unwrap();
    assert_eq!(h.send(request).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn state_changing_requests_need_the_csrf_token() {
    let h = harness();
    let posts = [
        "/cluster/up",
        "/cluster/down",
        "/scenarios/demo-file/start",
        "/scenarios/demo-file/reset",
        "/scenarios/demo-file/solve",
        "/scenarios/demo-file/hint",
        "/scenarios/demo-file/check",
        "/exam",
    ];
    for uri in posts {
        let bare = Request::post(uri).header(header::HOST, HOST).body(Body::empty()).unwrap();
        assert_eq!(h.send(bare).await.status(), StatusCode::FORBIDDEN, "{uri} without a token");
        assert_eq!(h.send(post(uri, "0123abcd")).await.status(), StatusCode::FORBIDDEN, "{uri} with a wrong token");
        let form = post_form(uri, "csrf_token=wrong");
        assert_eq!(h.send(form).await.status(), StatusCode::FORBIDDEN, "{uri} with a wrong form token");
    }
    let cross = Request::post("/scenarios/demo-file/hint")
        .header(header::HOST, HOST)
        .header(header::ORIGIN, "http://evil.example")
        .header("x-csrf-token", h.token())
        .body(Body::empty())
        .unwrap();
    assert_eq!(h.send(cross).await.status(), StatusCode::FORBIDDEN, "cross-origin");
    assert!(h.backend.exists.load(Ordering::SeqCst), "nothing was deleted");
    assert_eq!(h.state.history().hints_revealed("demo-file").unwrap(), 0, "no hint was revealed");
    // The right token in the header, with a same-origin Origin, works.
    let same = Request::post("/scenarios/demo-file/hint")
        .header(header::HOST, HOST)
        .header(header::ORIGIN, "http://127.0.0.1:4242")
        .header("x-csrf-token", h.token())
        .body(Body::empty())
        .unwrap();
    assert_eq!(h.send(same).await.status(), StatusCode::OK);
    // And in a form field.
    let form = post_form("/exam", &format!("seed=1&csrf_token={}&tasks=", h.token()));
    assert_eq!(h.send(form).await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn one_cluster_operation_at_a_time() {
    let h = harness();
    let (status, job) = h.post_ok("/cluster/up").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(job["kind"], "up");
    assert_eq!(job["running"], true);
    for uri in [
        "/cluster/up",
        "/cluster/down",
        "/scenarios/demo-file/start",
        "/scenarios/demo-file/reset",
        "/scenarios/demo-file/check",
    ] {
        let response = h.send(post(uri, &h.token())).await;
        assert_eq!(response.status(), StatusCode::CONFLICT, "{uri}");
        let body = text(response).await;
        assert!(body.starts_with("busy: creating the fake lab cluster"), "{uri}: {body}");
    }
    // Pages still answer while it runs, and show it.
    let home = h.ok_page("/").await;
    assert!(home.contains("creating the fake lab cluster…"));
    let deadline = Instant::now() + Duration::from_secs(5);
    let running = loop {
        let running = json(h.send(get("/api/job")).await).await;
        if running["job"]["steps"][0].is_string() || Instant::now() > deadline {
            break running;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(running["job"]["running"], true);
    assert_eq!(running["job"]["steps"][0], "starting the fake control plane");
    h.backend.up_gate.add_permits(1);
    let job = h.wait_job().await;
    assert_eq!(job["ok"], true, "{job}");
    assert_eq!(job["steps"].as_array().unwrap().len(), 2);
    // Free again.
    let (status, _) = h.post_ok("/cluster/down").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(h.wait_job().await["ok"], true);
    assert!(!h.backend.exists.load(Ordering::SeqCst));
    let cluster = json(h.send(get("/api/cluster")).await).await;
    assert_eq!(cluster["cluster"]["status"]["exists"], false);
}

#[tokio::test]
async fn start_check_solve_check_records_history() {
    let h = harness();
    // Not before an attempt.
    let early = h.send(post("/scenarios/demo-file/solve", &h.token())).await;
    assert_eq!(early.status(), StatusCode::CONFLICT);
    // Not runnable here.
    let blocked = h.send(post("/scenarios/needs-apparmor/start", &h.token())).await;
    assert_eq!(blocked.status(), StatusCode::CONFLICT);
    let blocked = text(blocked).await;
    assert!(blocked.contains("apparmor"));
    assert!(blocked.contains("the fake backend lacks apparmor"), "the one wording: {blocked}");

    let (_, job) = h.post_ok("/scenarios/demo-file/start").await;
    assert_eq!(job["kind"], "start");
    let job = h.wait_job().await;
    assert_eq!(job["ok"], true, "{job}");
    assert!(
        job["steps"].as_array().unwrap().iter().any(|s| s.as_str().unwrap().contains("write /etc/demo/config.yaml"))
    );
    let page = h.ok_page("/scenarios/demo-file").await;
    assert!(page.contains(r#"data-started="1"#), "the timer starts at Start");

    // The hint ladder.
    let (_, hints) = h.post_ok("/scenarios/demo-file/hint").await;
    assert_eq!(hints["revealed"], 1);
    assert_eq!(hints["hints"].as_array().unwrap().len(), 1);
    let (_, hints) = h.post_ok("/scenarios/demo-file/hint").await;
    assert_eq!(hints["revealed"], 2);
    let (_, hints) = h.post_ok("/scenarios/demo-file/hint").await;
    assert_eq!(hints["revealed"], 2, "never past the last hint");
    let page = h.ok_page("/scenarios/demo-file").await;
    assert!(unescape(&page).contains("Look at the file's mode."));
    assert!(!page.contains("<script>alert('hint')"), "hint HTML is escaped");
    assert!(page.contains("&lt;script&gt;alert("), "the hint's markup shows as text");

    // Check: fails, results stream one by one.
    let events = h.check("/scenarios/demo-file/check").await;
    let names: Vec<&str> = events.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, ["checks", "verdict", "verdict", "verdict", "report"]);
    assert_eq!(events[0].1.as_array().unwrap().len(), 3);
    let verdicts: Vec<&serde_json::Value> =
        events.iter().filter(|(n, _, _)| n == "verdict").map(|(_, v, _)| v).collect();
    assert_eq!(verdicts[2]["id"], "slow", "the slow check reports last");
    let mode = verdicts.iter().find(|v| v["id"] == "mode").unwrap();
    assert_eq!(mode["outcome"], "fail");
    assert!(mode["observed"].as_str().unwrap().contains("644"), "{mode}");
    assert!(mode["expected"].as_str().unwrap().contains("600"), "{mode}");
    assert_eq!(mode["hint"], "ls -l /etc/demo on the control-plane node");
    let first = events[1].2;
    let last = events[3].2;
    assert!(first < Duration::from_millis(300), "the first verdict waited for the slow one: {first:?}");
    assert!(last >= Duration::from_millis(380), "the slow verdict came too early: {last:?}");
    let report = &events[4].1;
    assert_eq!(report["passed"], false);
    assert_eq!(report["score"], 33);
    assert_eq!(report["hints_used"], 2);

    // Now the solution shows, and can be applied.
    let page = h.ok_page("/scenarios/demo-file").await;
    assert!(page.contains("chmod-and-edit") && page.contains("enabled: false"), "solution after an attempt");
    let (_, job) = h.post_ok("/scenarios/demo-file/solve").await;
    assert_eq!(job["kind"], "solve");
    assert_eq!(h.wait_job().await["ok"], true);

    let events = h.check("/scenarios/demo-file/check").await;
    let report = &events.last().unwrap().1;
    assert_eq!(report["passed"], true, "{events:?}");
    assert_eq!(report["score"], 100);
    assert_eq!(report["best"], 100);

    let history = h.ok_page("/history").await;
    assert_eq!(history.matches(r#"<tr data-scenario="demo-file">"#).count(), 2);
    assert!(history.contains("passed") && history.contains("not yet"));
    let catalog = h.ok_page("/catalog").await;
    assert!(catalog.contains("100%"), "best score in the catalog");

    // Reset keeps the hints; start clears them.
    h.post_ok("/scenarios/demo-file/reset").await;
    assert_eq!(h.wait_job().await["ok"], true);
    assert_eq!(h.state.history().hints_revealed("demo-file").unwrap(), 2);
    h.post_ok("/scenarios/demo-file/start").await;
    assert_eq!(h.wait_job().await["ok"], true);
    assert_eq!(h.state.history().hints_revealed("demo-file").unwrap(), 0);
}

#[tokio::test]
async fn exam_mode_end_to_end() {
    let h = harness();
    let response = h.send(post_form("/exam", &format!("csrf_token={}&seed=42&tasks=5", h.token()))).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()[header::LOCATION].to_str().unwrap().to_string();
    assert!(location.starts_with("/exam/"));
    let id = location.trim_start_matches("/exam/").to_string();

    let overview = h.ok_page(&location).await;
    assert!(overview.contains("Lock down the demo config"));
    assert!(!overview.contains("Confine a pod with AppArmor"), "only runnable scenarios");
    assert!(overview.contains("seed 42"));
    assert!(overview.contains("data-countdown="));
    let exam = h.state.exam(&id).unwrap();
    assert_eq!(exam.tasks.len(), 1);
    assert!((exam.deadline_ms - exam.created_ms - 120 * 60_000).abs() < 1000, "a 120-minute exam");
    let again = h.state.create_exam(Some(42), 5).unwrap();
    assert_eq!(
        again.tasks.iter().map(|t| &t.scenario).collect::<Vec<_>>(),
        exam.tasks.iter().map(|t| &t.scenario).collect::<Vec<_>>()
    );

    let task = h.ok_page(&format!("/exam/{id}/task/1")).await;
    assert!(task.contains("Lock down the demo config"));
    assert!(!task.contains("Reveal next hint"), "no hints in an exam");
    assert!(task.contains(&format!("/exam/{id}/task/1/check")));
    assert_eq!(h.send(get(&format!("/exam/{id}/task/2"))).await.status(), StatusCode::NOT_FOUND);

    let (_, flag) = h.post_ok(&format!("/exam/{id}/task/1/flag")).await;
    assert_eq!(flag["flagged"], true);
    assert!(h.ok_page(&location).await.contains("⚑ Flagged"));

    // The review is not open while the exam runs.
    let early = h.send(get(&format!("/exam/{id}/review"))).await;
    assert_eq!(early.status(), StatusCode::SEE_OTHER);

    h.post_ok("/scenarios/demo-file/start").await;
    h.wait_job().await;
    let events = h.check(&format!("/exam/{id}/task/1/check")).await;
    assert_eq!(events.last().unwrap().1["score"], 33);
    assert_eq!(h.state.exam(&id).unwrap().tasks[0].score, Some(33));

    let response = h.send(post_form(&format!("/exam/{id}/finish"), &format!("csrf_token={}", h.token()))).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[header::LOCATION], format!("/exam/{id}/review"));
    let review = h.ok_page(&format!("/exam/{id}/review")).await;
    assert!(review.contains("33%") && review.contains("Not passed") && review.contains("67%"), "{review}");
    assert!(review.contains("⚑ flagged"));

    let late = h.send(post(&format!("/exam/{id}/task/1/check"), &h.token())).await;
    assert_eq!(late.status(), StatusCode::CONFLICT);
    let index = h.ok_page("/exam").await;
    assert!(index.contains(&id));
    // The exam's grade is an attempt in the history too.
    assert_eq!(h.state.history().attempts(Some("demo-file"), 10).unwrap().len(), 1);
}

#[tokio::test]
async fn an_exam_goes_on_after_the_server_restarts() {
    let h = harness();
    let exam = h.state.create_exam(Some(7), 5).unwrap();
    let (_, flag) = h.post_ok(&format!("/exam/{}/task/1/flag", exam.id)).await;
    assert_eq!(flag["flagged"], true);

    // A new server process over the same data dir: same exam, same clock, same flag.
    let home = h._dir.path().join("home");
    let catalog = Catalog::from_dir(&h._dir.path().join("scenarios")).unwrap();
    let lab = Lab::new(h.backend.clone(), &home);
    let restarted = AppState::with_history(lab, catalog, &home, PORT, History::open(&home).unwrap()).unwrap();
    let again = restarted.exam(&exam.id).unwrap();
    assert_eq!(again.deadline_ms, exam.deadline_ms);
    assert_eq!(again.seed, 7);
    assert!(again.tasks[0].flagged);
    let index = router(restarted).oneshot(get("/exam")).await.unwrap();
    let body = String::from_utf8(index.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(body.contains(&exam.id), "the exam is listed after the restart");
}

#[tokio::test]
async fn exam_needs_runnable_scenarios_and_valid_numbers() {
    let h = harness();
    let response = h.send(post_form("/exam", &format!("csrf_token={}&seed=abc", h.token()))).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_joined_learner_s_checks_reach_the_classroom_board() {
    use ckslab::classroom::{client::Membership, roster::Roster, server};
    let h = harness();
    let config = server::ClassroomConfig {
        name: "room".into(),
        join_token: "t0k".into(),
        instructor_key: "k3y".into(),
        public_url: String::new(),
        scenarios: vec![],
    };
    let classroom = server::router(server::ClassroomState::new(config, Roster::in_memory().unwrap()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let serving = tokio::spawn(axum::serve(listener, classroom.clone()).into_future());
    let membership = Membership { url, token: "t0k".into(), learner: "Ana".into(), classroom: "room".into() };
    membership.save(&h._dir.path().join("home")).unwrap();

    let home = unescape(&h.ok_page("/").await);
    assert!(
        home.contains("reported to classroom <strong>room</strong>") && home.contains("as <strong>Ana</strong>"),
        "{home}"
    );
    assert!(!home.contains("t0k"), "the home page never shows the join token");

    h.post_ok("/scenarios/demo-file/start").await;
    assert_eq!(h.wait_job().await["ok"], true);
    let events = h.check("/scenarios/demo-file/check").await;
    let report = &events.last().unwrap().1;
    assert_eq!(report["classroom_problem"], serde_json::Value::Null, "{report}");
    let board =
        classroom.clone().oneshot(Request::get("/api/board?key=k3y").body(Body::empty()).unwrap()).await.unwrap();
    let board = json(board).await;
    assert_eq!(board["learners"][0]["learner"], "Ana");
    assert_eq!(board["learners"][0]["cells"]["demo-file"]["best"], report["score"]);

    // The classroom server is gone: the grade still comes, with the reason it was not reported.
    serving.abort();
    let _ = serving.await;
    let events = h.check("/scenarios/demo-file/check").await;
    let report = &events.last().unwrap().1;
    assert_eq!(report["score"], 33);
    assert!(report["classroom_problem"].as_str().unwrap().contains("cannot reach the classroom"), "{report}");
}

#[tokio::test]
async fn a_check_without_a_cluster_is_an_error_not_an_attempt_and_not_reported() {
    use ckslab::classroom::{client::Membership, roster::Roster, server};
    let h = harness();
    let config = server::ClassroomConfig {
        name: "room".into(),
        join_token: "t0k".into(),
        instructor_key: "k3y".into(),
        public_url: String::new(),
        scenarios: vec![],
    };
    let classroom = server::router(server::ClassroomState::new(config, Roster::in_memory().unwrap()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let _serving = tokio::spawn(axum::serve(listener, classroom.clone()).into_future());
    let membership = Membership { url, token: "t0k".into(), learner: "Ana".into(), classroom: "room".into() };
    membership.save(&h._dir.path().join("home")).unwrap();

    h.backend.exists.store(false, Ordering::SeqCst);
    let events = h.check("/scenarios/demo-file/check").await;
    let names: Vec<&str> = events.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, ["checks", "verdict", "verdict", "verdict", "error"], "{events:?}");
    let message = events[4].1["message"].as_str().unwrap();
    assert!(message.contains("no ckslab cluster is running on the fake backend"), "{message}");
    assert!(message.contains("not an attempt"), "{message}");
    assert!(h.state.history().attempts(None, 10).unwrap().is_empty(), "recorded as an attempt");
    assert_eq!(h.wait_job().await["ok"], false, "the job says the grade failed");
    let board =
        classroom.clone().oneshot(Request::get("/api/board?key=k3y").body(Body::empty()).unwrap()).await.unwrap();
    let board = json(board).await;
    assert!(
        board["learners"].as_array().unwrap().iter().all(|l| l["cells"]["demo-file"].is_null()),
        "reported to the classroom: {board}"
    );
    // The solution stays hidden: there is no attempt yet.
    let page = h.ok_page("/scenarios/demo-file").await;
    assert!(!page.contains("chmod-and-edit"), "no solution without an attempt");
}

// ---------------------------------------------------------------------------------------------
// The terminal pane: every refusal of the upgrade request, then real shells on real sockets.

const ORIGIN: &str = "http://127.0.0.1:4242";

/// The page id the scenario page issued for its terminal.
async fn terminal_page(h: &Harness) -> String {
    let body = text(h.send(get("/scenarios/demo-file")).await).await;
    let start = body.find(r#"id="terminal" data-page=""#).expect("the page has a terminal") + 25;
    body[start..start + 32].to_string()
}

/// A WebSocket upgrade request for `page`, with the headers given.
fn upgrade(page: &str, host: &str, origin: Option<&str>, protocol: Option<&str>) -> Request<Body> {
    let mut request = Request::get(format!("/terminal/{page}"))
        .header(header::HOST, host)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_VERSION, "13")
        .header(header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==");
    if let Some(origin) = origin {
        request = request.header(header::ORIGIN, origin);
    }
    if let Some(protocol) = protocol {
        request = request.header(header::SEC_WEBSOCKET_PROTOCOL, protocol);
    }
    request.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn the_terminal_upgrade_refuses_every_bad_request() {
    let h = harness();
    let page = terminal_page(&h).await;
    let good = format!("ckslab-terminal, csrf.{}", h.token());
    let refusals = [
        ("a foreign Host", upgrade(&page, "evil.example:4242", Some(ORIGIN), Some(&good)), 403, "Host header"),
        ("no Origin", upgrade(&page, HOST, None, Some(&good)), 403, "Origin header"),
        ("a foreign Origin", upgrade(&page, HOST, Some("http://evil.example"), Some(&good)), 403, "cross-origin"),
        (
            "an Origin on another port",
            upgrade(&page, HOST, Some("http://127.0.0.1:1"), Some(&good)),
            403,
            "cross-origin",
        ),
        ("an opaque Origin", upgrade(&page, HOST, Some("null"), Some(&good)), 403, "cross-origin"),
        ("no token", upgrade(&page, HOST, Some(ORIGIN), Some("ckslab-terminal")), 403, "missing CSRF token"),
        ("no subprotocol", upgrade(&page, HOST, Some(ORIGIN), None), 403, "missing CSRF token"),
        (
            "a wrong token",
            upgrade(&page, HOST, Some(ORIGIN), Some("ckslab-terminal, csrf.0000")),
            403,
            "wrong CSRF token",
        ),
        ("an unknown page", upgrade("feedface", HOST, Some(ORIGIN), Some(&good)), 404, "reload the page"),
    ];
    for (what, request, status, message) in refusals {
        let response = h.send(request).await;
        let got = response.status();
        let body = text(response).await;
        assert_eq!(got.as_u16(), status, "{what}: {body}");
        assert!(body.contains(message), "{what}: {body}");
    }
    assert_eq!(h.state.terminals.open_count(), 0, "no refused request holds the page");
    // The control: the same request with every guard satisfied gets past them all (oneshot has no
    // connection to upgrade, so axum's upgrade extractor answers 426 instead of 101).
    let response = h.send(upgrade(&page, HOST, Some(ORIGIN), Some(&good))).await;
    assert_eq!(response.status(), StatusCode::UPGRADE_REQUIRED);
    assert_eq!(h.state.terminals.open_count(), 0, "the page is free again");
    // localhost is the same server.
    let response = h.send(upgrade(&page, "localhost:4242", Some("http://localhost:4242"), Some(&good))).await;
    assert_eq!(response.status(), StatusCode::UPGRADE_REQUIRED);
}

#[tokio::test]
async fn no_terminal_off_loopback_without_the_flag() {
    let h = harness();
    let page = terminal_page(&h).await;
    let good = format!("ckslab-terminal, csrf.{}", h.token());
    let remote: std::net::IpAddr = "192.0.2.10".parse().unwrap();
    h.state.set_terminal_policy(TerminalPolicy { listen: remote, allow_remote: false });
    let response = h.send(upgrade(&page, HOST, Some(ORIGIN), Some(&good))).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body = text(response).await;
    assert!(body.contains("--allow-remote-terminal") && body.contains("192.0.2.10"), "{body}");
    // The page says why, and issues no terminal.
    let scenario = text(h.send(get("/scenarios/demo-file")).await).await;
    assert!(!scenario.contains(r#"id="terminal" data-page="#), "no terminal page id off loopback");
    assert!(scenario.contains("--allow-remote-terminal"));
    assert!(!scenario.contains("/static/terminal.js"));
    // The server's own address is then a valid Host and Origin.
    let response = h.send(upgrade(&page, "192.0.2.10:4242", Some("http://192.0.2.10:4242"), Some(&good))).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "still off without the flag");
    h.state.set_terminal_policy(TerminalPolicy { listen: remote, allow_remote: true });
    let response = h.send(upgrade(&page, "192.0.2.10:4242", Some("http://192.0.2.10:4242"), Some(&good))).await;
    assert_eq!(response.status(), StatusCode::UPGRADE_REQUIRED, "the flag turns it on");
}

#[tokio::test]
async fn terminal_pages_load_xterm_and_allow_its_styles_only_there() {
    let h = harness();
    let response = h.send(get("/scenarios/demo-file")).await;
    let csp = response.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_string();
    assert!(csp.contains("style-src 'self' 'unsafe-inline'") && csp.contains("script-src 'self';"), "{csp}");
    let body = text(response).await;
    for asset in ["/static/vendor/xterm/xterm.js", "/static/vendor/xterm/addon-fit.js", "/static/terminal.js"] {
        assert!(body.contains(asset), "{asset}");
        let response = h.send(get(asset)).await;
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
    }
    let home = h.send(get("/")).await;
    let csp = home.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(!csp.contains("unsafe-inline"), "other pages keep the strict policy: {csp}");
    let licence = text(h.send(get("/static/vendor/xterm/LICENSE-xterm.txt")).await).await;
    assert!(licence.contains("Permission is hereby granted"));
}

// Real sockets from here: a served router on an ephemeral port, a WebSocket client, a real bash.

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Served {
    h: Harness,
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn served() -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let h = harness_on(port);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ckslab::web::serve_on(listener, h.state.clone(), async move {
        let _ = stopped.await;
    }));
    Served { h, port, stop: Some(stop), server }
}

impl Served {
    async fn page(&self) -> String {
        let host = format!("127.0.0.1:{}", self.port);
        let request = Request::get("/scenarios/demo-file").header(header::HOST, host).body(Body::empty()).unwrap();
        let body = text(self.h.send(request).await).await;
        let start = body.find(r#"id="terminal" data-page=""#).unwrap() + 25;
        body[start..start + 32].to_string()
    }

    async fn connect(&self, page: &str) -> Result<Socket, tungstenite::Error> {
        let mut request = format!("ws://127.0.0.1:{}/terminal/{page}", self.port).into_client_request().unwrap();
        let headers = request.headers_mut();
        headers.insert(header::ORIGIN, format!("http://127.0.0.1:{}", self.port).parse().unwrap());
        headers.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            format!("ckslab-terminal, csrf.{}", self.h.token()).parse().unwrap(),
        );
        let (socket, response) = tokio_tungstenite::connect_async(request).await?;
        assert_eq!(response.headers()[header::SEC_WEBSOCKET_PROTOCOL], "ckslab-terminal");
        Ok(socket)
    }
}

/// Types `line` and reads the terminal until `pattern` matches its output; returns the capture.
async fn run_in(socket: &mut Socket, line: &str, pattern: &str) -> String {
    let pattern = regex::Regex::new(pattern).unwrap();
    socket.send(Message::Binary(format!("{line}\r").into_bytes().into())).await.unwrap();
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .unwrap_or_else(|_| panic!("no {pattern} in the terminal's output: {seen:?}"));
        match message {
            Some(Ok(Message::Binary(bytes))) => seen.push_str(&String::from_utf8_lossy(&bytes)),
            Some(Ok(_)) => {}
            other => panic!("the terminal ended: {other:?}; output {seen:?}"),
        }
        if let Some(captures) = pattern.captures(&seen) {
            return captures[1].to_string();
        }
    }
}

/// The live (not zombie) processes of the shell's session `sid` (its jobs have process groups
/// of their own within it).
fn live_in_group(sid: i32) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // pid (comm) state ppid pgrp ...: comm may hold spaces, so split after the last ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 3 && fields[0] != "Z" && fields[3] == sid.to_string() {
            pids.push(pid);
        }
    }
    pids
}

async fn wait_group_gone(pgid: i32) -> Duration {
    let started = Instant::now();
    while !live_in_group(pgid).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still running in group {pgid}: {:?}",
            live_in_group(pgid)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

#[tokio::test]
async fn no_shell_process_outlives_its_socket_and_a_page_has_one_terminal() {
    let s = served().await;
    let page = s.page().await;
    let mut socket = s.connect(&page).await.expect("the terminal opens");
    let shell: i32 = run_in(&mut socket, "echo \"SHELL:$$:\"", r"SHELL:(\d+):").await.parse().unwrap();
    // A background job (a process group of its own, under job control) that ignores SIGHUP, as
    // `nohup` would: closing the socket must end it too.
    let job = "sh -c \"trap '' HUP; exec sleep 1000\" & echo \"CHILD:$!:\"";
    let child: i32 = run_in(&mut socket, job, r"CHILD:(\d+):").await.parse().unwrap();
    let group = live_in_group(shell);
    assert!(group.contains(&shell) && group.contains(&child), "the shell leads a session with its job: {group:?}");
    let kubeconfig = run_in(&mut socket, "echo \"KC:$KUBECONFIG:\"", r"KC:(/[^:]*):").await;
    assert_eq!(kubeconfig, s.h.backend.kubeconfig.display().to_string());
    let alias = run_in(&mut socket, "alias k", r"(alias k='kubectl')").await;
    assert_eq!(alias, "alias k='kubectl'");
    let node = run_in(&mut socket, "type node-shell | head -1", r"(node-shell is a function)").await;
    assert_eq!(node, "node-shell is a function");

    // One terminal per page: a second socket for it is refused while the first is open.
    match s.connect(&page).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), StatusCode::CONFLICT),
        other => panic!("a second terminal for the page: {:?}", other.map(|_| ())),
    }
    assert_eq!(s.h.state.terminals.open_count(), 1);

    socket.close(None).await.unwrap();
    drop(socket);
    let took = wait_group_gone(shell).await;
    eprintln!("process group {shell} gone {took:?} after the socket closed");
    assert!(live_in_group(shell).is_empty());
    // The page may open a terminal again (Reconnect), and that one is a new shell.
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.h.state.terminals.open_count() > 0 {
        assert!(Instant::now() < deadline, "the page was not freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut again = s.connect(&page).await.expect("reconnect");
    let second: i32 = run_in(&mut again, "echo \"SHELL:$$:\"", r"SHELL:(\d+):").await.parse().unwrap();
    assert_ne!(second, shell);
    drop(again);
    wait_group_gone(second).await;
    drop(s.stop);
    let _ = s.server.await;
}

#[tokio::test]
async fn stopping_the_server_kills_every_open_terminal() {
    let mut s = served().await;
    let (first, second) = (s.page().await, s.page().await);
    let mut a = s.connect(&first).await.unwrap();
    let mut b = s.connect(&second).await.unwrap();
    let shell_a: i32 = run_in(&mut a, "sleep 1000 & echo \"SHELL:$$:\"", r"SHELL:(\d+):").await.parse().unwrap();
    let shell_b: i32 = run_in(&mut b, "trap '' HUP; echo \"SHELL:$$:\"", r"SHELL:(\d+):").await.parse().unwrap();
    assert_eq!(s.h.state.terminals.open_count(), 2);
    s.stop.take().unwrap().send(()).unwrap();
    // Each socket is told why, and the server finishes (the terminals do not hold it open).
    for socket in [&mut a, &mut b] {
        let close = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(message) = socket.next().await {
                if let Ok(Message::Close(frame)) = message {
                    return frame;
                }
            }
            None
        })
        .await
        .expect("a close frame");
        assert!(close.as_ref().is_some_and(|f| f.reason.contains("stopping")), "{close:?}");
    }
    tokio::time::timeout(Duration::from_secs(10), s.server).await.expect("the server stops").unwrap().unwrap();
    wait_group_gone(shell_a).await;
    wait_group_gone(shell_b).await;
}
