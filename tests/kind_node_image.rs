//! ckslab's offline kind node image (scripts/build-kind-node.sh), started on its own with
//! testcontainers: systemd and containerd come up, the kubelet and kubeadm are v1.34.4, and
//! the images kubeadm needs are preloaded in containerd's k8s.io namespace.

mod engine;

use std::time::{Duration, Instant};

use libtest_mimic::{Failed, Trial};
use testcontainers::core::{ExecCommand, Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

fn main() -> std::process::ExitCode {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let reason = engine::unavailable(&runtime);
    let trials = vec![Trial::test("node_image_boots_with_kubelet_kubeadm_and_preloaded_images", move || {
        runtime.block_on(node_image_boots())
    })];
    engine::run(trials, reason)
}

async fn exec(node: &ContainerAsync<GenericImage>, argv: &[&str]) -> Result<(i64, String), Failed> {
    let mut result =
        node.exec(ExecCommand::new(argv.iter().copied())).await.map_err(|e| format!("exec {argv:?}: {e}"))?;
    let stdout = String::from_utf8_lossy(&result.stdout_to_vec().await.map_err(|e| e.to_string())?).into_owned();
    let code = result.exit_code().await.map_err(|e| e.to_string())?.unwrap_or(-1);
    Ok((code, stdout))
}

async fn node_image_boots() -> Result<(), Failed> {
    let reference = engine::node_image().expect("checked in main");
    let (name, tag) = reference.rsplit_once(':').ok_or("CKSLAB_KIND_NODE_IMAGE has no tag")?;
    // As kind runs a node: privileged, tmpfs /run and /tmp, a volume for /var.
    let node = GenericImage::new(name, tag)
        .with_wait_for(WaitFor::Nothing)
        .with_privileged(true)
        .with_security_opt("seccomp=unconfined")
        .with_mount(Mount::tmpfs_mount("/run"))
        .with_mount(Mount::tmpfs_mount("/tmp"))
        .with_mount(Mount::volume_mount("", "/var"))
        .start()
        .await
        .map_err(|e| format!("starting {reference}: {e}"))?;

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, out) = exec(&node, &["systemctl", "is-active", "containerd"]).await?;
        if code == 0 && out.trim() == "active" {
            break;
        }
        if Instant::now() > deadline {
            let (_, status) = exec(&node, &["systemctl", "status", "containerd", "--no-pager"]).await?;
            return Err(format!("containerd not active after 60s ({}): {status}", out.trim()).into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let (_, kubelet) = exec(&node, &["kubelet", "--version"]).await?;
    assert_eq!(kubelet.trim(), "Kubernetes v1.34.4");
    let (_, kubeadm) = exec(&node, &["kubeadm", "version", "-o", "short"]).await?;
    assert_eq!(kubeadm.trim(), "v1.34.4");
    let (code, wanted) =
        exec(&node, &["kubeadm", "config", "images", "list", "--kubernetes-version", "v1.34.4"]).await?;
    assert_eq!(code, 0, "kubeadm config images list");
    let (_, images) = exec(&node, &["ctr", "-n", "k8s.io", "images", "ls", "-q"]).await?;
    let missing: Vec<&str> =
        wanted.lines().map(str::trim).filter(|w| !w.is_empty() && !images.lines().any(|i| i == *w)).collect();
    assert!(missing.is_empty(), "kubeadm's images missing from containerd: {missing:?}\npreloaded:\n{images}");
    Ok(())
}
