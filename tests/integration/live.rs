//! The live path: what a run produces reaches whoever watches it while the
//! run goes on, not at its end (tasks through the workers' batches, kernel
//! slices streamed by the capture's drain thread), and workers are born on
//! their core.

use corelanes::bench::{Latency, live_latency_of};
use corelanes::run::Placement;
use corelanes::telemetry::sched::{SchedMode, SliceState};
use corelanes::workload::WorkloadKind::Cpu;

use super::{config, cores, exclusive, run};

const MS: u64 = 1_000_000;

#[test]
fn tasks_and_kernel_slices_arrive_while_the_run_goes_on() {
    let _machine = exclusive();
    let (core, _) = cores();
    // 2 threads × 4 tasks of 1000 ms on one core: two tasks end near 2 s, two near 4 s.
    let mut cfg = config(Cpu, 2, 4, 1000.0, Placement::OneCore(core));
    cfg.sched = SchedMode::Perf;
    let l = live_latency_of(cfg).expect("the run starts with perf capture");
    let (task_p99, slice_p99) = (
        Latency::quantile(&l.tasks, 0.99),
        Latency::quantile(&l.slices, 0.99),
    );
    eprintln!(
        "wall {} ms; tasks arrive {} ms p99 after they end, slices {} ms p99 ({} slices)",
        l.wall_ns / MS,
        task_p99 / MS,
        slice_p99 / MS,
        l.slices.len()
    );
    assert_eq!(l.tasks.len(), 4);
    // The tasks that ended well before the run did reached the watcher before it ended.
    let early: Vec<_> = l
        .tasks
        .iter()
        .filter(|&&(end, _)| end + 500 * MS < l.wall_ns)
        .collect();
    assert!(
        !early.is_empty(),
        "{:?} in a run of {} ns",
        l.tasks,
        l.wall_ns
    );
    for &&(end, at) in &early {
        assert!(
            at < l.wall_ns,
            "a task that ended at {end} ns arrived at {at} ns, after the run"
        );
    }
    // Slices stream through the run: two threads sharing a core for ~4 s switch
    // hundreds of times, and those of the first half arrive in the first half.
    assert!(l.slices.len() > 100, "{} slices streamed", l.slices.len());
    let half = l.wall_ns / 2;
    assert!(
        l.slices
            .iter()
            .any(|&(end, at)| end < half / 2 && at < half),
        "no slice of the first quarter arrived by half-time"
    );
    // At the end of the run everything would be seconds late: far under that.
    // (The targets, 50 and 100 ms p99, are measured by `corelanes bench`.)
    assert!(task_p99 < 500 * MS && slice_p99 < 500 * MS);
}

#[test]
fn pinned_workers_are_born_on_their_core() {
    let _machine = exclusive();
    let (_, second) = cores();
    // On the second core, if there is one: the controller thread that spawns
    // the workers is usually elsewhere, so a worker started there would show it.
    let core = second.unwrap_or(cores().0);
    let mut cfg = config(Cpu, 2, 2, 50.0, Placement::OneCore(core));
    cfg.sched = SchedMode::Perf;
    let rec = run(cfg);
    let report = rec.sched.as_ref().expect("perf capture");
    let elsewhere: Vec<_> = report
        .slices
        .iter()
        .filter(|s| s.state == SliceState::Running && s.core != core)
        .collect();
    assert!(
        elsewhere.is_empty(),
        "running away from core {core}: {elsewhere:?}"
    );
    assert!(
        rec.threads.iter().all(|t| t.migrations == 0),
        "{:?}",
        rec.threads
    );
}
