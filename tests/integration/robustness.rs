//! A panicking task, a cancelled run: reported, contained, nothing lost.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use corelanes::run::{self, Placement, Recording, RunStatus};
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
    for event in handle.events().iter() {
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
