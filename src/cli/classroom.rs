//! `ckslab classroom`: the instructor's board (`serve`) and the learner's side (`join`, `leave`,
//! `status`).

use std::net::SocketAddr;
use std::process::ExitCode;

use super::Context;
use crate::classroom::client::{self, Membership};
use crate::classroom::server::{self, ClassroomConfig, Secrets};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Instructor: serve the progress board and take learners' reports
    ///
    /// Prints the command learners run to join, and the board's address with the instructor
    /// key. Tokens are kept in the data dir, so learners stay joined across restarts.
    Serve {
        /// Address to listen on; the room's network must reach it
        #[arg(long, default_value = "0.0.0.0:7979")]
        listen: SocketAddr,
        /// The classroom's name, shown on the board and to learners
        #[arg(long, default_value = "cks")]
        name: String,
        /// The address learners use, if not http://<listen address> (e.g. http://10.0.0.5:7979)
        #[arg(long)]
        public_url: Option<String>,
        /// Make a new join token and instructor key (learners must join again)
        #[arg(long)]
        new_tokens: bool,
    },
    /// Learner: report every grade from now on to an instructor's classroom
    Join {
        /// The classroom's address, as the instructor gives it (http://host:port)
        url: String,
        /// The join token the instructor gives
        #[arg(long)]
        token: String,
        /// Your name on the instructor's board
        #[arg(long)]
        name: String,
    },
    /// Learner: stop reporting to the classroom
    Leave,
    /// Learner: which classroom grades are reported to, and whether it answers
    Status,
}

pub async fn run(context: &Context, args: Args) -> anyhow::Result<ExitCode> {
    match args.action {
        Action::Serve { listen, name, public_url, new_tokens } => {
            let dir = context.home.join("classroom");
            let secrets = Secrets::load_or_create(&dir, new_tokens)?;
            let scenarios = context
                .catalog()?
                .scenarios
                .iter()
                .map(|s| (s.scenario.id.clone(), s.scenario.title.clone()))
                .collect();
            let config = ClassroomConfig {
                name,
                join_token: secrets.join_token,
                instructor_key: secrets.instructor_key,
                public_url: public_url.unwrap_or_default(),
                scenarios,
            };
            server::serve(listen, config, &dir).await?;
            Ok(ExitCode::SUCCESS)
        }
        Action::Join { url, token, name } => {
            let membership = client::join(&url, &token, &name).await?;
            let path = membership.save(&context.home)?;
            println!(
                "joined classroom {:?} at {} as {:?}: every grade is now reported there ({})",
                membership.classroom,
                membership.url,
                membership.learner,
                path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Action::Leave => {
            if Membership::remove(&context.home)? {
                println!("left the classroom: grades are no longer reported");
            } else {
                println!("not in a classroom");
            }
            Ok(ExitCode::SUCCESS)
        }
        Action::Status => {
            let Some(m) = Membership::load(&context.home)? else {
                println!(
                    "not in a classroom (join one with `ckslab classroom join <url> --token <token> --name <name>`)"
                );
                return Ok(ExitCode::SUCCESS);
            };
            println!("reporting grades to classroom {:?} at {} as {:?}", m.classroom, m.url, m.learner);
            match client::check(&m).await {
                Ok(()) => {
                    println!("the classroom answers and accepts your token");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    println!("the classroom does not answer: {e}");
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}
