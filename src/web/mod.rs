//! The local web UI (placeholder until the web module lands).

use std::path::PathBuf;

use crate::lab::Lab;
use crate::scenario::Catalog;

pub struct ServeOptions {
    pub port: u16,
    pub open_browser: bool,
    pub lab: Lab,
    pub catalog: Catalog,
    pub home: PathBuf,
}

pub async fn serve(_options: ServeOptions) -> anyhow::Result<()> {
    anyhow::bail!("the web UI is not built yet")
}
