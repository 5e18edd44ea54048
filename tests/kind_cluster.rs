//! The kind backend against a real kind cluster in a real Docker engine: up brings two nodes to
//! Ready, a scenario goes start → grade (fails) → solve → grade (passes) → reset, the node shell
//! sees the kubeadm layout, and down leaves no container and no network of ckslab's. Then a
//! `ckslab up` killed with SIGKILL midway, and `down` after it, leave nothing either.
//!
//! Where no engine answers, each test is reported ignored with the reason (SKIPPED), never as
//! passed; CI starts an engine (scripts/docker-engine.sh) and sets CKSLAB_REQUIRE_ENGINE=1.

mod engine;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use libtest_mimic::{Failed, Trial};

fn main() -> std::process::ExitCode {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let reason = engine::unavailable(&runtime);
    let trials = vec![
        Trial::test("kind_up_scenario_node_shell_down", lab_end_to_end),
        Trial::test("kind_up_killed_midway_then_down_leaves_nothing", killed_up_then_down),
    ];
    engine::run(trials, reason)
}

fn ckslab(home: &Path, args: &[&str]) -> Output {
    let mut command = assert_cmd::Command::cargo_bin("ckslab").unwrap();
    command.env("CKSLAB_HOME", home).env("CKSLAB_BACKEND", "kind").args(args);
    command.timeout(Duration::from_secs(600)).output().unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn docker(args: &[&str]) -> String {
    let out = std::process::Command::new("docker").args(args).output().expect("docker CLI");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Containers and networks ckslab's kind cluster owns.
fn leftovers() -> Vec<String> {
    let mut left: Vec<String> =
        docker(&["ps", "-a", "--filter", "label=io.x-k8s.kind.cluster=ckslab", "--format", "{{.Names}}"])
            .lines()
            .map(|l| format!("container {l}"))
            .collect();
    left.extend(
        docker(&["network", "ls", "--filter", "name=^ckslab$", "--format", "{{.Name}}"])
            .lines()
            .map(|l| format!("network {l}")),
    );
    left
}

fn expect(out: &Output, code: i32, what: &str) -> Result<(), Failed> {
    if out.status.code() == Some(code) {
        Ok(())
    } else {
        Err(format!("{what}: exit {:?}, wanted {code}\n{}", out.status.code(), text(out)).into())
    }
}

fn lab_end_to_end() -> Result<(), Failed> {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let started = Instant::now();
    let up = ckslab(home, &["up", "--backend", "kind"]);
    let result = (|| {
        expect(&up, 0, "up")?;
        eprintln!("up: two Ready nodes in {:.1}s", started.elapsed().as_secs_f64());
        let status = ckslab(home, &["status", "--format", "json"]);
        expect(&status, 0, "status")?;
        let status: serde_json::Value = serde_json::from_slice(&status.stdout)?;
        assert_eq!(status["nodes"].as_array().map(Vec::len), Some(2), "{status}");
        assert_eq!(status["api_healthy"], true, "{status}");

        let scenario = "seccomp-runtime-default";
        expect(&ckslab(home, &["start", scenario]), 0, "start")?;
        let broken = ckslab(home, &["grade", scenario, "--format", "json"]);
        expect(&broken, 1, "grade of the broken state")?;
        expect(&ckslab(home, &["solve", scenario]), 0, "solve")?;
        let solved = ckslab(home, &["grade", scenario, "--format", "json"]);
        expect(&solved, 0, "grade of the solution")?;
        // The /proc check runs for real on kind: it is not skipped.
        let report: serde_json::Value = serde_json::from_slice(&solved.stdout)?;
        let skipped: Vec<&serde_json::Value> =
            report["verdicts"].as_array().into_iter().flatten().filter(|v| v["outcome"] == "skip").collect();
        assert!(skipped.is_empty(), "checks skipped on kind: {skipped:?}");
        expect(&ckslab(home, &["reset", scenario]), 0, "reset")?;
        expect(&ckslab(home, &["grade", scenario]), 1, "grade after reset")?;

        network_policy_denies(home)?;

        let shell = ckslab(home, &["node-shell", "--", "ls", "/etc/kubernetes/manifests"]);
        expect(&shell, 0, "node-shell")?;
        assert!(text(&shell).contains("kube-apiserver.yaml"), "{}", text(&shell));
        api_server_restarts_quickly(home)?;
        Ok::<(), Failed>(())
    })();
    let down = ckslab(home, &["down"]);
    result?;
    expect(&down, 0, "down")?;
    let left = leftovers();
    assert!(left.is_empty(), "down left {left:?}");
    Ok(())
}

/// The learner's API server manifest is kubeadm's (no shorter grace in it), yet an edit is in
/// force well before kubeadm's 30 s grace would have run out: the node image's kube-apiserver
/// image stops with SIGKILL (see scripts/build-kind-node.sh).
fn api_server_restarts_quickly(home: &Path) -> Result<(), Failed> {
    const MANIFEST: &str = "/etc/kubernetes/manifests/kube-apiserver.yaml";
    let manifest = ckslab(home, &["node-shell", "--", "cat", MANIFEST]);
    expect(&manifest, 0, "reading the API server manifest")?;
    let pod: serde_json::Value = serde_saphyr::from_str(&String::from_utf8_lossy(&manifest.stdout))?;
    assert!(pod["spec"]["terminationGracePeriodSeconds"].is_null(), "the manifest is kubeadm's: {pod}");
    let edit = format!("sed -i 's/^    - kube-apiserver$/    - kube-apiserver\\n    - --v=1/' {MANIFEST}");
    // `node-shell -- LINE` runs LINE in the node's bash, as ssh does.
    expect(&ckslab(home, &["node-shell", "--", &edit]), 0, "editing the manifest")?;
    let started = Instant::now();
    let probe = "pgrep -f 'kube-apiserver --v=[1]' >/dev/null && \
                 kubectl --kubeconfig /etc/kubernetes/admin.conf get --raw /readyz >/dev/null 2>&1";
    while !ckslab(home, &["node-shell", "--", probe]).status.success() {
        if started.elapsed() > Duration::from_secs(120) {
            return Err("the edited API server did not answer within 120 s".into());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let took = started.elapsed();
    eprintln!("kind_cluster: the API server answered {:.1} s after a manifest edit", took.as_secs_f64());
    assert!(took < Duration::from_secs(30), "the API server took {took:?} to come back after an edit");
    Ok(())
}

fn killed_up_then_down() -> Result<(), Failed> {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let mut up = std::process::Command::new(assert_cmd::cargo::cargo_bin("ckslab"))
        .env("CKSLAB_HOME", home)
        .env("CKSLAB_BACKEND", "kind")
        .args(["up", "--backend", "kind"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    // Midway: once kind has made the nodes, before the cluster is ready.
    let deadline = Instant::now() + Duration::from_secs(120);
    while leftovers().iter().filter(|l| l.starts_with("container")).count() < 2 {
        if Instant::now() > deadline {
            let _ = up.kill();
            return Err("kind made no node containers within 120s".into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    up.kill()?; // SIGKILL
    up.wait()?;
    // kind dies with ckslab (parent-death signal): nothing goes on creating behind down's back.
    std::thread::sleep(Duration::from_secs(2));
    let down = ckslab(home, &["down"]);
    expect(&down, 0, "down after a killed up")?;
    let left = leftovers();
    assert!(left.is_empty(), "down after a killed up left {left:?}");
    Ok(())
}

fn kubectl(home: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = assert_cmd::Command::new(ckslab::step::kubectl_program());
    command.env("KUBECONFIG", home.join("kind/kubeconfig")).args(args).timeout(Duration::from_secs(120));
    if let Some(text) = stdin {
        command.write_stdin(text.to_string());
    }
    command.output().unwrap()
}

/// The cluster says it enforces NetworkPolicy only if it does: a client on the other node
/// reaches a server until a deny-all ingress policy selects the server, then it cannot.
fn network_policy_denies(home: &Path) -> Result<(), Failed> {
    let pods = r#"
apiVersion: v1
kind: Namespace
metadata: {name: netpol-proof}
---
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: netpol-proof, labels: {app: server}}
spec:
  nodeName: ckslab-worker
  containers: [{name: web, image: "nginx:1.27", imagePullPolicy: IfNotPresent, ports: [{containerPort: 80}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: netpol-proof}
spec:
  nodeName: ckslab-control-plane
  tolerations: [{operator: Exists}]
  containers: [{name: c, image: "busybox:1.36", imagePullPolicy: IfNotPresent, command: [sleep, "3600"]}]
"#;
    let out = kubectl(home, &["apply", "-f", "-"], Some(pods));
    expect(&out, 0, "applying the netpol proof pods")?;
    let out = kubectl(
        home,
        &["-n", "netpol-proof", "wait", "--for=condition=Ready", "pod/server", "pod/client", "--timeout=90s"],
        None,
    );
    expect(&out, 0, "netpol proof pods Ready")?;
    let ip = kubectl(home, &["-n", "netpol-proof", "get", "pod", "server", "-o", "jsonpath={.status.podIP}"], None);
    let ip = String::from_utf8_lossy(&ip.stdout).trim().to_string();
    let url = format!("http://{ip}/");
    let fetch = || {
        kubectl(home, &["-n", "netpol-proof", "exec", "client", "--", "wget", "-q", "-O", "-", "-T", "3", &url], None)
    };
    let open = fetch();
    expect(&open, 0, "a cross-node request before any policy")?;
    let deny = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: netpol-proof}\nspec: {podSelector: {}, policyTypes: [Ingress]}\n";
    expect(&kubectl(home, &["apply", "-f", "-"], Some(deny)), 0, "the deny-all policy")?;
    // The firewall applies a policy within seconds; the request must then fail.
    let deadline = Instant::now() + Duration::from_secs(30);
    let denied = loop {
        if !fetch().status.success() {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    let _ = kubectl(home, &["delete", "namespace", "netpol-proof", "--wait=false"], None);
    let capabilities: Vec<String> = std::fs::read_to_string(home.join("kind/capabilities.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let claimed = capabilities.iter().any(|c| c == "network-policy");
    assert_eq!(claimed, denied, "the cluster claims network-policy: {claimed}; a denied request failed: {denied}");
    Ok(())
}
