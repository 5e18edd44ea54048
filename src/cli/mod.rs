//! The `ckslab` command line: one file per subcommand, all thin over the library.

mod bundle;
mod classroom;
mod doctor;
mod fetch;
mod grade;
mod hint;
mod lifecycle;
mod lint;
mod list;
mod node_shell;
mod progress;
mod scenario_cmds;
mod serve;
mod verify;
mod webhook;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::backend::{self, BackendKind, SharedBackend};
use crate::lab::Lab;
use crate::scenario::{Catalog, Rendered};

pub use progress::Spinner;

/// ckslab: practise for the Certified Kubernetes Security Specialist exam on a real cluster.
///
/// A scenario breaks a lab cluster on purpose (secrets in plaintext in etcd, no audit policy,
/// over-broad RBAC, ...). You fix it with your own tools (kubectl, vim on the node) and ckslab
/// grades the fix by probing its real effect.
///
/// A first session:
///
///   ckslab doctor                      # what this machine can run, and how to fix what is missing
///   ckslab up                          # create the lab cluster (kind with Docker, else local)
///   ckslab list                        # the catalog by CKS domain
///   ckslab start etcd-encryption       # set up and break the scenario, print the task
///   ckslab grade etcd-encryption       # check your fix (exit 0 pass, 1 fail, 2 error)
///   ckslab serve                       # or do all of it in the browser
///
/// In an instructor-led class, `ckslab classroom join <url> --token <token> --name <you>` once
/// sends every grade to the instructor's board (`ckslab classroom serve`).
#[derive(Debug, Parser)]
#[command(name = "ckslab", version, verbatim_doc_comment, max_term_width = 100)]
pub struct Cli {
    /// Which cluster backend to use [default: the one whose lab cluster exists; with none, kind
    /// when a Docker engine runs, else local]
    #[arg(long, global = true, env = "CKSLAB_BACKEND", value_enum)]
    pub backend: Option<BackendKind>,

    /// Load scenarios from this folder instead of the built-in catalog (for scenario authors)
    #[arg(long, global = true, env = "CKSLAB_SCENARIOS", value_name = "DIR")]
    pub scenarios: Option<PathBuf>,

    /// Where ckslab keeps clusters, history and backups [default: the user data dir]
    #[arg(long, global = true, env = "CKSLAB_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// More logging (-v info, -vv debug)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what is installed, what is missing (with the fix) and which scenarios can run here
    Doctor(doctor::Args),
    /// Create the lab cluster (keeps an existing one)
    Up(lifecycle::UpArgs),
    /// Delete the lab cluster ckslab created (never any other)
    Down(lifecycle::DownArgs),
    /// Show the lab cluster: backend, API health, nodes, control-plane components
    Status(lifecycle::StatusArgs),
    /// List the catalog, grouped by CKS domain with weights
    List(list::Args),
    /// Print a scenario's task, rendered with its parameters
    Show(scenario_cmds::ShowArgs),
    /// Set up and break a scenario on the cluster, then print its task
    Start(scenario_cmds::StartArgs),
    /// Reveal the next hint of a scenario (or all with --all)
    Hint(hint::Args),
    /// Grade a scenario: per-check results; exit 0 pass, 1 fail, 2 error
    Grade(grade::Args),
    /// Put the cluster back to how the scenario starts (restores manifests, cleans up)
    Reset(scenario_cmds::ResetArgs),
    /// Apply a scenario's reference solution (or another with --solution)
    Solve(scenario_cmds::SolveArgs),
    /// Check scenario files: unknown keys, params, check ids, files, curriculum ids
    Lint(lint::Args),
    /// Prove scenarios: the broken state fails, every solution passes, wrong attempts fail
    Verify(verify::Args),
    /// Serve the web UI on 127.0.0.1
    Serve(serve::Args),
    /// Open a shell on a lab node with the node's view of its files
    NodeShell(node_shell::Args),
    /// Run a webhook backend that scenarios use (e.g. image-policy)
    Webhook(webhook::Args),
    /// Download and verify the local backend's official binaries (or from --mirror)
    FetchBinaries(fetch::Args),
    /// Offline classrooms: one file with ckslab, the cluster binaries and images (create, install)
    Bundle(bundle::Args),
    /// Instructor-led classes: an instructor's progress board that learners report grades to
    Classroom(classroom::Args),
    /// Internal: the local backend's static-pod supervisor
    #[command(name = "__local-supervisor", hide = true)]
    LocalSupervisor(lifecycle::SupervisorArgs),
}

/// What every subcommand may need: the catalog, the backend, the data dir.
pub struct Context {
    pub backend_choice: Option<BackendKind>,
    pub scenarios: Option<PathBuf>,
    pub home: PathBuf,
}

impl Context {
    pub fn catalog(&self) -> anyhow::Result<Catalog> {
        Ok(match &self.scenarios {
            Some(dir) => Catalog::from_dir(dir)?,
            None => Catalog::embedded()?,
        })
    }

    pub fn rendered(&self, id: &str) -> anyhow::Result<Rendered> {
        let catalog = self.catalog()?;
        Ok(catalog.get(id)?.render(&BTreeMap::new())?)
    }

    pub async fn backend_kind(&self) -> BackendKind {
        match self.backend_choice {
            Some(kind) => kind,
            None => backend::detect_for(&self.home).await,
        }
    }

    pub async fn backend(&self) -> SharedBackend {
        backend::open(self.backend_kind().await, &self.home)
    }

    pub async fn lab(&self) -> Lab {
        Lab::new(self.backend().await, &self.home)
    }
}

/// Exit codes: 0 success, 1 a grade or verify that did not pass, 2 an error.
pub async fn run(cli: Cli) -> ExitCode {
    let context = Context {
        backend_choice: cli.backend,
        scenarios: cli.scenarios,
        home: cli.home.unwrap_or_else(backend::data_dir),
    };
    let result = match cli.command {
        Command::Doctor(args) => doctor::run(&context, args).await,
        Command::Up(args) => lifecycle::up(&context, args).await,
        Command::Down(args) => lifecycle::down(&context, args).await,
        Command::Status(args) => lifecycle::status(&context, args).await,
        Command::List(args) => list::run(&context, args).await,
        Command::Show(args) => scenario_cmds::show(&context, args).await,
        Command::Start(args) => scenario_cmds::start(&context, args).await,
        Command::Hint(args) => hint::run(&context, args).await,
        Command::Grade(args) => grade::run(&context, args).await,
        Command::Reset(args) => scenario_cmds::reset(&context, args).await,
        Command::Solve(args) => scenario_cmds::solve(&context, args).await,
        Command::Lint(args) => lint::run(&context, args).await,
        Command::Verify(args) => verify::run(&context, args).await,
        Command::Serve(args) => serve::run(&context, args).await,
        Command::NodeShell(args) => node_shell::run(&context, args).await,
        Command::Webhook(args) => webhook::run(args).await,
        Command::Classroom(args) => classroom::run(&context, args).await,
        Command::FetchBinaries(args) => fetch::run(&context, args).await,
        Command::Bundle(args) => bundle::run(&context, args).await,
        Command::LocalSupervisor(args) => lifecycle::supervise(args).await,
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", error_text(&err));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes, each said once: most of ckslab's errors already say their
/// cause in their own message, which `{:#}` would repeat.
fn error_text(err: &anyhow::Error) -> String {
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
    }
    text
}

#[cfg(test)]
mod error_text_tests {
    use super::error_text;

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory (os error 2)");
        let err = anyhow::Error::new(crate::backend::BackendError::io("writing the kind config", io));
        assert_eq!(error_text(&err), "writing the kind config: No such file or directory (os error 2)");
        let wrapped = anyhow::anyhow!("disk gone").context("saving the report");
        assert_eq!(error_text(&wrapped), "saving the report: disk gone");
    }
}
