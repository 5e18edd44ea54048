//! The classroom: the instructor's server driven with `oneshot` (every route and rejection), then
//! a learner's client against it over TCP, and the CLI's join/status/leave and serve.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use ckslab::check::{Outcome, Verdict};
use ckslab::classroom::client::{self, Membership};
use ckslab::classroom::roster::Roster;
use ckslab::classroom::server::{ClassroomConfig, ClassroomState, router};
use ckslab::grade::Report;

const TOKEN: &str = "join-123";
const KEY: &str = "instructor-key-abc";

fn app() -> axum::Router {
    let config = ClassroomConfig {
        name: "room 4".into(),
        join_token: TOKEN.into(),
        instructor_key: KEY.into(),
        public_url: "http://10.0.0.5:7979".into(),
        scenarios: vec![
            ("etcd-encryption".into(), "Encrypt secrets at rest".into()),
            ("audit-policy".into(), "Audit policy".into()),
        ],
    };
    router(ClassroomState::new(config, Roster::in_memory().unwrap()).unwrap())
}

fn report_body(learner: &str, scenario: &str, score: u32) -> Value {
    let checks_passed = match score {
        100 => 4,
        0 => 0,
        _ => 3,
    };
    json!({"learner": learner, "scenario": scenario, "score": score, "passed": score == 100,
           "hints_used": 2, "checks_passed": checks_passed, "checks_total": 4})
}

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, String, axum::http::HeaderMap) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = bearer {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty);
    let response = app
        .clone()
        .oneshot(request.header(header::CONTENT_TYPE, "application/json").body(body).unwrap())
        .await
        .unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned(), headers)
}

#[tokio::test]
async fn reports_need_the_join_token_and_must_make_sense() {
    let app = app();
    let body = Some(report_body("Ana", "etcd-encryption", 100));
    assert_eq!(call(&app, "POST", "/api/reports", None, body.clone()).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&app, "POST", "/api/reports", Some("join-124"), body.clone()).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        call(&app, "POST", "/api/reports", Some(KEY), body.clone()).await.0,
        StatusCode::UNAUTHORIZED,
        "the instructor key is not a join token"
    );
    let (status, text, _) =
        call(&app, "POST", "/api/reports", Some(TOKEN), Some(report_body("<b>x</b>", "etcd-encryption", 10))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.contains("letters, digits"), "{text}");
    let (status, text, _) = call(&app, "POST", "/api/reports", Some(TOKEN), Some(json!({"learner": "Ana"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.contains("not a progress report"), "{text}");
    let huge = json!({"learner": "a".repeat(20_000)});
    assert_eq!(call(&app, "POST", "/api/reports", Some(TOKEN), Some(huge)).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, text, _) = call(&app, "POST", "/api/reports", Some(TOKEN), body).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let (status, text, _) = call(&app, "GET", "/api/join", Some(TOKEN), None).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, r#"{"classroom":"room 4"}"#));
}

#[tokio::test]
async fn reports_that_contradict_themselves_are_refused_with_400() {
    let app = app();
    let with = |f: fn(&mut Value)| {
        let mut body = report_body("Ana", "etcd-encryption", 100);
        f(&mut body);
        Some(body)
    };
    let cases: [(Option<Value>, &str); 8] = [
        (with(|b| b["score"] = json!(0)), "passed with score 0 contradicts itself"),
        (with(|b| b["score"] = json!(99)), "passed with score 99 contradicts itself"),
        (with(|b| b["passed"] = json!(false)), "failed with score 100 contradicts itself"),
        (with(|b| b["checks_passed"] = json!(5)), "5 of 4 checks passed does not add up"),
        (with(|b| b["hints_used"] = json!(1_000_000)), "1000000 hints used is more than a scenario has"),
        (with(|b| b["hints_used"] = json!(-1)), "not a progress report"),
        (with(|b| b["score"] = json!(1u64 << 40)), "not a progress report"),
        (with(|b| b["checks_total"] = json!(-3)), "not a progress report"),
    ];
    for (body, message) in cases {
        let (status, text, _) = call(&app, "POST", "/api/reports", Some(TOKEN), body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?}: {text}");
        assert!(text.contains(message), "{body:?}: {text}");
    }
    let (status, text, _) = call(&app, "GET", "/api/board", Some(KEY), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains(r#""learners":[]"#), "nothing was recorded: {text}");
}

#[test]
fn the_classroom_does_not_import_the_web_ui() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/classroom");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains("crate::web") && !text.contains("super::super::web"),
            "{} imports the web UI",
            path.display()
        );
    }
}

#[tokio::test]
async fn the_board_needs_the_instructor_key_and_shows_best_scores() {
    let app = app();
    for (learner, scenario, score) in
        [("Ana", "etcd-encryption", 60), ("Ana", "etcd-encryption", 100), ("Bo", "audit-policy", 40)]
    {
        let (status, _, _) =
            call(&app, "POST", "/api/reports", Some(TOKEN), Some(report_body(learner, scenario, score))).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    assert_eq!(call(&app, "GET", "/", None, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&app, "GET", "/?key=wrong", None, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        call(&app, "GET", "/api/board", Some(TOKEN), None).await.0,
        StatusCode::UNAUTHORIZED,
        "learners cannot read the board"
    );

    let (status, text, headers) = call(&app, "GET", "/api/board", Some(KEY), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    let board: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(board["scenarios"], json!(["etcd-encryption", "audit-policy"]), "catalog order");
    let ana = board["learners"].as_array().unwrap().iter().find(|l| l["learner"] == "Ana").unwrap();
    assert_eq!(ana["cells"]["etcd-encryption"]["best"], 100);
    assert_eq!(ana["cells"]["etcd-encryption"]["attempts"], 2);

    let (status, html, headers) = call(&app, "GET", &format!("/?key={KEY}"), None, None).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(r#"<tr data-learner="Ana">"#), "{html}");
    assert!(html.contains(r#"<td data-scenario="etcd-encryption" title="2 attempt(s)"#), "{html}");
    assert!(html.contains(r#"<span class="pill pass">100%</span>"#), "{html}");
    assert!(html.contains(r#"<span class="pill fail">40%</span>"#), "{html}");
    assert!(html.contains("10.0.0.5:7979 --token join-123"), "the join command: {html}");
    assert!(!html.contains(KEY), "the page never repeats the instructor key");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
    assert!(headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("default-src 'none'"));
    let (status, _, headers) = call(&app, "GET", "/static/style.css", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/css"));
}

fn graded(scenario: &str, outcomes: &[Outcome]) -> Report {
    let verdicts = outcomes
        .iter()
        .enumerate()
        .map(|(i, outcome)| Verdict {
            id: format!("c{i}"),
            description: "d".into(),
            weight: 1,
            probe: "object",
            outcome: *outcome,
            observed: String::new(),
            expected: String::new(),
            hint: None,
            millis: 1,
        })
        .collect();
    Report {
        scenario: scenario.into(),
        title: "t".into(),
        backend: "local".into(),
        verdicts,
        score: 50,
        passed: false,
        millis: 5,
    }
}

async fn serve_on_tcp() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = tokio::spawn(async move { axum::serve(listener, app()).await.unwrap() });
    (url, handle)
}

#[tokio::test]
async fn a_learner_joins_over_the_network_and_each_grade_reaches_the_board() {
    let (url, server) = serve_on_tcp().await;
    let home = tempfile::tempdir().unwrap();
    let refused = client::join(&url, "guess", "Ana").await.unwrap_err().to_string();
    assert!(refused.contains("answered 401") && refused.contains("join token"), "{refused}");
    let membership = client::join(&format!("{url}/"), TOKEN, "Ana").await.unwrap();
    assert_eq!(membership.classroom, "room 4");
    membership.save(home.path()).unwrap();

    let report = graded("audit-policy", &[Outcome::Pass, Outcome::Fail, Outcome::Skip]);
    assert_eq!(client::report_if_joined(home.path(), &report, 1).await, None);
    let board: Value = reqwest_board(&url).await;
    let cell = &board["learners"][0]["cells"]["audit-policy"];
    assert_eq!((cell["best"].clone(), cell["hints_used"].clone()), (json!(50), json!(1)));

    // The classroom goes away: the grade still stands, and the learner is told why.
    server.abort();
    let _ = server.await;
    let problem = client::report_if_joined(home.path(), &report, 1).await.expect("a problem to show");
    assert!(problem.contains("cannot reach the classroom"), "{problem}");
    // Not joined: nothing is sent and nothing is said.
    Membership::remove(home.path()).unwrap();
    assert_eq!(client::report_if_joined(home.path(), &report, 1).await, None);
}

/// The board over TCP, through the same client stack a learner uses.
async fn reqwest_board(url: &str) -> Value {
    use hyper_util::client::legacy::Client;
    let client =
        Client::builder(hyper_util::rt::TokioExecutor::new()).build_http::<http_body_util::Full<bytes::Bytes>>();
    let request = Request::builder()
        .uri(format!("{url}/api/board?key={KEY}"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap()
}

#[tokio::test]
async fn the_cli_serves_a_classroom_that_the_cli_joins() {
    use std::io::BufRead;
    let instructor = tempfile::tempdir().unwrap();
    let learner = tempfile::tempdir().unwrap();
    let ckslab = assert_cmd::cargo::cargo_bin("ckslab");
    // A free port: bind, read, release.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    /// Kills the server even when an assertion fails first.
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut server = std::process::Command::new(&ckslab)
        .args(["--home", instructor.path().to_str().unwrap(), "classroom", "serve", "--name", "lab 1"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = server.stdout.take().unwrap();
    let server = KillOnDrop(server);
    let mut lines = std::io::BufReader::new(stdout).lines();
    let printed: Vec<String> = (0..5).map(|_| lines.next().unwrap().unwrap()).collect();
    let join = printed.iter().find(|l| l.trim_start().starts_with("ckslab classroom join")).expect("a join command");
    let token = join.split("--token ").nth(1).unwrap().split(' ').next().unwrap().to_string();
    let url = format!("http://127.0.0.1:{port}");
    assert!(printed.iter().any(|l| l.contains(&format!("{url}/?key="))), "{printed:?}");

    let run = |args: &[&str]| {
        std::process::Command::new(&ckslab)
            .args(["--home", learner.path().to_str().unwrap(), "classroom"])
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["join", &url, "--token", "nope", "--name", "Ana"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("answered 401"), "{out:?}");
    let out = run(&["join", &url, "--token", &token, "--name", "Ana"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("joined classroom \"lab 1\""), "{out:?}");
    let out = run(&["status"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("at {url} as \"Ana\"")), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("the classroom answers"), "{out:?}");
    let out = run(&["leave"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("left the classroom"), "{out:?}");
    assert!(String::from_utf8_lossy(&run(&["status"]).stdout).contains("not in a classroom"));

    // A restarted server keeps its tokens, so joined learners stay joined.
    drop(server);
    let secrets: Value =
        serde_json::from_slice(&std::fs::read(instructor.path().join("classroom/secrets.json")).unwrap()).unwrap();
    assert_eq!(secrets["join_token"], json!(token));
}

/// A server on 127.0.0.1 that sends headers promising a body, then stalls.
async fn stalling_server() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                let _ = socket.read(&mut buffer).await;
                let _ = socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{").await;
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            });
        }
    });
    url
}

#[tokio::test]
async fn a_stalled_classroom_never_hangs_a_grade_report_or_status() {
    let url = stalling_server().await;
    let home = tempfile::tempdir().unwrap();
    let membership = Membership { url: url.clone(), token: TOKEN.into(), learner: "Ana".into(), classroom: "c".into() };
    membership.save(home.path()).unwrap();
    let limit = client::DEADLINE + std::time::Duration::from_secs(2);
    // What `ckslab grade` and the web check stream do after a grade.
    let started = std::time::Instant::now();
    let report = graded("audit-policy", &[Outcome::Pass, Outcome::Fail]);
    let problem = client::report_if_joined(home.path(), &report, 0).await.expect("a problem to show");
    assert!(started.elapsed() < limit, "took {:?}", started.elapsed());
    assert!(problem.contains(&url) && problem.contains("within 5.0s"), "{problem}");
    // `classroom status` says it does not answer, in time, and fails.
    let started = std::time::Instant::now();
    let out = tokio::process::Command::new(assert_cmd::cargo::cargo_bin("ckslab"))
        .args(["--home", home.path().to_str().unwrap(), "classroom", "status"])
        .output()
        .await
        .unwrap();
    assert!(started.elapsed() < limit, "took {:?}", started.elapsed());
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("the classroom does not answer") && stdout.contains(&url), "{stdout}");
}
