//! A panicking task, a cancelled run, a dying controller, concurrent runs
//! re-anchoring the clock: reported, contained, nothing lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use corelanes::run::{self, Fault, Placement, Recording, RunStatus};
use corelanes::sys;
use corelanes::topology::Topology;
use corelanes::workload::{Plan, TaskBody, WorkloadKind};

use super::{config, exclusive};

struct PanicsOnTask(usize);

impl TaskBody for PanicsOnTask {
    fn run(&self, task: usize, _cancel: &AtomicBool) -> Result<(), String> {
        if task == self.0 {
            panic!("task {task} was built to fail");
        }
        std::thread::sleep(Duration::from_millis(2));
        Ok(())
    }
}

#[test]
fn a_panicking_task_is_reported_and_the_rest_of_the_run_completes() {
    let _machine = exclusive();
    let valid = config(WorkloadKind::Io, 2, 10, 2.0, Placement::Spread)
        .validate(Topology::get())
        .unwrap();
    let plan = Plan {
        tasks: 10,
        serial_first: false,
        body: Arc::new(PanicsOnTask(3)),
    };
    let mut rec = Recording::new(valid.config.clone());
    let handle = run::start_plan(valid, Ok(plan));
    for event in handle.events() {
        rec.ingest(event);
    }
    assert_eq!(rec.status, RunStatus::Finished);
    assert_eq!(
        rec.tasks.len(),
        10,
        "every task is recorded, the failed one too"
    );
    let failed: Vec<_> = rec.tasks.iter().filter(|t| !t.ok).map(|t| t.id).collect();
    assert_eq!(failed, vec![3]);
    assert_eq!(rec.failures.len(), 1);
    assert!(
        rec.failures[0].contains("task 3") && rec.failures[0].contains("built to fail"),
        "{:?}",
        rec.failures
    );
    assert_eq!(rec.metrics().tasks_failed, 1);
}

#[test]
fn stop_ends_a_long_run_promptly_and_keeps_what_was_recorded() {
    let _machine = exclusive();
    // 2 threads × 100 tasks of 200 ms would take 10 s.
    let valid = config(WorkloadKind::Cpu, 2, 100, 200.0, Placement::Spread)
        .validate(Topology::get())
        .unwrap();
    let mut rec = Recording::new(valid.config.clone());
    let handle = run::start(valid);
    // Stop once a task has finished, however long a loaded machine takes
    // (a fixed 500 ms saw none finish beside other load).
    let mut events = handle.events().iter();
    for event in events.by_ref() {
        rec.ingest(event);
        if !rec.tasks.is_empty() {
            break;
        }
    }
    let asked = Instant::now();
    handle.cancel();
    for event in events {
        rec.ingest(event);
    }
    let took = asked.elapsed();
    assert_eq!(rec.status, RunStatus::Cancelled);
    // Workers look at the flag every ~1 ms of work; 2 s leaves room for a loaded machine.
    assert!(took < Duration::from_secs(2), "stop took {took:?}");
    assert!(!rec.tasks.is_empty() && rec.tasks.len() < 100);
    assert!(
        rec.tasks.iter().any(|t| t.ok),
        "tasks finished before Stop stay recorded as done"
    );
}

#[test]
fn the_disk_workload_really_writes_and_removes_its_folder() {
    let _machine = exclusive();
    let leftovers = || {
        std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("corelanes-disk-")
            })
            .count()
    };
    let before = leftovers();
    let rec = super::run(config(WorkloadKind::Disk, 2, 4, 5.0, Placement::Spread));
    assert_eq!(rec.tasks.len(), 4);
    assert!(rec.tasks.iter().all(|t| t.ok));
    // fsync blocks: the threads gave up the CPU voluntarily while the data reached the disk.
    assert!(
        rec.threads
            .iter()
            .map(|t| t.voluntary_switches)
            .sum::<u64>()
            > 0
    );
    assert_eq!(
        leftovers(),
        before,
        "the temporary folder is removed after the run"
    );
}

#[test]
fn a_controller_that_panics_ends_its_run_as_failed_and_the_next_run_works() {
    let _machine = exclusive();
    // 2 threads × 100 tasks of 200 ms: 10 s, unless the workers are stopped.
    let valid = config(WorkloadKind::Cpu, 2, 100, 200.0, Placement::Spread)
        .validate(Topology::get())
        .unwrap();
    let began = Instant::now();
    let rec = run::run_to_end(valid.with_fault(Fault::ControllerPanics));
    let took = began.elapsed();
    assert_eq!(rec.status, RunStatus::Cancelled, "the run ended");
    assert!(
        took < Duration::from_secs(5),
        "the workers were stopped: {took:?}"
    );
    assert!(
        rec.failures
            .iter()
            .any(|f| f.contains("controller thread panicked")
                && f.contains("a fault injected by a test")),
        "{:?}",
        rec.failures
    );
    let next = super::run(config(WorkloadKind::Io, 2, 4, 2.0, Placement::Spread));
    assert_eq!(
        next.status,
        RunStatus::Finished,
        "the engine is still usable"
    );
}

/// How far the fast clock is from `CLOCK_MONOTONIC`: 0 when its reading lies
/// between two readings of the latter, however long the thread was preempted.
fn fast_clock_error_ns() -> u64 {
    let before = sys::monotonic_ns();
    let fast = sys::fast_monotonic_ns();
    let after = sys::monotonic_ns();
    before.saturating_sub(fast).max(fast.saturating_sub(after))
}

const CLOCK_TOLERANCE_NS: u64 = 5_000;

#[test]
fn the_fast_clock_stays_within_5_us_of_clock_monotonic_for_60_s() {
    // Mostly asleep, so it does not hold the machine: runs of other tests may
    // re-anchor the clock meanwhile, as they would in the app.
    sys::sync_fast_clock();
    if !sys::fast_clock_reads_tsc() {
        eprintln!("no trusted TSC here: the fast clock is CLOCK_MONOTONIC itself");
    }
    let began = Instant::now();
    let (mut worst, mut when) = (0, Duration::ZERO);
    while began.elapsed() < Duration::from_secs(60) {
        let error = fast_clock_error_ns();
        if error > worst {
            (worst, when) = (error, began.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        worst <= CLOCK_TOLERANCE_NS,
        "{worst} ns off CLOCK_MONOTONIC after {when:?}"
    );
}

#[test]
fn two_runs_at_once_never_tear_or_wrap_the_fast_clock() {
    let _machine = exclusive();
    let (first, second) = super::cores();
    let one = |core| {
        config(WorkloadKind::Cpu, 1, 100, 5.0, Placement::OneCore(core))
            .validate(Topology::get())
            .unwrap()
    };
    let valid = [one(first), one(second.unwrap_or(first))];
    let mut recs = valid.clone().map(|v| Recording::new(v.config));
    let done = AtomicBool::new(false);
    let worst = std::thread::scope(|s| {
        // Both controllers re-anchor the clock as they start, at the same moment…
        let mut handles = valid.map(run::start);
        // …and, while they run, more runs start: each re-anchors it again.
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                sys::sync_fast_clock();
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        // Meanwhile their workers read it, and so does this reader, flat out.
        let reader = s.spawn(|| {
            let mut worst = 0;
            while !done.load(Ordering::Relaxed) {
                worst = worst.max(fast_clock_error_ns());
            }
            worst
        });
        while recs.iter().any(Recording::is_running) {
            for (rec, handle) in recs.iter_mut().zip(&mut handles) {
                handle.try_events().into_iter().for_each(|e| rec.ingest(e));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        done.store(true, Ordering::Relaxed);
        reader.join().unwrap()
    });
    assert!(
        worst <= CLOCK_TOLERANCE_NS,
        "{worst} ns off CLOCK_MONOTONIC"
    );
    for rec in &recs {
        assert_eq!(rec.status, RunStatus::Finished);
        // A stamp that wrapped would be ~10¹⁹ ns, and the wall time with it.
        assert!(rec.wall_ns < 60_000_000_000, "wall {} ns", rec.wall_ns);
        for t in &rec.tasks {
            assert!(t.start_ns <= t.end_ns && t.end_ns <= rec.wall_ns, "{t:?}");
        }
    }
}
