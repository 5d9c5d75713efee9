//! The line protocol between the coordinator and its workers: commands on the worker's
//! stdin, reports on its stdout. One line each, `word key=value ...`; EOF on stdin means stop.

use std::fmt;

/// Coordinator -> client worker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Command {
    /// Create this many `TIME_WAIT` sockets, then report `TwDone`.
    TimeWait(u32),
    /// Open and close this many connections per second (0 stops churn).
    Churn(f64),
}

/// Worker -> coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// A server has all its listeners up.
    Listening(u32),
    /// A server holds this many accepted connections (sent when it changes).
    Held(u32),
    /// A client built its share: `established` held connections, `close_wait` closed.
    Built { established: u32, close_wait: u32 },
    /// A client finished a `TIME_WAIT` batch, creating `made` of the requested.
    TwDone { made: u32 },
    /// Something went wrong; the worker exits after saying so.
    Failed(String),
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::TimeWait(n) => write!(f, "tw {n}"),
            Command::Churn(r) => write!(f, "churn {r}"),
        }
    }
}

impl Command {
    pub fn parse(line: &str) -> Result<Command, String> {
        let mut words = line.split_whitespace();
        let bad = || format!("bad command {line:?}");
        match (words.next(), words.next(), words.next()) {
            (Some("tw"), Some(n), None) => n.parse().map(Command::TimeWait).map_err(|_| bad()),
            (Some("churn"), Some(r), None) => match r.parse::<f64>() {
                Ok(r) if r.is_finite() && r >= 0.0 => Ok(Command::Churn(r)),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Report::Listening(n) => write!(f, "listening {n}"),
            Report::Held(n) => write!(f, "held {n}"),
            Report::Built {
                established,
                close_wait,
            } => write!(f, "built {established} {close_wait}"),
            Report::TwDone { made } => write!(f, "tw-done {made}"),
            Report::Failed(msg) => write!(f, "failed {}", msg.replace('\n', " ")),
        }
    }
}

impl Report {
    pub fn parse(line: &str) -> Result<Report, String> {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        let bad = || format!("bad report {line:?}");
        let num = |s: &str| s.trim().parse::<u32>().map_err(|_| bad());
        match word {
            "listening" => num(rest).map(Report::Listening),
            "held" => num(rest).map(Report::Held),
            "built" => {
                let (e, c) = rest.split_once(' ').ok_or_else(bad)?;
                Ok(Report::Built {
                    established: num(e)?,
                    close_wait: num(c)?,
                })
            }
            "tw-done" => num(rest).map(|made| Report::TwDone { made }),
            "failed" => Ok(Report::Failed(rest.to_owned())),
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip() {
        for c in [
            Command::TimeWait(300),
            Command::Churn(12.5),
            Command::Churn(0.0),
        ] {
            assert_eq!(Command::parse(&c.to_string()), Ok(c));
        }
        assert!(Command::parse("tw").is_err());
        assert!(Command::parse("tw -1").is_err());
        assert!(Command::parse("churn NaN").is_err());
        assert!(Command::parse("churn -3").is_err());
        assert!(Command::parse("tw 1 2").is_err());
    }

    #[test]
    fn reports_round_trip() {
        for r in [
            Report::Listening(10),
            Report::Held(4_000),
            Report::Built {
                established: 150,
                close_wait: 22,
            },
            Report::TwDone { made: 75 },
            Report::Failed("connect 127.0.0.1:443: refused".into()),
        ] {
            assert_eq!(Report::parse(&r.to_string()), Ok(r));
        }
        assert_eq!(
            Report::parse(&Report::Failed("a\nb".into()).to_string()),
            Ok(Report::Failed("a b".into()))
        );
        assert!(Report::parse("held x").is_err());
        assert!(Report::parse("built 1").is_err());
        assert!(Report::parse("hello").is_err());
    }
}
