//! Moving on to and from a scenario that starts on another Kubernetes version (the upgrade
//! lab): each start is a fresh cluster at that version, and whatever comes after it (another
//! scenario, an undo) is a fresh default cluster, since an upgrade cannot be undone. Against a
//! fake backend that records what it was asked to make.

use std::collections::BTreeMap;
use std::sync::Arc;

use ckslab::backend::{Backend, Capability, LogProgress};
use ckslab::lab::Lab;
use ckslab::scenario::{Rendered, SourceScenario};
use common::fake_backend::FakeBackend;

mod common;

fn scenario(id: &str, extra: &str) -> Rendered {
    let text = format!(
        "id: {id}\ntitle: t\ndomain: cluster-hardening\ncompetencies: [upgrade]\ndifficulty: easy\nminutes: 1\n\
         {extra}\ntask: do it\nchecks: []\nsolutions: []\n"
    );
    let path = format!("{id}/scenario.yaml");
    let parsed = ckslab::scenario::load::parse(&path, &text).unwrap();
    let source = SourceScenario { path, text, files: BTreeMap::new(), scenario: parsed };
    source.render(&BTreeMap::new()).unwrap()
}

fn upgrade() -> Rendered {
    scenario(
        "upgrade",
        "requires: [api, kubernetes-upgrade]\nparams: {from: v1.33.13}\ncluster-version: \"{{ from }}\"",
    )
}

#[tokio::test]
async fn an_older_version_is_a_fresh_cluster_each_time_and_what_follows_is_a_fresh_default_one() {
    let home = tempfile::tempdir().unwrap();
    let backend = Arc::new(
        FakeBackend::new("/nonexistent/kubeconfig".into())
            .with_capabilities([Capability::Api, Capability::KubernetesUpgrade]),
    );
    let lab = Lab::new(backend.clone(), home.path());
    let plain = scenario("plain", "requires: [api]");

    lab.reset(&plain, &LogProgress).await.unwrap();
    assert!(backend.recreated.lock().unwrap().is_empty(), "a default scenario on a default cluster keeps it");

    let upgrade = upgrade();
    assert_eq!(upgrade.scenario.cluster_version.as_deref(), Some("v1.33.13"), "rendered from its params");
    lab.reset(&upgrade, &LogProgress).await.unwrap();
    lab.reset(&upgrade, &LogProgress).await.unwrap();
    assert_eq!(lab.active().map(|a| a.scenario.id), Some("upgrade".into()));
    lab.reset(&plain, &LogProgress).await.unwrap();
    lab.reset(&plain, &LogProgress).await.unwrap();
    assert_eq!(
        *backend.recreated.lock().unwrap(),
        [Some("v1.33.13".into()), Some("v1.33.13".into()), None],
        "each start of the upgrade is fresh, the next scenario gets a default cluster once"
    );

    // Undoing it (as verify does when it is done) is a default cluster too.
    lab.reset(&upgrade, &LogProgress).await.unwrap();
    lab.undo(&upgrade, &LogProgress).await.unwrap();
    assert_eq!(backend.recreated.lock().unwrap().last(), Some(&None));
    assert_eq!(backend.created_at(), None);
}

#[tokio::test]
async fn a_backend_that_cannot_make_the_version_refuses_before_touching_the_cluster() {
    let home = tempfile::tempdir().unwrap();
    let backend = Arc::new(FakeBackend::new("/nonexistent/kubeconfig".into()).with_capabilities([Capability::Api]));
    let lab = Lab::new(backend.clone(), home.path());
    let err = lab.reset(&upgrade(), &LogProgress).await.unwrap_err().to_string();
    assert!(err.contains("the fake backend lacks kubernetes-upgrade"), "{err}");
    assert!(backend.recreated.lock().unwrap().is_empty());
}
