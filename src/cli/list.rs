//! `ckslab list`: the catalog grouped by CKS domain, with weights and what this backend runs.

use std::process::ExitCode;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use super::Context;
use crate::curriculum::Curriculum;
use crate::lab::missing_capabilities;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    format: ListFormat,
}

pub async fn run(context: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let catalog = context.catalog()?;
    let backend = context.backend().await;
    let curriculum = Curriculum::get();
    let history = crate::history::History::open(&context.home).ok();
    let best = |id: &str| history.as_ref().and_then(|h| h.best_score(id).ok().flatten());
    if args.format == ListFormat::Json {
        let domains: Vec<_> = curriculum
            .domains
            .iter()
            .map(|domain| {
                let scenarios: Vec<_> = catalog
                    .scenarios
                    .iter()
                    .filter(|s| s.scenario.domain == domain.id)
                    .map(|s| {
                        let missing = missing_capabilities(&s.scenario, backend.as_ref());
                        serde_json::json!({
                            "id": s.scenario.id, "title": s.scenario.title, "difficulty": s.scenario.difficulty,
                            "minutes": s.scenario.minutes, "competencies": s.scenario.competencies,
                            "runnable": missing.is_empty(), "missing": missing, "best_score": best(&s.scenario.id),
                        })
                    })
                    .collect();
                serde_json::json!({"id": domain.id, "title": domain.title, "weight": domain.weight, "scenarios": scenarios})
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"backend": backend.name(), "domains": domains}))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    for domain in &curriculum.domains {
        let scenarios: Vec<_> = catalog.scenarios.iter().filter(|s| s.scenario.domain == domain.id).collect();
        println!("\n{} — {}% of the exam ({} scenarios)", domain.title, domain.weight, scenarios.len());
        if scenarios.is_empty() {
            continue;
        }
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED).set_header(vec!["id", "title", "level", "min", "best", "runs here"]);
        for s in scenarios {
            let missing = missing_capabilities(&s.scenario, backend.as_ref());
            let runs = if missing.is_empty() {
                "yes".to_string()
            } else {
                format!("needs {}", missing.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", "))
            };
            table.add_row(vec![
                s.scenario.id.clone(),
                s.scenario.title.clone(),
                format!("{:?}", s.scenario.difficulty).to_lowercase(),
                s.scenario.minutes.to_string(),
                best(&s.scenario.id).map(|b| format!("{b}%")).unwrap_or_else(|| "-".into()),
                runs,
            ]);
        }
        println!("{table}");
    }
    println!("\nbackend: {}. `ckslab show <id>` prints a task; `ckslab start <id>` sets it up.", backend.name());
    Ok(ExitCode::SUCCESS)
}
