//! The one integration test binary: real threads on real cores, the CLI as a
//! user runs it, the app's state driven without a GPU, and (ignored unless a
//! display is present) a real window.
//!
//! Tests that run workloads take `exclusive()` first: on a 2-core machine two
//! CPU-bound experiments at once would measure each other, not the claim.

mod claims;
mod cli;
mod exports;
#[cfg(feature = "gui")]
mod gui;
mod live;
mod robustness;
mod sched;
mod session;
#[cfg(feature = "gui")]
mod window;

use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use corelanes::run::{self, Placement, Recording, RunConfig};
use corelanes::telemetry::sched::SchedMode;
use corelanes::topology::Topology;
use corelanes::workload::WorkloadKind;

static MACHINE: Mutex<()> = Mutex::new(());

/// Holds the machine for one experiment at a time.
pub fn exclusive() -> MutexGuard<'static, ()> {
    MACHINE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub fn config(
    workload: WorkloadKind,
    threads: usize,
    tasks: usize,
    task_ms: f64,
    placement: Placement,
) -> RunConfig {
    RunConfig {
        workload,
        threads,
        tasks,
        task_ms,
        placement,
        serial: 0.25,
        sched: SchedMode::Off,
    }
}

pub fn run(config: RunConfig) -> Recording {
    let valid = config
        .validate(Topology::get())
        .expect("test configs are valid");
    let rec = run::run_to_end(valid);
    assert!(
        rec.failures.is_empty(),
        "unexpected failures: {:?}",
        rec.failures
    );
    rec
}

/// The first allowed core, and the first two when there are two.
pub fn cores() -> (usize, Option<usize>) {
    let allowed = &Topology::get().allowed;
    (allowed[0], allowed.get(1).copied())
}

/// Runs the `corelanes` binary as a user would. One that runs past 180 s (a
/// window that never closes, say) is killed and fails the test, not CI.
pub fn corelanes(args: &[&str]) -> Output {
    finish(command(args).spawn().expect("the binary starts"), args)
}

/// The `corelanes` binary with these arguments, its output captured.
pub fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_corelanes"));
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Waits for a started `corelanes` (see [`corelanes`]) and returns its output.
pub fn finish(child: Child, args: &[&str]) -> Output {
    finish_within(child, args, Duration::from_secs(180))
}

pub fn finish_within(mut child: Child, args: &[&str], limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child
        .try_wait()
        .expect("the child can be waited for")
        .is_none()
    {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child
                .wait_with_output()
                .expect("the killed child is reaped");
            panic!(
                "corelanes {args:?} ran longer than {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child
        .wait_with_output()
        .expect("the child's output is read")
}

/// Waits until `child` has a worker thread (its run has started), for at most 60 s.
pub fn wait_for_workers(child: &mut Child) {
    let tasks = format!("/proc/{}/task", child.id());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let names = std::fs::read_dir(&tasks).into_iter().flatten().flatten();
        let working = names
            .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
            .any(|name| name.starts_with("worker-"));
        if working {
            return;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "corelanes ended before its run started"
        );
        assert!(Instant::now() < deadline, "no worker thread after 60 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sends `signal` ("INT", "TERM") to `child`, as a terminal or a service manager would.
pub fn signal(child: &Child, signal: &str) {
    let sent = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill -{signal} failed");
}

/// A command line written as one string (the tests' arguments have no spaces).
pub fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}
