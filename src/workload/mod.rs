//! What one task does. Each workload is a real task body: computation the
//! optimiser cannot remove, real sleeps, real `fsync`s, a real mutex.

mod cpu;
mod disk;

pub use cpu::{Calibration, spin};

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::sys;
use crate::telemetry::events::Handoff;

/// The workloads a user can pick.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadKind {
    /// Pure computation: each task is the same number of loop iterations.
    Cpu,
    /// A blocking wait (sleep): the thread needs no CPU while it waits.
    Io,
    /// Real file writes, each followed by `fsync`, in a temporary directory.
    Disk,
    /// Half computation, half blocking wait.
    Mixed,
    /// Computation done while holding one shared mutex.
    Lock,
    /// A serial part on one thread, then a parallel part.
    Amdahl,
    /// A request: a blocking wait, then computation.
    Server,
}

impl WorkloadKind {
    pub const ALL: [WorkloadKind; 7] = [
        WorkloadKind::Cpu,
        WorkloadKind::Io,
        WorkloadKind::Disk,
        WorkloadKind::Mixed,
        WorkloadKind::Lock,
        WorkloadKind::Amdahl,
        WorkloadKind::Server,
    ];

    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Cpu => "cpu",
            WorkloadKind::Io => "io",
            WorkloadKind::Disk => "disk",
            WorkloadKind::Mixed => "mixed",
            WorkloadKind::Lock => "lock",
            WorkloadKind::Amdahl => "amdahl",
            WorkloadKind::Server => "server",
        }
    }

    /// One sentence for tooltips and `--help`.
    pub fn describe(self) -> &'static str {
        match self {
            WorkloadKind::Cpu => {
                "CPU-bound: every task computes for the task duration (calibrated on an idle core)."
            }
            WorkloadKind::Io => {
                "I/O-bound: every task sleeps for the task duration, needing no CPU."
            }
            WorkloadKind::Disk => {
                "Disk: every task writes 64 KiB blocks with fsync until the task duration has passed."
            }
            WorkloadKind::Mixed => {
                "Mixed: every task computes for half the duration, then sleeps for the other half."
            }
            WorkloadKind::Lock => {
                "Lock-contended: every task computes while holding one shared mutex, so threads take turns."
            }
            WorkloadKind::Amdahl => {
                "Amdahl: one serial task (the serial fraction of all the work) runs alone, then the rest runs in parallel."
            }
            WorkloadKind::Server => {
                "Server: every task is one request, all queued at the start: it waits (sleeps) for 4/5 of the task duration, as for a database or disk, then computes for the last 1/5."
            }
        }
    }
}

impl std::fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for WorkloadKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WorkloadKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = WorkloadKind::ALL.iter().map(|k| k.name()).collect();
                format!("unknown workload '{s}': choose one of {}", names.join(", "))
            })
    }
}

/// The body of a task. `run` returns `Err` with a sentence when the task
/// could not do its work; a panic is caught by the worker and reported too.
pub trait TaskBody: Send + Sync {
    fn run(&self, task: usize, cancel: &AtomicBool) -> Result<(), String>;
}

/// A workload made concrete for one run: how many tasks and what each does.
#[derive(Clone)]
pub struct Plan {
    pub tasks: usize,
    /// Task 0 runs alone: no other task starts before it ends (Amdahl's serial part).
    pub serial_first: bool,
    pub body: Arc<dyn TaskBody>,
}

impl Plan {
    /// Builds the task bodies of `kind`. Total work is `tasks × task_ms`; for
    /// Amdahl, `serial` of it is one serial task and the rest is split into `tasks` tasks.
    /// `task_iters` replaces the calibrated computation of one task by
    /// exactly that many iterations (see `RunConfig::task_iters`); the
    /// config's validation keeps it from io and disk.
    pub fn new(
        kind: WorkloadKind,
        tasks: usize,
        task_ms: f64,
        serial: f64,
        task_iters: Option<u64>,
    ) -> Result<Plan, String> {
        // Measured on first use only: io and disk tasks compute nothing, and
        // measuring costs ~40 ms of CPU, once per process.
        let iters = |share: f64| iters_for(share, task_ms, task_iters, Calibration::get);
        let dur = Duration::from_secs_f64(task_ms / 1000.0);
        let body: Arc<dyn TaskBody> = match kind {
            WorkloadKind::Cpu => Arc::new(Compute { iters: iters(1.0) }),
            WorkloadKind::Io => Arc::new(Sleep { dur }),
            WorkloadKind::Disk => Arc::new(disk::FsyncWrites::new(dur)?),
            WorkloadKind::Mixed => Arc::new(Mixed {
                // Given iterations are the computing half itself.
                iters: task_iters.unwrap_or_else(|| iters(0.5)),
                dur: dur / 2,
            }),
            WorkloadKind::Server => Arc::new(Request {
                wait: dur.mul_f64(1.0 - SERVER_COMPUTE_SHARE),
                iters: Calibration::get().iters_for_ms(task_ms * SERVER_COMPUTE_SHARE),
            }),
            WorkloadKind::Lock => Arc::new(Locked {
                iters: iters(1.0),
                lock: Mutex::new(Baton::default()),
            }),
            WorkloadKind::Amdahl => {
                return Ok(Plan {
                    tasks: tasks + 1,
                    serial_first: true,
                    body: Arc::new(Amdahl {
                        serial_iters: iters(tasks as f64 * serial),
                        parallel_iters: iters(1.0 - serial),
                    }),
                });
            }
        };
        Ok(Plan {
            tasks,
            serial_first: false,
            body,
        })
    }
}

/// Iterations for `share` of one task's computation: of `task_iters` when
/// given, whatever the calibration, else of `task_ms` at its rate.
fn iters_for(
    share: f64,
    task_ms: f64,
    task_iters: Option<u64>,
    calibration: impl FnOnce() -> Calibration,
) -> u64 {
    match task_iters {
        Some(n) => (n as f64 * share).round() as u64,
        None => calibration().iters_for_ms(task_ms * share),
    }
}

impl Plan {
    /// The same tasks, endlessly: the queue refills until the run is
    /// cancelled (a run until Stop). Amdahl's serial task still runs once, first.
    pub fn endless(self) -> Plan {
        Plan {
            tasks: usize::MAX,
            ..self
        }
    }
}

struct Compute {
    iters: u64,
}

impl TaskBody for Compute {
    fn run(&self, task: usize, cancel: &AtomicBool) -> Result<(), String> {
        spin(self.iters, task as u64, cancel);
        Ok(())
    }
}

struct Sleep {
    dur: Duration,
}

impl TaskBody for Sleep {
    fn run(&self, _task: usize, cancel: &AtomicBool) -> Result<(), String> {
        sleep_unless_cancelled(self.dur, cancel);
        Ok(())
    }
}

struct Mixed {
    iters: u64,
    dur: Duration,
}

impl TaskBody for Mixed {
    fn run(&self, task: usize, cancel: &AtomicBool) -> Result<(), String> {
        spin(self.iters, task as u64, cancel);
        sleep_unless_cancelled(self.dur, cancel);
        Ok(())
    }
}

/// The share of a server request's duration spent computing; the rest is waiting.
pub const SERVER_COMPUTE_SHARE: f64 = 0.2;

/// One server request: the wait first (as for a backend's answer), then the
/// computation on what came back.
struct Request {
    wait: Duration,
    iters: u64,
}

impl TaskBody for Request {
    fn run(&self, task: usize, cancel: &AtomicBool) -> Result<(), String> {
        sleep_unless_cancelled(self.wait, cancel);
        spin(self.iters, task as u64, cancel);
        Ok(())
    }
}

struct Locked {
    iters: u64,
    lock: Mutex<Baton>,
}

/// What the lock guards: the work's result, and who last released the lock
/// and when (absolute ns), written just before unlocking so that the next
/// holder knows who unblocked it.
#[derive(Default)]
struct Baton {
    sum: u64,
    last_release: Option<(usize, u64)>,
}

impl TaskBody for Locked {
    fn run(&self, task: usize, cancel: &AtomicBool) -> Result<(), String> {
        let me = WORKER.get();
        let attempt_ns = sys::fast_monotonic_ns();
        // A poisoned lock only means another task panicked; the state is still usable.
        let mut baton = self
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let acquire_ns = sys::fast_monotonic_ns();
        if let (Some(to), Some((from, release_ns))) = (me, baton.last_release)
            && from != to
            && attempt_ns < release_ns
        {
            HANDOFF.set(Some(Handoff {
                from,
                to,
                release_ns,
                // The mutex orders the two: a reading before the release is
                // the fast clock's sub-µs anchor error, not a real order.
                acquire_ns: acquire_ns.max(release_ns),
            }));
        }
        baton.sum = baton
            .sum
            .wrapping_add(spin(self.iters, task as u64, cancel));
        baton.last_release = me.map(|me| (me, sys::fast_monotonic_ns()));
        Ok(())
    }
}

thread_local! {
    /// The worker index of this thread, while it is a run's worker.
    static WORKER: Cell<Option<usize>> = const { Cell::new(None) };
    /// The hand-off of this thread's last task, until the worker takes it.
    static HANDOFF: Cell<Option<Handoff>> = const { Cell::new(None) };
}

/// Tells the task bodies on this thread which worker runs them (the lock
/// workload names the worker it unblocks).
pub(crate) fn enter_worker(index: usize) {
    WORKER.set(Some(index));
}

/// The lock hand-off this thread's last task received, if it waited for a
/// release (times absolute: see [`Handoff::since`]).
#[inline]
pub(crate) fn take_handoff() -> Option<Handoff> {
    HANDOFF.take()
}

struct Amdahl {
    serial_iters: u64,
    parallel_iters: u64,
}

impl TaskBody for Amdahl {
    fn run(&self, task: usize, cancel: &AtomicBool) -> Result<(), String> {
        let iters = if task == 0 {
            self.serial_iters
        } else {
            self.parallel_iters
        };
        spin(iters, task as u64, cancel);
        Ok(())
    }
}

/// Sleeps in short steps so that Stop takes effect within ~20 ms.
pub(crate) fn sleep_unless_cancelled(dur: Duration, cancel: &AtomicBool) {
    let deadline = std::time::Instant::now() + dur;
    loop {
        let now = std::time::Instant::now();
        if now >= deadline || cancel.load(Ordering::Relaxed) {
            return;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(20)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_iterations_do_not_depend_on_the_calibration() {
        let slow = Calibration { iters_per_ms: 1e3 };
        let fast = Calibration {
            iters_per_ms: 1.5e6,
        };
        for share in [1.0, 0.5, 0.25] {
            assert_eq!(
                iters_for(share, 7.0, Some(4000), || slow),
                iters_for(share, 7.0, Some(4000), || fast),
                "share {share}"
            );
        }
        assert_eq!(iters_for(1.0, 7.0, Some(4000), || slow), 4000);
        let unmeasured = || -> Calibration { panic!("given iterations need no calibration") };
        assert_eq!(iters_for(0.5, 7.0, Some(4000), unmeasured), 2000);
        // Without them, the milliseconds are converted at each rate.
        assert_eq!(iters_for(1.0, 2.0, None, || slow), 2000);
        assert_eq!(iters_for(1.0, 2.0, None, || fast), 3_000_000);
    }

    #[test]
    fn amdahl_with_given_iterations_splits_exactly_tasks_times_n() {
        let any = Calibration { iters_per_ms: 1e6 };
        let (tasks, n, serial) = (4usize, 1000u64, 0.25);
        let serial_iters = iters_for(tasks as f64 * serial, 50.0, Some(n), || any);
        let parallel_iters = iters_for(1.0 - serial, 50.0, Some(n), || any);
        assert_eq!((serial_iters, parallel_iters), (1000, 750));
        assert_eq!(
            serial_iters + tasks as u64 * parallel_iters,
            tasks as u64 * n
        );
    }
}
