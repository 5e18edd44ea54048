//! `ckslab grade`: per-check results; exit 0 pass, 1 fail, 2 error.

use std::process::ExitCode;

use super::Context;
use crate::grade::report::{self, Format};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario id
    id: String,
    /// Output format (json and junit are for scripts and CI)
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

pub async fn run(context: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let rendered = context.rendered(&args.id)?;
    let lab = context.lab().await;
    let report = lab.grade(&rendered, |_| {}).await;
    let mut hints_used = 0;
    if let Ok(history) = crate::history::History::open(&context.home) {
        if let Err(e) = history.record_grade(&report, lab.backend.name()) {
            tracing::warn!("could not record the attempt: {e}");
        }
        hints_used = history.hints_revealed(&report.scenario).unwrap_or(0);
    }
    print!("{}", report::render(&report, args.format));
    if args.format != Format::Table {
        println!();
    }
    // After the result is shown: an unreachable classroom may take seconds to time out.
    if let Some(problem) = crate::classroom::client::report_if_joined(&context.home, &report, hints_used).await {
        eprintln!("note: the grade was not reported to your classroom: {problem}");
    }
    Ok(ExitCode::from(report.exit_code() as u8))
}
