//! `corelanes record`: real programs, launched or attached, judged by the
//! kernel's slices as the claims are (see `claims.rs`): whether the busy
//! threads waited for a CPU that one another held, not wall-time ratios,
//! which other load on the machine stretches.

use std::ffi::OsString;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use corelanes::record::{self, Program, RecordConfig};
use corelanes::run::Recording;
use corelanes::telemetry::sched::{
    SchedMode, SchedSlice, SchedSource, SliceState, check_perf_against_env, overlap_ns,
    perf_checks_apply,
};
use corelanes::topology::Topology;

use super::{command, exclusive, finish_within, signal};

/// Records `program` with `sched`.
fn record_with(program: Program, duration: Option<Duration>, sched: SchedMode) -> Recording {
    let rec = record::record_until(
        RecordConfig {
            program,
            duration,
            sched,
            system_wide: false,
        },
        &crossbeam_channel::never(),
    );
    assert!(rec.program.is_some(), "did not start: {:?}", rec.failures);
    let report = rec.sched.as_ref().expect("a report");
    assert_eq!(report.per_thread.len(), rec.threads.len());
    rec
}

/// Records `program` (perf, else /proc sampling); `None` where perf was
/// refused (said as SKIPPED, or a failure where CI requires perf): these
/// checks are for exact slices.
fn recorded(program: Program, duration: Option<Duration>) -> Option<Recording> {
    let rec = record_with(program, duration, SchedMode::Auto);
    let refusal =
        (rec.sched_source != SchedSource::Perf).then(|| rec.sched_note.clone().unwrap_or_default());
    perf_checks_apply(refusal.as_deref()).then_some(rec)
}

fn launch(line: &[&str]) -> Program {
    Program::Launch(line.iter().map(OsString::from).collect())
}

fn spans(rec: &Recording, keep: impl Fn(&SchedSlice) -> bool) -> Vec<(u64, u64)> {
    let mut v: Vec<_> = rec
        .slices()
        .iter()
        .filter(|s| keep(s))
        .map(|s| (s.start_ns, s.end_ns))
        .collect();
    v.sort_unstable();
    v
}

/// The two threads that ran longest (the busy loops), busiest first.
fn busiest_two(rec: &Recording) -> [usize; 2] {
    let per = &rec.sched.as_ref().unwrap().per_thread;
    let mut order: Vec<usize> = (0..per.len()).collect();
    order.sort_by_key(|&t| std::cmp::Reverse(per[t].running_ns));
    assert!(order.len() >= 2, "two busy threads: {:?}", rec.threads);
    [order[0], order[1]]
}

/// How long each of `pair` waited for a CPU while the other ran on it,
/// over their running time: about 1 on one core, about 0 on a core each.
fn waited_for_each_other(rec: &Recording, pair: [usize; 2]) -> f64 {
    let mut cores: Vec<usize> = rec.slices().iter().map(SchedSlice::core).collect();
    cores.sort_unstable();
    cores.dedup();
    let mut waited = 0;
    for (me, other) in [(pair[0], pair[1]), (pair[1], pair[0])] {
        for &core in &cores {
            let on = |t: usize, state: SliceState| {
                spans(rec, |s| {
                    s.thread() == t && s.state == state && s.core() == core
                })
            };
            waited += overlap_ns(
                &on(me, SliceState::Runnable),
                &on(other, SliceState::Running),
            );
        }
    }
    let per = &rec.sched.as_ref().unwrap().per_thread;
    let running = per[pair[0]].running_ns + per[pair[1]].running_ns;
    waited as f64 / running.max(1) as f64
}

const TWO_LOOPS: &str = "timeout 1 sh -c 'while :; do :; done' & \
                         timeout 1 sh -c 'while :; do :; done' & wait";

fn describe(what: &str, rec: &Recording, pair: [usize; 2]) -> f64 {
    let per = &rec.sched.as_ref().unwrap().per_thread;
    let ran_together = overlap_ns(
        &spans(rec, |s| {
            s.thread() == pair[0] && s.state == SliceState::Running
        }),
        &spans(rec, |s| {
            s.thread() == pair[1] && s.state == SliceState::Running
        }),
    );
    let waited = waited_for_each_other(rec, pair);
    eprintln!(
        "{what}: {} threads, parallelism {:.2}, concurrency {:.2}, busy pair running {:.0} + {:.0} ms, \
         ran together {:.0} ms, waited for each other {:.2} of their running time",
        rec.threads.len(),
        rec.metrics().parallelism,
        rec.metrics().concurrency,
        per[pair[0]].running_ns as f64 / 1e6,
        per[pair[1]].running_ns as f64 / 1e6,
        ran_together as f64 / 1e6,
        waited
    );
    waited
}

#[test]
fn two_busy_child_processes_run_in_parallel_on_two_cores() {
    let _machine = exclusive();
    if Topology::get().allowed.len() < 2 {
        eprintln!("SKIPPED two_busy_child_processes…: only one CPU allowed");
        return;
    }
    // One loop pinned to each core: unpinned, the kernel balances the load
    // of the whole machine, and with other programs busy on one core it
    // was seen to keep both loops on the other (they then waited for each
    // other 57-74 % of their running time on this loaded 2-core VM).
    let allowed = &Topology::get().allowed;
    let pinned_loops = format!(
        "taskset -c {} timeout 1 sh -c 'while :; do :; done' & \
         taskset -c {} timeout 1 sh -c 'while :; do :; done' & wait",
        allowed[0], allowed[1]
    );
    let Some(rec) = recorded(launch(&["sh", "-c", &pinned_loops]), None) else {
        return;
    };
    assert_eq!(rec.program.as_ref().unwrap().exit_status, Some(0));
    // sh, two taskset-then-timeouts, two loops: every process of the tree was followed.
    assert!(rec.threads.len() >= 5, "{:?}", rec.threads);
    let pair = busiest_two(&rec);
    let waited = describe("two cores", &rec, pair);
    // Midpoint between the two stories (0 on a core each, ~1 on one core).
    assert!(waited < 0.5, "the loops took turns: {waited:.2}");
}

#[test]
fn two_busy_child_processes_take_turns_under_taskset_on_one_core() {
    let _machine = exclusive();
    let core = Topology::get().allowed[0].to_string();
    let Some(rec) = recorded(
        launch(&["taskset", "-c", &core, "sh", "-c", TWO_LOOPS]),
        None,
    ) else {
        return;
    };
    let pair = busiest_two(&rec);
    let waited = describe("one core", &rec, pair);
    let ran_together = overlap_ns(
        &spans(&rec, |s| {
            s.thread() == pair[0] && s.state == SliceState::Running
        }),
        &spans(&rec, |s| {
            s.thread() == pair[1] && s.state == SliceState::Running
        }),
    );
    // Exact switches: one core never runs two threads at once.
    assert_eq!(ran_together, 0);
    assert!(rec.metrics().parallelism < 1.05, "{:?}", rec.metrics());
    assert!(waited > 0.5, "the loops did not take turns: {waited:.2}");
}

#[test]
fn a_sleeping_program_is_mostly_blocked() {
    let _machine = exclusive();
    let Some(rec) = recorded(launch(&["sleep", "0.5"]), None) else {
        return;
    };
    let t = &rec.sched.as_ref().unwrap().per_thread[0];
    eprintln!("sleep 0.5: {t:?}, thread {:?}", rec.threads[0]);
    assert_eq!(
        rec.threads[0].name, "sleep",
        "named from its comm after exec"
    );
    assert!(t.blocked_ns >= 400_000_000, "{t:?}");
    assert!(t.running_ns < t.blocked_ns / 10, "{t:?}");
    assert!(t.switches_out_blocked >= 1, "{t:?}");
}

#[test]
fn sampling_proc_follows_a_program_where_perf_is_refused() {
    let _machine = exclusive();
    // The fallback, asked for: what a host that refuses perf gets.
    let rec = record_with(launch(&["sleep", "0.5"]), None, SchedMode::Procfs);
    assert_eq!(rec.sched_source, SchedSource::Procfs);
    assert!(rec.sched_note.as_deref().unwrap().contains("/proc"));
    let t = &rec.sched.as_ref().unwrap().per_thread[0];
    eprintln!("sampled sleep 0.5: {t:?}, thread {:?}", rec.threads[0]);
    // Renamed from the fork's "corelanes" once the sampler saw it after exec.
    assert_eq!(rec.threads[0].name, "sleep");
    // Sampled at 1 kHz from before exec: the sleep is seen whole, to a tick or two.
    assert!(t.blocked_ns >= 400_000_000, "{t:?}");
    assert!(t.running_ns < t.blocked_ns / 10, "{t:?}");
}

#[test]
fn attaching_sees_both_busy_threads_of_a_running_process() {
    let _machine = exclusive();
    let spin = "import threading, time\n\
                def spin():\n    end = time.time() + 4\n    while time.time() < end: pass\n\
                ts = [threading.Thread(target=spin) for _ in range(2)]\n\
                [t.start() for t in ts]\n[t.join() for t in ts]\n";
    let mut child = Command::new("python3")
        .args(["-c", spin])
        .stdin(Stdio::null())
        .spawn()
        .expect("python3 starts");
    let pid = child.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, Iterator::count) < 3 {
        assert!(
            Instant::now() < deadline,
            "python never started its threads"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let rec = recorded(Program::Attach(pid), Some(Duration::from_secs(1)));
    let _ = child.kill();
    let _ = child.wait();
    let Some(rec) = rec else {
        return;
    };
    let info = rec.program.as_ref().unwrap();
    assert!(info.attached && info.exit_status.is_none());
    assert!(rec.threads.len() >= 3, "{:?}", rec.threads);
    let per = &rec.sched.as_ref().unwrap().per_thread;
    let pair = busiest_two(&rec);
    describe("attached", &rec, pair);
    for t in pair {
        assert_eq!(rec.threads[t].name, "python3");
        // Python's GIL lets one run at a time: each ran a good part of the second.
        assert!(per[t].running_ns > 100_000_000, "{:?}", per[t]);
        assert!(rec.slices().iter().filter(|s| s.thread() == t).count() > 1);
    }
    assert!(
        rec.wall_ns < 2_000_000_000,
        "stopped after about 1 s: {}",
        rec.wall_ns
    );
}

/// Attaches to a program that runs `script` in `sh`, pinned to one core,
/// for one second; `None` where perf was refused. Also returns the kernel's
/// own count of the program's time on a CPU (`/proc/PID/schedstat`) from
/// just before the recording to just after it.
fn attached_for_a_second(script: &str) -> Option<(Recording, u64)> {
    let core = *Topology::get().allowed.last().unwrap();
    let mut child = Command::new("taskset")
        .args(["-c", &core.to_string(), "sh", "-c", script])
        .stdin(Stdio::null())
        .spawn()
        .expect("taskset starts");
    // Until taskset has pinned itself and become the program.
    let pid = child.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "taskset")
    {
        assert!(Instant::now() < deadline, "taskset never ran the program");
        std::thread::sleep(Duration::from_millis(5));
    }
    let on_cpu = || {
        let text = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).unwrap();
        corelanes::telemetry::thread_stats::parse_schedstat(&text)
            .unwrap()
            .0
    };
    let before = on_cpu();
    let rec = recorded(Program::Attach(pid), Some(Duration::from_secs(1)));
    let after = on_cpu();
    let _ = child.kill();
    let _ = child.wait();
    Some((rec?, after - before))
}

/// A thread that never switches while recorded (a busy loop alone on its
/// core, or one asleep throughout) leaves no switch record: it kept one
/// state all along, which the capture reads from /proc at the end.
#[test]
fn an_attached_thread_that_never_switches_is_still_shown() {
    let _machine = exclusive();
    for (script, busy) in [("while :; do :; done", true), ("exec sleep 30", false)] {
        let Some((rec, on_cpu)) = attached_for_a_second(script) else {
            return;
        };
        let t = &rec.sched.as_ref().unwrap().per_thread[0];
        eprintln!(
            "{script}: {t:?} over {} ms, on a CPU {on_cpu} ns by schedstat",
            rec.wall_ns / 1_000_000
        );
        let shown = t.running_ns + t.runnable_ns + t.blocked_ns;
        assert!(
            shown * 10 >= rec.wall_ns * 8,
            "{script}: {t:?} of {} ns",
            rec.wall_ns
        );
        // One thread accounts for no more time than passed, give or take
        // the capture's start before the recording's clock: never twice.
        assert!(
            shown * 2 <= rec.wall_ns * 3,
            "{script}: {t:?} of {} ns",
            rec.wall_ns
        );
        if busy {
            // Alone on its core it runs throughout; under load it shares
            // the core, and runs for as long as the kernel counted it on a
            // CPU (over a little more than the recording).
            assert!(
                t.running_ns * 10 >= on_cpu * 8,
                "{t:?}, on a CPU {on_cpu} ns"
            );
        } else {
            assert!(t.blocked_ns * 10 >= rec.wall_ns * 8, "{t:?}");
        }
    }
}

#[test]
fn ctrl_c_during_record_still_writes_the_files_and_exits_promptly() {
    let _machine = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("sleep.json");
    let trace = dir.path().join("sleep.trace.json");
    let args = [
        "record",
        "--json",
        json.to_str().unwrap(),
        "--trace",
        trace.to_str().unwrap(),
        "--",
        "sleep",
        "5",
    ];
    let mut child = command(&args).spawn().expect("corelanes starts");
    // The program runs once its comm says so (the fork is named corelanes).
    let deadline = Instant::now() + Duration::from_secs(30);
    let started = Instant::now();
    let launched = loop {
        let children =
            std::fs::read_to_string(format!("/proc/{}/task/{}/children", child.id(), child.id()))
                .unwrap_or_default();
        let sleeping = children.split_whitespace().any(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
        });
        // Ended already: perf refused, the program never ran.
        let gone = child.try_wait().is_ok_and(|status| status.is_some());
        if sleeping || gone || Instant::now() > deadline {
            break sleeping;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    if launched {
        std::thread::sleep(Duration::from_millis(300));
        signal(&child, "INT");
    }
    let out = finish_within(child, &args, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(launched, "sleep never ran: {stderr}");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "took {took:?} of sleep 5; {stderr}"
    );
    // sleep died of the forwarded SIGINT: 128 + 2, as a shell says.
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("summary written")).unwrap();
    assert_eq!(summary["program"]["exit_status"], 130);
    // Perf or its fallback record the same way; which one ran is CI's to check.
    let refusal =
        (summary["sched"]["source"] != "perf").then(|| summary["sched"]["note"].to_string());
    check_perf_against_env(refusal.as_deref());
    assert_eq!(summary["threads"][0]["name"], "sleep");
    assert!(summary["tasks"].as_array().unwrap().is_empty());
    assert!(!summary["sched"]["slices"].as_array().unwrap().is_empty());
    assert!(trace.exists(), "the trace was written");
}

#[test]
fn a_session_keeps_the_programs_name_and_exit_but_never_its_command_line() {
    let _machine = exclusive();
    // A command line is private (its arguments may name files, hosts, keys).
    let rec = record_with(
        launch(&["sh", "-c", "exec sleep 0.2 # secret-argument"]),
        None,
        SchedMode::Auto,
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("program.pftrace");
    let machine = corelanes::session::Machine::this();
    corelanes::session::save(&file, &[(&rec, &machine)]).unwrap();
    let bytes = std::fs::read(&file).unwrap();
    assert!(
        !bytes.windows(6).any(|w| w == b"secret"),
        "the command line reached the session"
    );
    let back = corelanes::session::open(&file).unwrap().remove(0).recording;
    let (was, is) = (
        rec.program.unwrap(),
        back.program.expect("the program is kept"),
    );
    assert_eq!(
        is.command, rec.threads[0].name,
        "named by its first thread's comm"
    );
    assert_eq!((is.pid, is.exit_status), (was.pid, Some(0)));
    assert_eq!(back.threads, rec.threads);
}

/// A Python program with `sleepers` threads waiting, two busy threads (their
/// tids on the first line of its output), and one more that starts five
/// threads on SIGUSR1 ("late" on its output then). Runs until killed.
fn many_threads(
    sleepers: usize,
) -> (
    std::process::Child,
    std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    Vec<i32>,
) {
    use std::io::BufRead;
    let program = format!(
        "import signal, threading, time\n\
         threading.stack_size(256 * 1024)\n\
         stop = threading.Event(); go = threading.Event()\n\
         def spin():\n    while not stop.is_set(): pass\n\
         def spawner():\n    go.wait()\n    late = [threading.Thread(target=stop.wait) for _ in range(5)]\n    \
         [t.start() for t in late]\n    print('late', flush=True)\n    stop.wait()\n\
         signal.signal(signal.SIGUSR1, lambda *_: go.set())\n\
         others = [threading.Thread(target=stop.wait) for _ in range({sleepers})] + [threading.Thread(target=spawner)]\n\
         busy = [threading.Thread(target=spin) for _ in range(2)]\n\
         [t.start() for t in others + busy]\n\
         print('busy', *[t.native_id for t in busy], flush=True)\n\
         while True: time.sleep(0.05)\n"
    );
    let mut child = Command::new("python3")
        .args(["-c", &program])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 starts");
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines
        .next()
        .expect("python says which threads are busy")
        .unwrap();
    let busy = first
        .split_whitespace()
        .skip(1)
        .map(|t| t.parse().unwrap())
        .collect();
    (child, lines, busy)
}

/// The threads of process `pid` now.
fn tids_of(pid: u32) -> Vec<i32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
        .collect()
}

/// Whether process `pid` runs its /proc sampler (`corelanes-proc`): with
/// perf, it starts once perf has attached to what it could.
fn sampling(pid: u32) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/task")).is_ok_and(|tasks| {
        tasks.filter_map(Result::ok).any(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|c| c.trim() == "corelanes-proc")
        })
    })
}

#[test]
fn attaching_past_the_open_file_limit_samples_the_rest_from_proc() {
    let _machine = exclusive();
    let (mut program, mut lines, busy) = many_threads(300);
    let pid = program.id();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("many.json");
    // 300 threads on N CPUs need 300·N events: 128 descriptors (soft and
    // hard, so raising the soft limit cannot help) cover a few dozen.
    let line = format!(
        "ulimit -n 128; exec \"$0\" record --pid {pid} --seconds 2 --json {}",
        json.display()
    );
    let binary = std::env::var("CORELANES_TEST_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_corelanes").into());
    let args = ["sh", "-c", &line, &binary];
    let recorder = Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh starts");
    // Once attached, one of the program's threads starts five more (most
    // likely one sampled from /proc, which no perf event follows): they
    // must be found too.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sampling(recorder.id()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    signal(&program, "USR1");
    assert_eq!(lines.next().unwrap().unwrap(), "late");
    let out = finish_within(recorder, &args, Duration::from_secs(60));
    let all = tids_of(pid);
    let _ = program.kill();
    let _ = program.wait();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("summary written")).unwrap();
    let threads = summary["threads"].as_array().unwrap();
    let recorded: std::collections::HashSet<i64> =
        threads.iter().map(|t| t["tid"].as_i64().unwrap()).collect();
    // Main, 300 sleepers, the spawner, two busy, five late.
    assert_eq!(all.len(), 1 + 300 + 1 + 2 + 5, "{all:?}");
    let missing: Vec<&i32> = all
        .iter()
        .filter(|t| !recorded.contains(&i64::from(**t)))
        .collect();
    assert!(missing.is_empty(), "threads not recorded: {missing:?}");
    for tid in &busy {
        let t = threads.iter().find(|t| t["tid"] == *tid).unwrap();
        let cpu_ns = t["cpu_ns"].as_u64().unwrap();
        eprintln!("busy thread {tid}: running {:.0} ms", cpu_ns as f64 / 1e6);
        assert!(cpu_ns > 100_000_000, "{t}");
    }
    let note = summary["sched"]["note"].as_str().unwrap_or_default();
    eprintln!("{} threads recorded; note: {note}", threads.len());
    if summary["sched"]["source"] == "perf" {
        check_perf_against_env(None);
        // "K of M threads were sampled from /proc …": at most 64 of them
        // (128 descriptors, two or more CPUs) had perf events.
        let (k, m) = note
            .split_once(" threads were sampled from /proc")
            .and_then(|(counts, _)| counts.split_once(" of "))
            .map(|(k, m)| (k.parse::<usize>().unwrap(), m.parse::<usize>().unwrap()))
            .unwrap_or_else(|| panic!("the note does not say how many were sampled: {note}"));
        assert_eq!(m, threads.len(), "{note}");
        assert!(k >= threads.len() - 64, "{note}");
        assert!(note.contains("ulimit -n"), "{note}");
    } else {
        // Only a refusal of perf itself may leave every thread to /proc,
        // never the descriptor limit.
        check_perf_against_env(Some(note));
        assert!(!note.contains("file descriptors"), "{note}");
        assert!(note.contains("/proc"), "{note}");
    }
}

#[test]
fn attaching_to_two_thousand_threads_records_them_all() {
    let _machine = exclusive();
    let (mut program, _lines, _busy) = many_threads(2000);
    let pid = program.id();
    let started = Instant::now();
    let rec = record_with(
        Program::Attach(pid as i32),
        Some(Duration::from_millis(500)),
        SchedMode::Auto,
    );
    let took = started.elapsed();
    let all = tids_of(pid);
    let _ = program.kill();
    let _ = program.wait();
    eprintln!(
        "attached to {} threads for 0.5 s: {:.2} s in all, {:?} source; note: {:?}",
        all.len(),
        took.as_secs_f64(),
        rec.sched_source,
        rec.sched_note
    );
    assert!(rec.failures.is_empty(), "{:?}", rec.failures);
    let recorded: std::collections::HashSet<i32> = rec.threads.iter().map(|t| t.tid).collect();
    assert_eq!(
        all.iter().filter(|t| !recorded.contains(t)).count(),
        0,
        "every thread recorded"
    );
}

#[test]
fn a_program_that_execs_is_named_after_the_last_program_it_became() {
    let _machine = exclusive();
    // sh becomes env, which becomes sleep; a forked sh also becomes sleep.
    let line = "sh -c 'exec sleep 0.3' & exec env sleep 0.4";
    let mut handle = record::start(RecordConfig {
        program: launch(&["sh", "-c", line]),
        duration: None,
        sched: SchedMode::Auto,
        system_wide: false,
    });
    let mut rec = Recording::new(record::program_config(SchedMode::Auto, false));
    // Named live as well as at the end: the lanes show a thread by the
    // name it has while the program runs.
    let mut named_live = std::collections::HashMap::new();
    let mut ended = false;
    for event in handle.events() {
        match &event {
            corelanes::telemetry::events::RunEvent::ThreadSeen(t) if !ended => {
                named_live.insert(t.tid, t.name.clone());
            }
            corelanes::telemetry::events::RunEvent::Sched(_) => ended = true,
            _ => {}
        }
        rec.ingest(event);
    }
    for event in handle.obituary() {
        rec.ingest(event);
    }
    let info = rec.program.as_ref().expect("it ran");
    assert_eq!(info.exit_status, Some(0));
    let names: Vec<(&str, i32)> = rec
        .threads
        .iter()
        .map(|t| (t.name.as_str(), t.tid))
        .collect();
    eprintln!("threads {names:?}, named while running {named_live:?}");
    assert_eq!(rec.threads.len(), 2, "{names:?}");
    for t in &rec.threads {
        assert_eq!(t.name, "sleep", "{names:?}");
        assert_eq!(
            named_live.get(&t.tid).map(String::as_str),
            Some("sleep"),
            "{named_live:?}"
        );
    }
    assert_eq!(
        rec.threads[0].tid, info.pid,
        "the program's own process first"
    );
}
