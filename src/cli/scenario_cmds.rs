//! `ckslab show`, `start`, `reset`, `solve`: a scenario on the cluster.

use std::process::ExitCode;

use super::{Context, Spinner};
use crate::lab::Lab;
use crate::scenario::Rendered;

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// Scenario id (see `ckslab list`)
    id: String,
}

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// Scenario id (see `ckslab list`)
    id: String,
}

#[derive(Debug, clap::Args)]
pub struct ResetArgs {
    /// Scenario id
    id: String,
}

#[derive(Debug, clap::Args)]
pub struct SolveArgs {
    /// Scenario id
    id: String,
    /// Which solution: its name or number (1 is the reference)
    #[arg(long, default_value = "1")]
    solution: String,
}

/// The task as the learner reads it, with how to reach the cluster.
pub fn task_text(rendered: &Rendered, kubeconfig: &str, shell: &str) -> String {
    let s = &rendered.scenario;
    format!(
        "{} [{}] — {:?}, about {} minutes\n\n{}\n\nCluster: export KUBECONFIG={kubeconfig}\nNode shell: {shell}\nWhen done: ckslab grade {}   (hints: ckslab hint {})\n",
        s.title,
        s.id,
        s.difficulty,
        s.minutes,
        s.task.trim_end(),
        s.id,
        s.id
    )
}

pub async fn show(context: &Context, args: ShowArgs) -> anyhow::Result<ExitCode> {
    let rendered = context.rendered(&args.id)?;
    let backend = context.backend().await;
    let shell = backend.node_shell_hint(&backend.control_plane());
    print!("{}", task_text(&rendered, &backend.kubeconfig_path().display().to_string(), &shell));
    Ok(ExitCode::SUCCESS)
}

pub async fn start(context: &Context, args: StartArgs) -> anyhow::Result<ExitCode> {
    let (rendered, lab) = to_starting_point(context, &args.id, "starting", "scenario ready").await?;
    if let Ok(history) = crate::history::History::open(&context.home) {
        let _ = history.record_start(&args.id);
    }
    let shell = lab.backend.node_shell_hint(&lab.backend.control_plane());
    println!();
    print!("{}", task_text(&rendered, &lab.backend.kubeconfig_path().display().to_string(), &shell));
    Ok(ExitCode::SUCCESS)
}

/// `ckslab reset`: back to the scenario's starting point (hints revealed stay revealed).
pub async fn reset(context: &Context, args: ResetArgs) -> anyhow::Result<ExitCode> {
    to_starting_point(context, &args.id, "resetting", "scenario is back at its starting point").await?;
    Ok(ExitCode::SUCCESS)
}

/// Puts scenario `id` at its starting point with a spinner (what start and reset share).
async fn to_starting_point(context: &Context, id: &str, doing: &str, done: &str) -> anyhow::Result<(Rendered, Lab)> {
    let rendered = context.rendered(id)?;
    let lab = context.lab().await;
    let spinner = Spinner::new(&format!("{doing} {id}"));
    lab.reset(&rendered, &spinner).await?;
    spinner.finish(done);
    Ok((rendered, lab))
}

pub async fn solve(context: &Context, args: SolveArgs) -> anyhow::Result<ExitCode> {
    let rendered = context.rendered(&args.id)?;
    let solutions = &rendered.scenario.solutions;
    let index = match args.solution.parse::<usize>() {
        Ok(n) if n >= 1 && n <= solutions.len() => n - 1,
        _ => solutions.iter().position(|s| s.name == args.solution).ok_or_else(|| {
            let names: Vec<_> = solutions.iter().enumerate().map(|(i, s)| format!("{} ({})", i + 1, s.name)).collect();
            anyhow::anyhow!("no solution {:?}; {} has: {}", args.solution, args.id, names.join(", "))
        })?,
    };
    let lab = context.lab().await;
    let spinner = Spinner::new(&format!("applying solution {}", solutions[index].name));
    lab.solve(&rendered, index, &spinner).await?;
    spinner.finish(&format!("applied solution {}; `ckslab grade {}` checks it", solutions[index].name, args.id));
    Ok(ExitCode::SUCCESS)
}
