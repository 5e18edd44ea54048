//! `ckslab grade`: per-check results; exit 0 pass, 1 fail, 2 error.

use std::process::ExitCode;

use super::Context;
use crate::grade::Report;
use crate::grade::report::{self, Format};
use crate::lab::attempt::{self, AttemptError};

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
    let history = || {
        crate::history::History::open(&context.home)
            .inspect_err(|e| tracing::warn!("could not open the history: {e}"))
            .ok()
            .map(Box::new)
    };
    match attempt::grade_attempt(&lab, &rendered, history, |_| {}).await {
        Ok(mut attempt) => {
            show(&attempt.report, args.format);
            // After the result is shown: an unreachable classroom may take seconds to time out.
            attempt.report_to_classroom(&context.home).await;
            if let Some(problem) = &attempt.summary.classroom_problem {
                eprintln!("note: the grade was not reported to your classroom: {problem}");
            }
            Ok(ExitCode::from(attempt.report.exit_code() as u8))
        }
        Err(AttemptError::NoCluster { report, source }) => {
            // The checks say what they saw (each names the fix); the grade counts for nothing.
            show(&report, args.format);
            let err = AttemptError::NoCluster { report, source };
            eprintln!("error: {err}");
            Ok(ExitCode::from(2))
        }
        Err(err) => Err(err.into()),
    }
}

fn show(report: &Report, format: Format) {
    print!("{}", report::render(report, format));
    if format != Format::Table {
        println!();
    }
}
