//! `ckslab doctor`: what this machine has, what is missing and how to fix it.

use std::process::ExitCode;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use super::Context;
use crate::doctor::{self, Finding};
use crate::lab::missing_capabilities;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    format: super::list::ListFormat,
}

pub async fn run(context: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let findings = doctor::examine().await;
    let backend = context.backend().await;
    let catalog = context.catalog()?;
    let runnable: Vec<(String, Vec<String>)> = catalog
        .scenarios
        .iter()
        .map(|s| {
            let missing = missing_capabilities(&s.scenario, backend.as_ref());
            (s.scenario.id.clone(), missing.iter().map(|c| c.to_string()).collect())
        })
        .collect();
    if args.format == super::list::ListFormat::Json {
        let json = serde_json::json!({
            "backend": backend.name(),
            "findings": findings,
            "scenarios": runnable.iter().map(|(id, missing)| serde_json::json!({"id": id, "runnable": missing.is_empty(), "missing": missing})).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(vec!["", "what", "found", "fix"]);
    for Finding { ok, name, detail, fix } in &findings {
        table.add_row(vec![if *ok { "ok" } else { "MISSING" }, name, detail, fix.as_deref().unwrap_or("")]);
    }
    println!("{table}");
    println!("backend in use: {} (choose with --backend kind|local)", backend.name());
    let (ready, blocked): (Vec<_>, Vec<_>) = runnable.iter().partition(|(_, missing)| missing.is_empty());
    println!("{} of {} scenarios can run on it", ready.len(), runnable.len());
    for (id, missing) in blocked {
        println!("  {id}: needs {}", missing.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}
