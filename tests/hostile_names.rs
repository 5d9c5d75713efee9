//! Process names are chosen by any user: a name full of terminal escapes or a spreadsheet
//! formula must reach no text output raw (issue 16, defect 1).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A python3 process that renames itself (`prctl(PR_SET_NAME)`) and listens on loopback;
/// it exits when its stdin closes.
struct Named {
    child: Child,
    port: u16,
}

impl Named {
    fn spawn(name: &[u8]) -> Named {
        let name_lit = name.iter().fold(String::new(), |mut lit, b| {
            use std::fmt::Write as _;
            let _ = write!(lit, "\\x{b:02x}");
            lit
        });
        let script = format!(
            "import ctypes, socket, sys\n\
             ctypes.CDLL(None).prctl(15, b'{name_lit}', 0, 0, 0)\n\
             s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n\
             print(s.getsockname()[1], flush=True)\n\
             sys.stdin.read()\n"
        );
        let mut child = Command::new("python3")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 (installed by .ci/run)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("port from the child");
        Named { child, port }
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn portside(args: &[&str]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_portside"))
        .args(args)
        .output()
        .expect("run portside");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn assert_no_controls(args: &[&str], out: &[u8]) {
    let text = String::from_utf8_lossy(out);
    let bad: Vec<char> = text
        .chars()
        .filter(|&c| c != '\n' && c.is_control())
        .collect();
    assert!(bad.is_empty(), "{args:?} printed {bad:?} raw:\n{text}");
}

#[test]
fn escape_sequences_in_a_process_name_are_shown_not_sent() {
    let evil = Named::spawn(b"\x1b]2;PWN\x07\x1b[2J");
    let filter = format!("lport:{}", evil.port);
    for args in [
        vec!["--once", "-t", filter.as_str()],
        vec!["--once", "--group", "-t", filter.as_str()],
        vec!["--once", "--format", "csv", "-t", filter.as_str()],
        vec![
            "--once",
            "--group",
            "--format",
            "csv",
            "-t",
            filter.as_str(),
        ],
    ] {
        let out = portside(&args);
        assert_no_controls(&args, &out);
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.contains("\\x1b]2;PWN\\x07\\x1b[2J"),
            "{args:?}: the name should show escaped:\n{text}"
        );
    }
    // JSON keeps the real name, escaped by the JSON encoder.
    let json = portside(&["--once", "--format", "json", "-t", &filter]);
    assert_no_controls(&["json"], &json);
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(
        v["sockets"][0]["processes"][0]["name"],
        "\u{1b}]2;PWN\u{7}\u{1b}[2J"
    );
}

#[test]
fn a_formula_as_process_name_is_not_a_formula_in_csv() {
    let evil = Named::spawn(b"=1+2*cmd|A0");
    let filter = format!("lport:{}", evil.port);
    for args in [
        vec!["--once", "--format", "csv", "-t", filter.as_str()],
        vec![
            "--once",
            "--group",
            "--format",
            "csv",
            "-t",
            filter.as_str(),
        ],
    ] {
        let out = String::from_utf8(portside(&args)).unwrap();
        let row = out
            .lines()
            .nth(1)
            .unwrap_or_else(|| panic!("{args:?}: {out}"));
        let cells: Vec<&str> = row.split(',').collect();
        assert!(cells.contains(&"'=1+2*cmd|A0"), "{args:?}: {row}");
        assert!(
            cells.iter().all(|c| !c.starts_with(['=', '+', '-', '@'])),
            "{args:?}: {row}"
        );
    }
}
