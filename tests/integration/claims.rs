//! The design's table of claims, each shown by a real measurement.
//!
//! Tolerances: the machine is shared and has 2 cores, so a figure that should
//! be 1.0 or 2.0 is checked against the midpoint between the two stories
//! (e.g. parallelism < 1.3 versus > 1.5): wide enough for noise, narrow
//! enough that the wrong story fails.

use corelanes::run::Placement;
use corelanes::workload::WorkloadKind::{Cpu, Io, Lock};

use super::{config, cores, exclusive, run};

#[test]
fn pinned_threads_report_their_core_at_every_task_start_and_end() {
    let _machine = exclusive();
    let rec = run(config(Cpu, 2, 8, 10.0, Placement::Spread));
    assert_eq!(rec.tasks.len(), 8);
    for task in &rec.tasks {
        let pinned = rec.threads[task.thread as usize]
            .pinned_core
            .expect("spread pins");
        assert_eq!(
            (task.core_at_start as usize, task.core_at_end as usize),
            (pinned, pinned),
            "{task:?}"
        );
        assert!(task.ok && task.end_ns > task.start_ns);
    }
}

#[test]
fn cpu_threads_on_one_core_overlap_in_lifetime_but_not_in_execution() {
    let _machine = exclusive();
    let (core, _) = cores();
    let rec = run(config(Cpu, 2, 4, 80.0, Placement::OneCore(core)));
    let m = rec.metrics();
    // Lifetimes overlap: some task of thread 0 is in flight while one of thread 1 is.
    let overlap = rec.tasks.iter().any(|a| {
        rec.tasks
            .iter()
            .any(|b| a.thread != b.thread && a.start_ns < b.end_ns && b.start_ns < a.end_ns)
    });
    assert!(
        overlap,
        "two threads on one core should have overlapping task lifetimes"
    );
    assert!(
        m.concurrency > 1.5,
        "both tasks in flight most of the time: {m:?}"
    );
    // …yet one core runs one thread at a time: about one core busy, wall ≈ CPU time.
    assert!(
        m.parallelism < 1.3 && m.parallelism > 0.5,
        "parallelism {:.2}",
        m.parallelism
    );
    let cpu_vs_wall = m.cpu_ns as f64 / m.wall_ns as f64;
    assert!(
        (0.5..1.3).contains(&cpu_vs_wall),
        "wall ≈ total CPU time: {cpu_vs_wall:.2}"
    );
}

#[test]
fn cpu_threads_on_two_cores_run_at_the_same_time() {
    let (first, Some(second)) = cores() else {
        eprintln!("skipped: this process may use only one core");
        return;
    };
    let _machine = exclusive();
    let one_core = run(config(Cpu, 2, 4, 80.0, Placement::OneCore(first))).metrics();
    let spread = run(config(
        Cpu,
        2,
        4,
        80.0,
        Placement::List(vec![first, second]),
    ))
    .metrics();
    assert!(
        spread.parallelism > 1.5,
        "parallelism {:.2}",
        spread.parallelism
    );
    let ratio = spread.wall_ns as f64 / one_core.wall_ns as f64;
    assert!(
        ratio < 0.75,
        "spread wall should be about half of one-core wall, got {ratio:.2}"
    );
}

#[test]
fn waiting_tasks_gain_from_concurrency_even_on_one_core() {
    let _machine = exclusive();
    let (core, _) = cores();
    let rec = run(config(Io, 4, 4, 150.0, Placement::OneCore(core)));
    let sum: u64 = rec
        .tasks
        .iter()
        .map(corelanes::telemetry::events::TaskRecord::duration_ns)
        .sum();
    let m = rec.metrics();
    // Four 150 ms sleeps on one core take ~150 ms, not 600 ms.
    assert!(
        (m.wall_ns as f64) < 0.5 * sum as f64,
        "wall {} vs sum {sum}",
        m.wall_ns
    );
    assert!(m.concurrency > 3.0, "four tasks in flight: {m:?}");
    assert!(m.parallelism < 0.2, "sleeping needs almost no CPU: {m:?}");
    assert!(
        rec.threads.iter().all(|t| t.voluntary_switches >= 1),
        "sleeps are voluntary switches"
    );
}

#[test]
fn a_lock_makes_many_threads_on_many_cores_take_turns() {
    let (first, Some(second)) = cores() else {
        eprintln!("skipped: this process may use only one core");
        return;
    };
    let _machine = exclusive();
    let rec = run(config(
        Lock,
        2,
        6,
        40.0,
        Placement::List(vec![first, second]),
    ));
    let m = rec.metrics();
    assert!(
        m.parallelism < 1.3,
        "a contended lock serialises: parallelism {:.2}",
        m.parallelism
    );
}

#[test]
fn a_sweep_shows_speedup_on_two_cores() {
    if cores().1.is_none() {
        eprintln!("skipped: this process may use only one core");
        return;
    }
    let _machine = exclusive();
    let base = config(Cpu, 1, 4, 60.0, Placement::Spread);
    let points =
        corelanes::sweep::sweep(&base, 2, corelanes::topology::Topology::get(), |_, _| {}).unwrap();
    assert_eq!(points.len(), 2);
    assert!((points[0].speedup - 1.0).abs() < 1e-9);
    assert!(
        points[1].speedup > 1.4,
        "2 threads on 2 cores: speedup {:.2}",
        points[1].speedup
    );
    assert!(corelanes::sweep::amdahl_fit(&points) > 0.5);
}

#[test]
fn amdahl_serial_part_runs_alone() {
    let _machine = exclusive();
    let rec = run(config(
        corelanes::workload::WorkloadKind::Amdahl,
        2,
        4,
        20.0,
        Placement::Spread,
    ));
    assert_eq!(rec.tasks.len(), 5, "one serial task and four parallel ones");
    let serial = rec.tasks.iter().find(|t| t.id == 0).unwrap();
    assert!(
        rec.tasks
            .iter()
            .filter(|t| t.id != 0)
            .all(|t| t.start_ns >= serial.end_ns)
    );
    // Serial part is 25 % of 80 ms of work: about as long as one task, much longer than each parallel task (15 ms).
    let parallel = rec.tasks.iter().find(|t| t.id == 1).unwrap();
    assert!(
        serial.cpu_ns > parallel.cpu_ns,
        "{serial:?} vs {parallel:?}"
    );
}
