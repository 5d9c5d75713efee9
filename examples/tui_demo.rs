//! Try the TUI by hand on synthetic snapshots: `cargo run --example tui_demo -- [N]`.
use std::time::Duration;

use portside::source::sampler::SamplerConfig;
use portside::tui::{TuiConfig, run_with, synthetic::SyntheticSource};

fn main() -> anyhow::Result<()> {
    let n = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(300);
    let filter = std::env::args().nth(2).unwrap_or_default();
    run_with(
        TuiConfig {
            sampler: SamplerConfig::default(),
            interval: Duration::from_secs(1),
            filter,
            numeric: false,
        },
        SyntheticSource::new(n),
    )
}
