//! `ckslab lint`: check scenario files before they reach a cluster.

use std::path::PathBuf;
use std::process::ExitCode;

use super::Context;
use crate::scenario::{Catalog, lint::lint};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A scenarios folder (default: the built-in catalog, or --scenarios)
    dir: Option<PathBuf>,
}

pub async fn run(context: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let catalog = match args.dir.as_ref().or(context.scenarios.as_ref()) {
        Some(dir) => Catalog::from_dir(dir),
        None => Catalog::embedded(),
    };
    let catalog = match catalog {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(1));
        }
    };
    if catalog.scenarios.is_empty()
        && let Some(dir) = args.dir.as_ref().or(context.scenarios.as_ref())
    {
        let hint = if dir.join("scenario.yaml").is_file() {
            " (this is one scenario's folder: give the folder two levels up)"
        } else {
            ""
        };
        eprintln!(
            "{}: no scenario found: lint expects a folder laid out as <domain>/<id>/scenario.yaml, \
             like scenarios/cluster-setup/network-policy-lockdown/scenario.yaml{hint}",
            dir.display()
        );
        return Ok(ExitCode::from(1));
    }
    let mut problems = 0;
    let mut ids = std::collections::BTreeMap::new();
    for source in &catalog.scenarios {
        if let Some(other) = ids.insert(source.scenario.id.clone(), source.path.clone()) {
            eprintln!("{}:1:1: scenario id {:?} is also used by {other}", source.path, source.scenario.id);
            problems += 1;
        }
        for finding in lint(source) {
            eprintln!("{finding}");
            problems += 1;
        }
    }
    if problems > 0 {
        eprintln!("{problems} problem(s) in {} scenario(s)", catalog.scenarios.len());
        Ok(ExitCode::from(1))
    } else {
        println!("{} scenario(s) OK", catalog.scenarios.len());
        Ok(ExitCode::SUCCESS)
    }
}
