//! Node tools on the local backend, with no cluster: `install-tool` puts kubesec and syft
//! (scripts/build-tools.sh) on the node's PATH, `image-archive` writes an image archive, and
//! both run in the node's view (bubblewrap) as a learner's `ckslab node-shell` would run them.
//! Nothing is skipped: without the tools, bwrap or the Kubernetes binaries these tests fail.

mod common;

use std::path::Path;

use ckslab::backend::{Backend, LogProgress};
use ckslab::check::{self, Outcome};
use ckslab::scenario::CheckSpec;

const SETUP: &str = r#"  - install-tool: {tool: kubesec}
  - install-tool: {tool: syft}
  - write-file:
      path: /opt/manifests/web.yaml
      content: |
        apiVersion: v1
        kind: Pod
        metadata: {name: web, namespace: shop}
        spec:
          hostNetwork: true
          containers: [{name: web, image: busybox:1.36, securityContext: {privileged: true}}]
  - image-archive:
      path: /opt/images/shop-web-1.0.tar
      image: registry.local/shop/web:1.0
      distro: debian
      release: "12"
      packages:
        - {name: base-files, version: 12.4+deb12u5}
        - {name: libssl3, version: 3.0.11-1~deb12u2, source: openssl}
  - image-archive:
      path: /opt/images/shop-edge-2.0.tar
      image: registry.local/shop/edge:2.0
      distro: alpine
      release: 3.20.3
      packages:
        - {name: musl, version: 1.2.5-r0}
        - {name: busybox, version: 1.36.1-r29}
"#;

fn argv(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn installed_tools_run_in_the_node_view_and_read_what_the_steps_wrote() {
    let (_home, backend) = common::local_node_backend();
    let node = backend.control_plane();
    let rendered = common::node_steps_scenario("node-tools", "/opt/manifests/web.yaml", SETUP);
    ckslab::step::run_steps("setup", &rendered.scenario.setup, &rendered, &backend, &LogProgress).await.unwrap();
    let stat = backend.stat_file(&node, Path::new("/usr/local/bin/kubesec")).await.unwrap().unwrap();
    assert_eq!(stat.mode & 0o777, 0o755);

    // kubesec on PATH in the node view, reading the node's /opt, offline.
    let out = backend.exec(&node, &argv(&["kubesec", "scan", "/opt/manifests/web.yaml"])).await.unwrap();
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(report[0]["valid"], true, "{out:?}");
    let critical: Vec<&str> =
        report[0]["scoring"]["critical"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(critical, ["Privileged", "HostNetwork"], "{out:?}");
    // The same through the command probe, as a scenario grades it.
    let spec: CheckSpec = serde_saphyr::from_str(
        "id: k\ndescription: d\ncommand:\n  node: control-plane\n  command: [kubesec, scan, /opt/manifests/web.yaml]\n  stdout-fields:\n    - {path: \"$[*].scoring.critical[*].id\", label: critical findings, absent: true}\n",
    )
    .unwrap();
    let verdict = check::run(&spec, &backend).await;
    assert_eq!(verdict.outcome, Outcome::Fail, "{verdict:?}");
    assert!(verdict.observed.contains(r#"critical findings: "Privileged", "HostNetwork""#), "{verdict:?}");

    // syft catalogs both archives: dpkg in one, apk in the other, by the image's name.
    for (archive, format, wanted) in [
        ("/opt/images/shop-web-1.0.tar", "spdx-json", ("libssl3", "3.0.11-1~deb12u2")),
        ("/opt/images/shop-edge-2.0.tar", "cyclonedx-json", ("musl", "1.2.5-r0")),
    ] {
        let source = format!("docker-archive:{archive}");
        let out = backend.exec(&node, &argv(&["syft", "-q", &source, "-o", format])).await.unwrap();
        assert_eq!(out.code, 0, "{out:?}");
        let sbom = check::sbom::parse(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stderr));
        let found =
            sbom["packages"].as_array().unwrap().iter().any(|p| p["name"] == wanted.0 && p["version"] == wanted.1);
        assert!(found, "{archive}: no {wanted:?} in {sbom:#}");
    }
}

#[tokio::test]
async fn a_tool_the_script_did_not_build_fails_the_step_naming_the_script() {
    let (_home, backend) = common::local_node_backend();
    let rendered = common::node_steps_scenario(
        "no-tool",
        "/usr/local/bin/kubesec",
        "  - install-tool: {tool: kubesec}\n  - install-tool: {tool: nope}\n",
    );
    let err = ckslab::step::run_steps("setup", &rendered.scenario.setup, &rendered, &backend, &LogProgress)
        .await
        .unwrap_err();
    assert_eq!(err.index, 2, "{err}");
    assert!(err.to_string().contains("no node tool is called \"nope\"; ckslab has kubesec, syft"), "{err}");
    assert_eq!(err.applied, ["put kubesec on the node's PATH"]);
}
