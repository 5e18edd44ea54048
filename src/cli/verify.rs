//! `ckslab verify`: prove scenarios on the current cluster.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{Context, Spinner};
use crate::verify::{ScenarioResult, chain, junit, verify};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario ids (default with --all: every scenario this backend can run)
    ids: Vec<String>,
    /// Verify the whole catalog
    #[arg(long, conflicts_with = "ids")]
    all: bool,
    /// Also write JUnit XML here (for CI)
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Instead of proving each scenario alone, chain them on one cluster: start and solve each
    /// in order, then in reverse, then each wrong attempt, with no reset but each start's own.
    /// Proves that moving on from any scenario (solved or not) never breaks the next one
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
    let mut results: Vec<ScenarioResult> = Vec::new();
    let mut batches: Vec<Vec<crate::scenario::Rendered>> = Vec::new();
    let mut all = Vec::new();
    for id in &ids {
        all.push(catalog.get(id)?.render(&Default::default())?);
    }
    if args.chain {
        batches.push(all);
    } else {
        batches.extend(all.into_iter().map(|r| vec![r]));
    }
    for batch in batches {
        let id = if args.chain { "the moving-on chain".to_string() } else { batch[0].scenario.id.clone() };
        let spinner = Spinner::new(&format!("verifying {id}"));
        let result =
            if args.chain { chain(&lab, &batch, &spinner).await } else { verify(&lab, &batch[0], &spinner).await };
        spinner.finish(&format!("{id}: {}", if result.ok() { "proven" } else { "NOT proven" }));
        if args.format == super::list::ListFormat::Table {
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
        }
        results.push(result);
    }
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
