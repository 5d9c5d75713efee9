//! Owners follow exec and rename. A process that execs (keeping its listening fd) or
//! renames itself (`prctl(PR_SET_NAME)`) leaves its fd table as it was, so the table
//! signature does not send it to be re-read. Each tick, every owner not read this tick has
//! its `stat` read once (one small read per owning process, not per socket) and compared
//! with the identity its details were read under; a new program image or name re-reads the
//! details (name, command line, user).

use crate::source::owners::OwnerJoin;
use crate::source::owners::procroot::ProcRoot;
use crate::source::process::{self, DetailError};

impl OwnerJoin {
    /// Re-read the details of owners whose identity changed since they were read.
    /// Returns how many were re-read.
    pub(super) fn follow_owners(&mut self, root: &ProcRoot) -> usize {
        let tick = self.tick;
        let mut buf = Vec::new();
        let mut reread = 0;
        for (&pid, t) in &mut self.index.pids {
            let Some(owner) = &t.owner else { continue };
            if t.read.0 == tick {
                continue;
            }
            let Ok(dir) = root.pin(pid) else { continue };
            let dir = std::os::fd::AsFd::as_fd(&dir);
            let Ok(id) = process::read_identity(dir, &mut buf) else {
                continue;
            };
            // A reused pid has a new proc inode and was read in full already.
            if id == t.identity || id.start_time != owner.start_time {
                continue;
            }
            let name = process::parse_stat(&buf)
                .map(|s| String::from_utf8_lossy(s.comm).into_owned())
                .unwrap_or_default();
            match process::read_details(dir, pid, id.start_time, name, owner.uid, &mut buf) {
                Ok(p) => {
                    t.owner = Some(self.cache.insert_with(p, id.exec));
                    t.identity = id;
                    reread += 1;
                }
                Err(DetailError::Gone | DetailError::Denied | DetailError::Malformed) => {}
            }
        }
        reread
    }
}

#[cfg(test)]
mod tests {
    //! Live: python3 children on loopback that rename, exec and fork under one sampler.

    use std::io::{BufRead, BufReader, Write};
    use std::process::{Child, ChildStdin, Command, Stdio};
    use std::time::{Duration, Instant};

    use crate::model::{Process, Query};
    use crate::source::sampler::{Sampler, SamplerConfig};

    /// A python3 child running `script`; it prints its listening port first.
    struct Py {
        child: Child,
        stdin: ChildStdin,
        out: BufReader<std::process::ChildStdout>,
        port: u16,
    }

    impl Py {
        fn spawn(script: &str) -> Py {
            let mut child = Command::new("python3")
                .args(["-c", script])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("python3 (installed by .ci/run)");
            let stdin = child.stdin.take().unwrap();
            let mut out = BufReader::new(child.stdout.take().unwrap());
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            let port = line.trim().parse().expect("port");
            Py {
                child,
                stdin,
                out,
                port,
            }
        }

        /// Send a command line and wait for the child's answer line.
        fn ask(&mut self, command: &str) -> String {
            writeln!(self.stdin, "{command}").unwrap();
            self.stdin.flush().unwrap();
            let mut line = String::new();
            self.out.read_line(&mut line).unwrap();
            line
        }
    }

    impl Drop for Py {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn sampler() -> Sampler {
        Sampler::new(SamplerConfig {
            query: Query {
                tcp: true,
                udp: false,
                v4: true,
                v6: false,
                listening_only: true,
            },
            ..SamplerConfig::default()
        })
        .unwrap()
    }

    /// The owners of the listener on `port` in one sample.
    fn owners(sampler: &mut Sampler, port: u16) -> Vec<Process> {
        let snap = sampler.sample().unwrap();
        let socket = snap
            .sockets
            .iter()
            .find(|s| s.local.port() == port)
            .unwrap_or_else(|| panic!("listener {port} not sampled"));
        snap.owners_of(socket).cloned().collect()
    }

    const SERVER: &str = "import ctypes, os, socket, sys\n\
        s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n\
        os.set_inheritable(s.fileno(), True)\n\
        print(s.getsockname()[1], flush=True)\n\
        for line in sys.stdin:\n\
        \x20   cmd = line.split()\n\
        \x20   if cmd[0] == 'rename':\n\
        \x20       ctypes.CDLL(None).prctl(15, cmd[1].encode(), 0, 0, 0); print('ok', flush=True)\n\
        \x20   elif cmd[0] == 'exec':\n\
        \x20       print('ok', flush=True)\n\
        \x20       os.execv(sys.executable, [sys.executable, '-c', 'import sys; sys.stdin.read()', cmd[1]])\n";

    #[test]
    fn owner_details_follow_rename_and_exec() {
        let mut py = Py::spawn(SERVER);
        let mut sampler = sampler();
        let first = owners(&mut sampler, py.port);
        assert_eq!(first.len(), 1, "{first:?}");
        assert!(first[0].name.starts_with("python"), "{first:?}");
        // A rename keeps the fd table as it was: only the identity check sees it.
        assert_eq!(py.ask("rename renamed-by-test"), "ok\n");
        let renamed = owners(&mut sampler, py.port);
        assert_eq!(renamed[0].name, "renamed-by-test", "{renamed:?}");
        // An exec of the same program (same `comm` as before the rename is undone by exec)
        // with the listener kept: the new command line shows.
        assert_eq!(py.ask("exec marker-after-exec"), "ok\n");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = owners(&mut sampler, py.port);
            if now[0].cmdline.contains("marker-after-exec") {
                assert!(now[0].name.starts_with("python"), "{now:?}");
                assert_eq!(now[0].pid, first[0].pid);
                break;
            }
            // python3 needs a moment to exec; the listener never leaves the process.
            assert!(Instant::now() < deadline, "stale after exec: {now:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
        // And back to a rename after the exec.
        let again = owners(&mut sampler, py.port);
        assert_eq!(again[0].pid, first[0].pid);
    }

    /// Issue 16, defect 4: children that close the inherited listener and rename
    /// themselves must never be listed as its owners. The race is narrow (2 of 12,000
    /// samples in the report), so this forks hundreds of children against many samples.
    #[test]
    fn forked_children_that_let_go_are_never_owners() {
        let script = "import ctypes, os, socket, sys, time\n\
            s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n\
            print(s.getsockname()[1], flush=True)\n\
            end = time.time() + 4\n\
            while time.time() < end:\n\
            \x20   pid = os.fork()\n\
            \x20   if pid == 0:\n\
            \x20       s.close(); ctypes.CDLL(None).prctl(15, b'let-go-child', 0, 0, 0)\n\
            \x20       time.sleep(0.05); os._exit(0)\n\
            \x20   time.sleep(0.002)\n\
            \x20   while True:\n\
            \x20       try:\n\
            \x20           if os.waitpid(-1, os.WNOHANG)[0] == 0: break\n\
            \x20       except ChildProcessError: break\n\
            sys.stdin.read()\n";
        let py = Py::spawn(script);
        let mut sampler = sampler();
        let started = Instant::now();
        let mut taken = 0;
        while started.elapsed() < Duration::from_secs(4) {
            let owners = owners(&mut sampler, py.port);
            taken += 1;
            assert!(
                owners.iter().all(|p| p.name != "let-go-child"),
                "sample {taken}: a child that closed the listener is listed: {owners:?}"
            );
        }
        eprintln!("{taken} samples without a wrong owner");
        assert!(taken > 20, "{taken}");
    }
}
