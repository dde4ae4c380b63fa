//! Lessons about waiting and responsiveness (responsiveness, server, async)
//! and what they stand on: the server workload, the nice setter, the probe.
//! Load may legitimately make a lesson's claim fail, so these tests check
//! that each verdict agrees with its own figures and criterion, and the
//! properties that hold on any machine (a wait blocks, a nice value takes,
//! async tasks share one thread).

use corelanes::lesson::{self, LessonId, Outcome, Progress};
use corelanes::topology::Topology;
use corelanes::workload::WorkloadKind;
use serde_json::Value;

use crate::{corelanes, exclusive, words};

/// Runs lesson `id` to its end, with the steps and charts it reported.
fn lesson(id: LessonId) -> (Outcome, Vec<String>, usize) {
    let (_keep, stop) = crossbeam_channel::bounded::<()>(1);
    let (mut steps, mut charts) = (Vec::new(), 0);
    let outcome = lesson::run(id, Topology::get(), &stop, &mut |p| match p {
        Progress::Step(s) => steps.push(s),
        Progress::Charts(_) => charts += 1,
        Progress::Run(_) => {}
    });
    eprintln!("{}", serde_json::to_string_pretty(&outcome).unwrap());
    (outcome, steps, charts)
}

fn figure(o: &Outcome, key: &str) -> f64 {
    o.figures
        .get(key)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("figure {key} in {:?}", o.figures.keys()))
}

/// A thread's nice value as the kernel reports it: field 19 of its `stat`.
fn nice_in_proc(tid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
    let after_name = stat.rsplit_once(')').unwrap().1;
    after_name
        .split_whitespace()
        .nth(16)
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn the_server_workload_runs_from_the_cli_and_its_waits_block() {
    let _machine = exclusive();
    let out = corelanes(&words(
        "run --workload server --threads 2 --tasks 6 --task-ms 50 --placement one-core --json -",
    ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["config"]["workload"], "server");
    let tasks = summary["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 6);
    let num = |v: &Value, k: &str| v[k].as_u64().unwrap();
    for task in tasks {
        assert!(task["ok"].as_bool().unwrap(), "{task}");
        let lifetime = num(task, "end_ns") - num(task, "start_ns");
        let cpu = num(task, "cpu_ns");
        // 4/5 of each request is a sleep, which takes no CPU whatever the
        // load; 1/5 (10 ms at the idle rate) is computation, which load
        // only stretches in wall time, not in CPU time.
        assert!(
            cpu * 2 < lifetime,
            "a request computed {cpu} ns of its {lifetime} ns: its wait did not block"
        );
        assert!(
            cpu >= 2_500_000,
            "a request computed only {cpu} ns of its nominal 10 ms"
        );
    }
    // Each request's wait is a sleep: the kernel counts a voluntary switch.
    let voluntary: u64 = summary["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| num(t, "voluntary_switches"))
        .sum();
    assert!(voluntary >= 6, "{voluntary} voluntary switches for 6 waits");
}

#[test]
fn an_unknown_workload_lists_server_among_the_choices() {
    let out = corelanes(&words("run --workload nope --tasks 1"));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown workload 'nope'") && err.contains("server"),
        "{err}"
    );
    assert!(WorkloadKind::ALL.contains(&"server".parse().unwrap()));
}

#[test]
fn nice_19_takes_on_the_thread_it_names_and_lowering_it_needs_privilege() {
    std::thread::spawn(|| {
        let tid = corelanes::sys::gettid();
        let before = nice_in_proc(tid);
        corelanes::sys::set_thread_nice(tid, 19).expect("raising one's own nice is allowed");
        assert_eq!(nice_in_proc(tid), 19);
        assert_eq!(
            nice_in_proc(std::process::id() as i32),
            before,
            "only the named thread changed"
        );
        let lowered = corelanes::sys::set_thread_nice(tid, before);
        if corelanes::sys::is_root() {
            lowered.expect("root may lower it");
            assert_eq!(nice_in_proc(tid), before);
        } else {
            let err = lowered.expect_err("an unprivileged thread cannot lower its nice");
            assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied, "{err}");
            assert_eq!(nice_in_proc(tid), 19);
        }
    })
    .join()
    .unwrap();
    assert!(corelanes::sys::set_thread_nice(-1, 19).is_err());
}

#[test]
fn the_responsiveness_verdict_follows_its_own_figures() {
    let _machine = exclusive();
    let (o, steps, charts) = lesson(LessonId::Responsiveness);
    assert!(o.holds.is_some(), "{:?}: {}", o.reason, o.verdict);
    assert_eq!(steps.len(), 3, "one step per condition: {steps:?}");
    assert_eq!(charts, 3, "the histogram redrawn as each condition ends");
    assert_eq!(o.runs.len(), 3);
    let core = figure(&o, "core") as usize;
    for (run, threads) in o.runs.iter().zip([1, 3, 3]) {
        assert_eq!(run.threads.len(), threads);
        assert!(run.threads.iter().all(|t| t.pinned_core == Some(core)));
    }
    for k in ["alone", "hogs_nice0", "hogs_nice19"] {
        let (p50, p99, max) = (
            figure(&o, &format!("{k}_p50_ms")),
            figure(&o, &format!("{k}_p99_ms")),
            figure(&o, &format!("{k}_max_ms")),
        );
        assert!(p50 <= p99 && p99 <= max, "{k}: {p50} {p99} {max}");
        // Every 10 ms deadline of the 2.5 s is either woken for or skipped.
        let seen = figure(&o, &format!("{k}_wakes")) + figure(&o, &format!("{k}_missed"));
        assert_eq!(seen, 250.0, "{k}");
    }
    // A timer wake is never exactly on time (the kernel's timer slack alone is 50 µs).
    assert!(figure(&o, "alone_p50_ms") > 0.0);
    // The hogs' nice, as the kernel reported it while they ran.
    assert_eq!(
        o.figures["hogs_nice19_hog_nice"],
        serde_json::json!([19, 19])
    );
    // At nice 0 the hogs kept the nice they were born with: the process's.
    let inherited = nice_in_proc(std::process::id() as i32);
    assert_eq!(
        o.figures["hogs_nice0_hog_nice"],
        serde_json::json!([inherited, inherited])
    );
    let holds = figure(&o, "hogs_nice0_p99_ms") <= figure(&o, "nice0_bound_ms")
        && figure(&o, "hogs_nice19_p99_ms") <= figure(&o, "nice19_bound_ms");
    assert_eq!(o.holds, Some(holds), "{}", o.verdict);
    let bounds = format!("≤ {} ms", figure(&o, "nice0_bound_ms"));
    assert!(o.criterion.contains(&bounds), "{}", o.criterion);
}

#[test]
fn the_server_verdict_follows_its_own_figures() {
    let _machine = exclusive();
    let (o, _, _) = lesson(LessonId::Server);
    let cores = Topology::get().allowed.len();
    assert_eq!(o.runs.len(), if cores >= 2 { 6 } else { 3 });
    assert!(
        o.runs
            .iter()
            .all(|r| r.config.workload == WorkloadKind::Server)
    );
    for run in &o.runs {
        assert!(run.tasks.iter().all(|t| t.ok));
        // One thread serves its requests one after another: its wall is at
        // least every request's wait, whatever the load.
        if run.threads.len() == 1 {
            assert!(run.wall_ns >= 48 * 16_000_000, "{}", run.wall_ns);
        }
    }
    let throughput = |k: usize, p: usize| figure(&o, &format!("k{k}_p{p}_throughput_per_s"));
    let thread_gain = throughput(16, 1) / throughput(1, 1);
    assert!((thread_gain - figure(&o, "thread_gain")).abs() < 1e-9);
    assert!(o.criterion.contains("≥ 2.5×") && o.criterion.contains("≥ 1.5×"));
    if cores >= 2 {
        let core_gain = throughput(16, cores) / throughput(16, 1);
        assert_eq!(
            o.holds,
            Some(thread_gain >= 2.5 && core_gain >= 1.5),
            "{}",
            o.verdict
        );
    } else {
        assert_eq!(o.holds.is_none(), thread_gain >= 2.5, "{}", o.verdict);
    }
}

#[test]
fn async_waits_overlap_on_one_thread_and_the_verdict_follows_its_figures() {
    let _machine = exclusive();
    let (o, _, _) = lesson(LessonId::Async);
    assert_eq!(o.runs.len(), 6);
    // The runtime's runs are one thread each; the OS-thread runs are M threads.
    let threads: Vec<usize> = o.runs.iter().map(|r| r.threads.len()).collect();
    assert_eq!(threads, [1, 4, 1, 4, 1, 1]);
    // Every async task ran on the runtime's one OS thread…
    assert_eq!(figure(&o, "async_wait_os_threads"), 1.0);
    // …and their sleeps overlapped: 4 waits of 100 ms one after another
    // would take 400 ms; sleeping needs no CPU, so load cannot make it so.
    let wait = figure(&o, "wait_ms");
    assert!(figure(&o, "async_wait_wall_ms") >= wait);
    assert!(
        figure(&o, "async_wait_wall_ms") < 2.0 * wait,
        "{}",
        o.verdict
    );
    // A loop that never yields holds the runtime's only thread: the timer
    // task, asleep before the loop began, wakes only after all its chunks,
    // whatever the load (it counts work, not time)…
    let chunks = figure(&o, "loop_chunks");
    assert_eq!(figure(&o, "timer_chunks_no_yield"), chunks);
    // …while a loop that yields lets it in between chunks.
    assert!(figure(&o, "timer_chunks_yielding") < chunks);
    let cores = Topology::get().allowed.len().min(4) as f64;
    let holds = figure(&o, "async_wait_wall_ms") <= 150.0
        && figure(&o, "threads_wait_wall_ms") <= 150.0
        && figure(&o, "async_cpu_wall_ms") >= 0.8 * 4.0 * figure(&o, "cpu_ms")
        && (cores < 2.0 || figure(&o, "threads_cpu_speedup") >= 0.8 * cores)
        && figure(&o, "timer_chunks_no_yield") >= 0.5 * chunks
        && figure(&o, "timer_chunks_yielding") <= 3.0;
    assert_eq!(o.holds, Some(holds), "{}", o.verdict);
}
