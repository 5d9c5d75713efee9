//! The interactive terminal UI (being built on the `tui` branch).

use std::time::Duration;

use crate::source::sampler::SamplerConfig;

/// What the live view needs from the command line.
pub struct TuiConfig {
    pub sampler: SamplerConfig,
    pub interval: Duration,
    pub filter: String,
    pub numeric: bool,
}

/// Run the live view until the user quits.
pub fn run(_config: TuiConfig) -> anyhow::Result<()> {
    anyhow::bail!("the live view is not built yet; use --once")
}
