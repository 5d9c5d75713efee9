//! Owner-join behaviour on fake `/proc` trees, tick by tick.

use super::OwnerJoin;
use super::fixture::{FakeProc, owners, pids, prefork, prefork_sockets, socket};
use crate::model::{Owners, Unattributed};

#[test]
fn shared_listener_lists_every_worker() {
    let fake = prefork();
    let mut join = OwnerJoin::new(fake.root());
    let mut sockets = prefork_sockets();
    let attr = join.attribute(&mut sockets);

    assert_eq!(pids(&attr, &sockets[0]), [100, 101, 102, 103]);
    assert_eq!(pids(&attr, &sockets[1]), [101]);
    assert_eq!(pids(&attr, &sockets[3]), [103]);
    assert_eq!(sockets[4].owners, Owners::None(Unattributed::NoInode));
    assert_eq!(sockets[5].owners, Owners::None(Unattributed::NotFound));
    assert_eq!(attr.processes.len(), 4, "bash holds no socket");
    let master = attr.processes.iter().find(|p| p.pid == 100).unwrap();
    assert_eq!(master.cmdline, "nginx: master process /usr/sbin/nginx");
    assert_eq!(
        (master.uid, master.user.as_str(), master.start_time),
        (0, "root", 1000)
    );
    let worker = attr.processes.iter().find(|p| p.pid == 102).unwrap();
    assert_eq!((worker.uid, worker.start_time), (33, 1002));
    assert_eq!(attr.coverage.attributed, 4);
    assert_eq!(attr.coverage.no_inode, 1);
    assert_eq!(attr.coverage.not_found, 1);
    assert!(attr.privileged);
    assert!(join.last_stats().full_walk);
    assert_eq!(join.last_stats().pids_scanned, 5);
}

#[test]
fn sockets_with_the_same_owners_share_one_set() {
    let fake = prefork();
    fake.add_socket(101, 8, 5201);
    let mut join = OwnerJoin::new(fake.root());
    let mut sockets = vec![
        socket(5101, 80, 33),
        socket(5000, 80, 0),
        socket(5201, 80, 33),
        socket(5000, 81, 0),
    ];
    let attr = join.attribute(&mut sockets);
    assert_eq!(sockets[0].owners, sockets[2].owners);
    assert_eq!(sockets[1].owners, sockets[3].owners);
    assert_ne!(sockets[0].owners, sockets[1].owners);
    assert_eq!(attr.owner_sets.len(), 2);
}

#[test]
fn second_tick_without_change_reads_no_fd_dirs() {
    let fake = prefork();
    let mut join = OwnerJoin::new(fake.root());
    let mut sockets = prefork_sockets();
    let first = join.attribute(&mut sockets);
    let before: Vec<_> = sockets.iter().map(|s| owners(&first, s)).collect();

    let mut sockets = prefork_sockets();
    let second = join.attribute(&mut sockets);
    let stats = join.last_stats();
    assert_eq!(
        (stats.pids, stats.pids_scanned, stats.full_walk),
        (5, 0, false)
    );
    // Only the shared listener's holders are re-checked, one readlink each.
    assert_eq!(stats.fds_read, stats.verified);
    assert_eq!(stats.verified, 4);
    let after: Vec<_> = sockets.iter().map(|s| owners(&second, s)).collect();
    assert_eq!(before, after);
}

#[test]
fn new_socket_in_a_changed_process_reads_only_that_process() {
    let fake = prefork();
    let mut join = OwnerJoin::new(fake.root());
    join.attribute(&mut prefork_sockets());

    // Worker 102 closes its connection 5102; fd 7 now holds 5302 and fd 9 a file.
    fake.remove_fd(102, 7);
    fake.add_socket(102, 7, 5302);
    fake.add_fd(102, 9, "/var/log/nginx/access.log");
    let mut sockets = vec![socket(5000, 80, 0), socket(5302, 80, 33)];
    let attr = join.attribute(&mut sockets);
    assert_eq!(pids(&attr, &sockets[1]), [102]);
    let stats = join.last_stats();
    assert_eq!(stats.pids_scanned, 1);
    // fd 7 (its socket left the sample) and the new fd 9; fd 6 (5000 still sampled) is trusted.
    assert_eq!(stats.fds_read - stats.verified, 2);
}

#[test]
fn process_exit_between_ticks_drops_it() {
    let fake = prefork();
    let mut join = OwnerJoin::new(fake.root());
    join.attribute(&mut prefork_sockets());

    fake.remove_process(103);
    let mut sockets = prefork_sockets();
    let attr = join.attribute(&mut sockets);
    assert_eq!(pids(&attr, &sockets[0]), [100, 101, 102]);
    assert_eq!(sockets[3].owners, Owners::None(Unattributed::NotFound));
    assert!(attr.processes.iter().all(|p| p.pid != 103));
}

#[test]
fn reused_pid_gets_the_new_name_never_the_old() {
    let fake = FakeProc::new();
    fake.add_process(200, "old-daemon", 5000, 0, &["old-daemon"]);
    fake.add_socket(200, 3, 7000);
    let mut join = OwnerJoin::new(fake.root());
    let mut sockets = vec![socket(7000, 22, 0)];
    let attr = join.attribute(&mut sockets);
    assert_eq!(
        owners(&attr, &sockets[0]),
        [(200, "old-daemon".to_string())]
    );

    // The process exits; a new one gets pid 200 and (even) the same inode number.
    fake.remove_process(200);
    fake.add_process(200, "new-daemon", 9000, 0, &["new-daemon", "--flag"]);
    fake.add_socket(200, 3, 7000);
    let mut sockets = vec![socket(7000, 22, 0)];
    let attr = join.attribute(&mut sockets);
    assert_eq!(
        owners(&attr, &sockets[0]),
        [(200, "new-daemon".to_string())]
    );
    assert_eq!(attr.processes[0].start_time, 9000);
    assert_eq!(attr.processes[0].cmdline, "new-daemon --flag");
}

#[test]
fn reused_pid_is_not_read_through_the_old_fd_table() {
    let fake = prefork();
    let mut join = OwnerJoin::new(fake.root());
    join.attribute(&mut prefork_sockets());

    // Worker 103 dies; an unrelated process gets pid 103 with a file where fd 6 was.
    fake.remove_process(103);
    fake.add_process(103, "cron", 7000, 0, &["cron"]);
    fake.add_fd(103, 6, "/var/log/cron.log");
    fake.add_fd(103, 7, "socket:[5103]");
    let mut sockets = prefork_sockets();
    let attr = join.attribute(&mut sockets);
    assert_eq!(pids(&attr, &sockets[0]), [100, 101, 102]);
    assert_eq!(owners(&attr, &sockets[3]), [(103, "cron".to_string())]);
    assert_eq!(
        join.last_stats().stale,
        0,
        "read in full, not trusted and then verified"
    );
}

#[test]
fn exec_in_place_shows_the_new_name() {
    let fake = FakeProc::new();
    fake.add_process(50, "sh", 100, 0, &["/bin/sh", "start.sh"]);
    fake.add_socket(50, 3, 900);
    let mut join = OwnerJoin::new(fake.root());
    let mut sockets = vec![socket(900, 80, 0)];
    let attr = join.attribute(&mut sockets);
    assert_eq!(owners(&attr, &sockets[0]), [(50, "sh".to_string())]);

    // `exec nginx`: same pid and start time, new comm and argv; close-on-exec fds went.
    fake.add_process(50, "nginx", 100, 0, &["nginx", "-g", "daemon off;"]);
    fake.add_fd(50, 4, "/dev/null");
    let attr = join.attribute(&mut sockets);
    assert_eq!(owners(&attr, &sockets[0]), [(50, "nginx".to_string())]);
    assert_eq!(attr.processes[0].cmdline, "nginx -g daemon off;");
}

#[test]
fn odd_and_malformed_stat_lines() {
    let fake = FakeProc::new();
    fake.add_process(10, "my (weird) proc", 42, 0, &["weird"]);
    fake.add_socket(10, 3, 800);
    fake.add_process(11, "broken", 43, 0, &["broken"]);
    fake.write_stat(11, "11 (broken) S 1 2 3");
    fake.add_socket(11, 3, 801);
    fake.add_process(12, "garbage", 44, 0, &["garbage"]);
    fake.write_stat(12, "\u{0}\u{1} no parens at all");
    fake.add_socket(12, 3, 802);
    let mut join = OwnerJoin::new(fake.root());
    let mut sockets = vec![socket(800, 1, 0), socket(801, 2, 0), socket(802, 3, 0)];
    let attr = join.attribute(&mut sockets);
    assert_eq!(
        owners(&attr, &sockets[0]),
        [(10, "my (weird) proc".to_string())]
    );
    assert_eq!(sockets[1].owners, Owners::None(Unattributed::NotFound));
    assert_eq!(sockets[2].owners, Owners::None(Unattributed::NotFound));
    // A malformed process is remembered, not re-read every tick.
    join.attribute(&mut sockets);
    assert_eq!(join.last_stats().pids_scanned, 0);
}

#[test]
fn new_process_is_read_the_tick_it_appears() {
    let fake = prefork();
    let mut join = OwnerJoin::new(fake.root());
    join.attribute(&mut prefork_sockets());
    fake.add_process(104, "nginx", 1100, 33, &["nginx: worker process"]);
    fake.add_socket(104, 6, 5000);
    let mut sockets = prefork_sockets();
    let attr = join.attribute(&mut sockets);
    assert_eq!(pids(&attr, &sockets[0]), [100, 101, 102, 103, 104]);
    assert_eq!(join.last_stats().pids_scanned, 1);
}

#[test]
fn many_processes_on_several_threads() {
    let fake = FakeProc::new();
    for pid in 1000..1300u32 {
        fake.add_process(pid, &format!("w{pid}"), u64::from(pid), 0, &["w"]);
        fake.add_socket(pid, 3, u64::from(pid) * 10);
        fake.add_socket(pid, 4, 1);
    }
    let mut join = OwnerJoin::new(fake.root());
    join.set_max_threads(2);
    let mut sockets: Vec<_> = (1000..1300u64)
        .map(|p| socket(p * 10, 80, 0))
        .chain([socket(1, 80, 0)])
        .collect();
    let attr = join.attribute(&mut sockets);
    assert_eq!(join.last_stats().threads, 2);
    for (i, s) in sockets[..300].iter().enumerate() {
        let pid = 1000 + i as u32;
        assert_eq!(owners(&attr, s), [(pid, format!("w{pid}"))]);
    }
    assert_eq!(
        pids(&attr, &sockets[300]).len(),
        300,
        "inode 1 is shared by all"
    );
}

#[test]
fn prefetch_then_attribute_reads_only_what_changed_between() {
    let fake = prefork();
    let mut join = OwnerJoin::new(fake.root());
    join.prefetch();
    assert!(join.last_stats().full_walk);
    assert_eq!(join.last_stats().pids_scanned, 5);
    // Between the prefetch and the sample, a worker accepts a connection.
    fake.add_socket(102, 9, 5502);
    let mut sockets = prefork_sockets();
    sockets.push(socket(5502, 80, 33));
    sockets.push(socket(8888, 2049, 0)); // held by nobody
    let attr = join.attribute(&mut sockets);
    let stats = join.last_stats();
    assert_eq!((stats.pids_scanned, stats.full_walk), (1, true));
    assert_eq!(pids(&attr, &sockets[0]), [100, 101, 102, 103]);
    assert_eq!(pids(&attr, &sockets[6]), [102]);
    // The prefetch counted as the walk: the unheld inode is not searched for again.
    join.set_min_full_walk_interval(std::time::Duration::ZERO);
    for _ in 0..2 {
        join.attribute(&mut sockets);
        let stats = join.last_stats();
        assert_eq!((stats.searched, stats.full_walk), (0, false));
    }
}

#[test]
fn missing_proc_root_lists_every_socket_unattributed() {
    let mut join = OwnerJoin::new("/nonexistent/proc".into());
    let mut sockets = prefork_sockets();
    let attr = join.attribute(&mut sockets);
    assert!(attr.processes.is_empty() && !attr.privileged);
    assert_eq!(attr.coverage.no_inode, 1);
    assert_eq!(attr.coverage.not_found, 5);
}
