//! What one task does. Each workload is a real task body: computation the
//! optimiser cannot remove, real sleeps, real `fsync`s, a real mutex.

mod cpu;
mod disk;

pub use cpu::{Calibration, spin};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
}

impl WorkloadKind {
    pub const ALL: [WorkloadKind; 6] = [
        WorkloadKind::Cpu,
        WorkloadKind::Io,
        WorkloadKind::Disk,
        WorkloadKind::Mixed,
        WorkloadKind::Lock,
        WorkloadKind::Amdahl,
    ];

    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Cpu => "cpu",
            WorkloadKind::Io => "io",
            WorkloadKind::Disk => "disk",
            WorkloadKind::Mixed => "mixed",
            WorkloadKind::Lock => "lock",
            WorkloadKind::Amdahl => "amdahl",
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
                format!("unknown workload '{s}': choose one of cpu, io, disk, mixed, lock, amdahl")
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
    pub fn new(
        kind: WorkloadKind,
        tasks: usize,
        task_ms: f64,
        serial: f64,
    ) -> Result<Plan, String> {
        let calibration = Calibration::get();
        let iters = calibration.iters_for_ms(task_ms);
        let dur = Duration::from_secs_f64(task_ms / 1000.0);
        let body: Arc<dyn TaskBody> = match kind {
            WorkloadKind::Cpu => Arc::new(Compute { iters }),
            WorkloadKind::Io => Arc::new(Sleep { dur }),
            WorkloadKind::Disk => Arc::new(disk::FsyncWrites::new(dur)?),
            WorkloadKind::Mixed => Arc::new(Mixed {
                iters: iters / 2,
                dur: dur / 2,
            }),
            WorkloadKind::Lock => Arc::new(Locked {
                iters,
                lock: Mutex::new(0),
            }),
            WorkloadKind::Amdahl => {
                let total_ms = tasks as f64 * task_ms;
                return Ok(Plan {
                    tasks: tasks + 1,
                    serial_first: true,
                    body: Arc::new(Amdahl {
                        serial_iters: calibration.iters_for_ms(total_ms * serial),
                        parallel_iters: calibration.iters_for_ms(task_ms * (1.0 - serial)),
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

struct Locked {
    iters: u64,
    lock: Mutex<u64>,
}

impl TaskBody for Locked {
    fn run(&self, task: usize, cancel: &AtomicBool) -> Result<(), String> {
        // A poisoned lock only means another task panicked; the counter is still usable.
        let mut guard = self
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *guard = guard.wrapping_add(spin(self.iters, task as u64, cancel));
        Ok(())
    }
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
