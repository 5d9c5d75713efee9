//! The orchestrator: parse arguments, pick the mode, run it, map errors to exit codes.

use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;
use std::thread;
use std::time::Instant;

use clap::Parser;
use clap::error::ErrorKind;

use portside_core::engine::{Engine, EngineConfig, KernelSource};

use crate::analysis::printable::quoted;
use crate::cli::{self, Cli, Command, Config, ConfigCommand, Mode, UsageError, stdout_is_tty};
use crate::config::{FileSettings, Settings, location};
use crate::output::say;
use crate::output::tick::{Parts, Print};
use crate::output::{self, Options};
use crate::record;
use crate::source::sampler::SamplerConfig;
use crate::source::sysctl::KernelSettings;

/// Exit code for bad input (flags, filters, durations).
pub const EXIT_USAGE: u8 = 2;

/// Run portside with the process's arguments; the whole program behind `main`.
pub fn main() -> ExitCode {
    if let Some(bad) = non_utf8_argument(std::env::args_os()) {
        say(&format!("portside: error: {bad}"));
        return ExitCode::from(EXIT_USAGE);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_exit(&e),
    };
    if let Some(Command::Serve(args)) = &cli.command {
        return crate::serve::main(args);
    }
    let config = match prepare(cli) {
        Ok(Some(c)) => c,
        Ok(None) => return ExitCode::SUCCESS,
        Err(Prepared::Usage(e)) => {
            say(&format!("portside: error: {e}"));
            return ExitCode::from(EXIT_USAGE);
        }
        Err(Prepared::Failed(e)) if is_broken_pipe(&e) => return ExitCode::SUCCESS,
        Err(Prepared::Failed(e)) => {
            say(&format!("portside: error: {e:#}"));
            return ExitCode::FAILURE;
        }
    };
    match run(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        // Ended by a signal: the terminal is restored; exit as a shell expects (128 + n).
        Err(e) if e.downcast_ref::<crate::tui::Terminated>().is_some() => {
            let sig = e
                .downcast_ref::<crate::tui::Terminated>()
                .map_or(15, |t| t.0);
            ExitCode::from(128u8.saturating_add(u8::try_from(sig).unwrap_or(0)))
        }
        Err(e) => {
            say(&format!("portside: error: {e:#}"));
            ExitCode::FAILURE
        }
    }
}

/// Why `prepare` stopped: bad input (exit 2) or a failure (exit 1).
enum Prepared {
    Usage(String),
    Failed(anyhow::Error),
}

impl From<UsageError> for Prepared {
    fn from(e: UsageError) -> Prepared {
        Prepared::Usage(e.0)
    }
}

/// Runs the subcommands; for a watch, reads the config file and lays the flags over it.
/// `Ok(None)`: a subcommand did all there was to do.
fn prepare(cli: Cli) -> Result<Option<Config>, Prepared> {
    let failed = |e: io::Error| Prepared::Failed(e.into());
    let command = cli.command.clone();
    match &command {
        Some(Command::Completions { shell }) => {
            let mut out = io::stdout().lock();
            cli::write_completions(*shell, &mut out);
            out.flush().map_err(failed)?;
            return Ok(None);
        }
        Some(Command::Man) => {
            let mut out = io::stdout().lock();
            cli::write_man(&mut out).map_err(failed)?;
            out.flush().map_err(failed)?;
            return Ok(None);
        }
        _ => {}
    }
    let env = location::Env::from_process();
    let located = location::locate(&cli.config_choice(), &env, Path::exists);
    if let Some(Command::Config(ConfigCommand::Init { force })) = command {
        return init(located.init_path.as_deref(), force).map(|()| None);
    }
    let file = located
        .path
        .as_deref()
        .map(FileSettings::read)
        .transpose()
        .map_err(|e| Prepared::Usage(e.to_string()))?;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let flags = match &command {
        Some(Command::Record(args)) => args.flags()?,
        Some(Command::Replay(args)) => args.flags(),
        _ => cli.flags()?,
    };
    let settings = Settings::layer(file.as_ref(), &flags, no_color)
        .map_err(|e| Prepared::Usage(e.to_string()))?;
    let recorded = match &command {
        Some(Command::Record(args)) => Some(record::record_cmd::run(args, &settings)),
        Some(Command::Replay(args)) => Some(record::replay_cmd::run(args, &settings)),
        _ => None,
    };
    if let Some(result) = recorded {
        if let Some(note) = &located.note {
            eprintln!("{note}");
        }
        return result.map(|()| None).map_err(|e| match e {
            record::CommandError::Usage(m) => Prepared::Usage(m),
            record::CommandError::Failed(e) => Prepared::Failed(e),
        });
    }
    if let Some(Command::Config(ConfigCommand::Show)) = command {
        settings
            .load_theme()
            .map_err(|e| Prepared::Usage(e.to_string()))?;
        if let Some(note) = &located.note {
            say(note);
        }
        let mut out = io::stdout().lock();
        out.write_all(settings.show_text(located.path.as_deref()).as_bytes())
            .and_then(|()| out.flush())
            .map_err(failed)?;
        return Ok(None);
    }
    if let Some(note) = &located.note {
        say(note);
    }
    Ok(Some(cli.into_config(&settings, stdout_is_tty())?))
}

/// `config init`: the commented defaults, written where the config file is read from.
fn init(path: Option<&Path>, force: bool) -> Result<(), Prepared> {
    let Some(path) = path else {
        return Err(Prepared::Usage(
            "no config directory: set HOME or XDG_CONFIG_HOME, or give --config FILE".into(),
        ));
    };
    if path.exists() && !force {
        return Err(Prepared::Usage(format!(
            "{} exists; pass --force to overwrite it",
            path.display()
        )));
    }
    let write = || -> io::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, Settings::default().init_text())
    };
    write()
        .map_err(|e| Prepared::Failed(anyhow::anyhow!("cannot write {}: {e}", path.display())))?;
    println!("wrote {}", path.display());
    Ok(())
}

/// The first argument that is not valid UTF-8, named by position and shown lossily.
fn non_utf8_argument(args: impl Iterator<Item = std::ffi::OsString>) -> Option<String> {
    args.enumerate().skip(1).find_map(|(n, arg)| {
        arg.to_str().is_none().then(|| {
            format!(
                "argument {n} ({}) is not valid UTF-8",
                quoted(&arg.to_string_lossy())
            )
        })
    })
}

/// Help and version print as clap renders them; every other error becomes one line
/// naming the bad part, with exit code 2.
fn clap_exit(e: &clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        _ => {
            // clap's first paragraph names the bad part; the rest is usage and tips.
            let rendered = e.render().to_string();
            let first: Vec<&str> = rendered
                .lines()
                .skip_while(|l| l.trim().is_empty())
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            say(&format!(
                "portside: error: {} (see --help)",
                first.join(" ").trim_start_matches("error: ")
            ));
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Run the chosen mode.
pub fn run(config: &Config) -> anyhow::Result<()> {
    match config.mode {
        Mode::Tui => crate::tui::run(crate::tui::TuiConfig {
            sampler: config.sampler.clone(),
            interval: config.interval,
            filter: config.filter_text.clone(),
            numeric: config.numeric,
            grouping: config.grouping,
            alerts: config.alerts.clone(),
            theme: config.theme,
            keymap: config.keymap.clone(),
        }),
        Mode::Print { count } => print(config, count),
    }
}

/// Print `count` ticks of the engine, `interval` apart (measured from the start of each
/// sample). The engine scopes groups, the TIME_WAIT report, listeners and alerts to the
/// filter, exactly as the live view's panels; streamed output carries its rates.
fn print(config: &Config, count: u64) -> anyhow::Result<()> {
    // What the filter lets the kernel select (states, ports, addresses) is not copied out of
    // it: every printed table, report and alert describes the filtered sockets (the
    // engine's scope), and printed output shows no host-wide totals.
    let source = KernelSource::start(SamplerConfig {
        selection: config.filter.selection(),
        one_shot: count == 1,
        ..config.sampler.clone()
    })?;
    let mut engine = Engine::new(
        source,
        EngineConfig {
            alerts: config.alerts.clone(),
            filter: config.filter.clone(),
            filter_text: config.filter_text.clone(),
            ..EngineConfig::default()
        },
    );
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let print = Print {
        format: config.format,
        opts: Options {
            numeric: config.numeric,
            group: config.group,
            grouping: config.grouping,
            reach: config.sampler.query.listening_only,
        },
        filter: &config.filter,
        count,
    };
    let mut noted = false;
    let mut selection_noted = false;
    for n in 0..count {
        let started = Instant::now();
        let tick = engine.tick()?;
        let scope = &tick.scope;
        let snapshot = &*scope.snapshot;
        let kernel = tick
            .settings
            .unwrap_or_else(|| KernelSettings::read(&config.sampler.proc_root));
        if !noted && let Some(note) = output::coverage_note(snapshot) {
            say(&note);
            noted = true;
        }
        if !selection_noted && let Some(note) = &tick.note {
            say(&format!("portside: {note}"));
            selection_noted = true;
        }
        let parts = Parts {
            tick: &tick,
            snapshot,
            insight: &scope.insight,
            fired: &scope.alerts,
            kernel: &kernel,
        };
        output::tick::write(&mut out, print, &parts, n)?;
        out.flush()?;
        drop(tick);
        if n + 1 < count
            && let Some(rest) = config.interval.checked_sub(started.elapsed())
        {
            thread::sleep(rest);
        }
    }
    Ok(())
}
