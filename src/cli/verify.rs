//! `ckslab verify`: prove scenarios on the current cluster.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{Context, Spinner};
use crate::verify::{Afterwards, ScenarioResult, junit, verify, verify_all};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Each scenario is proven from its starting point: the broken state must fail grading, each wrong \
attempt must fail the checks it names, and each solution (the reference last) must pass.

With several scenarios (or --all) they are proven one after another on the same cluster with no \
undo in between: each starts by moving on from the one before, solved, as a learner does. \
--chain then starts and solves every one again in reverse order. The cluster is left as it was \
found.

Examples:
  ckslab verify etcd-encryption
  ckslab verify --all --chain --junit target/verify.xml")]
pub struct Args {
    /// Scenario ids (default with --all: every scenario this backend can run)
    ids: Vec<String>,
    /// Verify the whole catalog
    #[arg(long, conflicts_with = "ids")]
    all: bool,
    /// Also write JUnit XML here (for CI)
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// After proving the scenarios in order, start and solve each again in reverse order, each
    /// after the next one solved: with the forward pass this proves that moving on from any
    /// scenario, solved or not, in either direction, never breaks the next one
    #[arg(long)]
    chain: bool,
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    format: super::list::ListFormat,
}

pub async fn run(context: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let catalog = context.catalog()?;
    let ids: Vec<String> = if args.all {
        catalog.scenarios.iter().map(|s| s.scenario.id.clone()).collect()
    } else if args.ids.is_empty() {
        anyhow::bail!("name scenario ids or pass --all");
    } else {
        args.ids.clone()
    };
    let lab = context.lab().await;
    let mut all = Vec::new();
    for id in &ids {
        all.push(catalog.get(id)?.render(&Default::default())?);
    }
    let table = args.format == super::list::ListFormat::Table;
    let spinner = Spinner::new(&format!("verifying {}", if all.len() == 1 { ids[0].as_str() } else { "the catalog" }));
    let print = |result: &ScenarioResult| {
        if table {
            spinner.suspend(|| print_result(result));
        }
    };
    let results = if all.len() == 1 && !args.chain {
        let result = verify(&lab, &all[0], &spinner, Afterwards::Undo).await;
        print(&result);
        vec![result]
    } else {
        verify_all(&lab, &all, args.chain, &spinner, print).await
    };
    let proven = results.iter().all(ScenarioResult::ok);
    spinner.finish(if proven { "proven" } else { "NOT proven" });
    if args.format == super::list::ListFormat::Json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, junit(&results))?;
    }
    let cases: Vec<_> = results.iter().flat_map(|r| &r.cases).collect();
    let passed = cases.iter().filter(|c| c.ok).count();
    let skipped = cases.iter().filter(|c| c.skipped).count();
    let failed = cases.len() - passed - skipped;
    println!("verify: {passed} passed, {failed} failed, {skipped} skipped");
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn print_result(result: &ScenarioResult) {
    let verdict = if !result.cases.is_empty() && result.cases.iter().all(|c| c.skipped) {
        "skipped (not proven here)"
    } else if result.ok() {
        "proven"
    } else {
        "NOT proven"
    };
    println!("{}: {verdict}", result.scenario);
    for case in &result.cases {
        let mark = if case.skipped {
            "SKIP"
        } else if case.ok {
            "ok  "
        } else {
            "FAIL"
        };
        println!("  {mark} {} ({} ms)", case.name, case.millis);
        if !case.ok {
            println!("       {}", case.detail);
        }
    }
    // The same checks are skipped in every case of a scenario: name them once.
    let mut skipped: Vec<&str> = Vec::new();
    for check in result.cases.iter().flat_map(|c| &c.skipped_checks) {
        if !skipped.contains(&check.as_str()) {
            skipped.push(check);
        }
    }
    if !skipped.is_empty() {
        println!("  checks skipped on this backend, proven only where they run: {}", skipped.join("; "));
    }
}
