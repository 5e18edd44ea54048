//! `ckslab hint`: the hint ladder, one rung at a time (the count survives restarts).

use std::process::ExitCode;

use super::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario id
    id: String,
    /// Show every hint at once
    #[arg(long)]
    all: bool,
}

pub async fn run(context: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let rendered = context.rendered(&args.id)?;
    let hints = &rendered.scenario.hints;
    if hints.is_empty() {
        println!("{} has no hints", args.id);
        return Ok(ExitCode::SUCCESS);
    }
    let history = crate::history::History::open(&context.home)?;
    let shown = if args.all { hints.len() } else { history.reveal_hint(&args.id, hints.len())? };
    for (index, hint) in hints.iter().take(shown).enumerate() {
        println!("hint {}/{}: {}", index + 1, hints.len(), hint.trim());
    }
    if shown < hints.len() {
        println!("(run again for the next hint)");
    }
    Ok(ExitCode::SUCCESS)
}
