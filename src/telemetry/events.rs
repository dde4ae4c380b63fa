//! Events the run sends to whoever watches it, and the worker-side batch
//! that keeps recording a task cheap.

use crossbeam_channel::Sender;

use super::sched::{SchedReport, SchedSource};

/// One task's lifetime as its worker saw it. Times are ns since the run's origin.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TaskRecord {
    pub id: u32,
    /// Index of the worker thread that ran it.
    pub thread: u32,
    pub start_ns: u64,
    pub end_ns: u64,
    /// `sched_getcpu()` when the task started and when it ended.
    pub core_at_start: u32,
    pub core_at_end: u32,
    /// CPU time the thread used during the task.
    pub cpu_ns: u64,
    /// False when the task panicked, failed or was cut short by Stop.
    pub ok: bool,
}

impl TaskRecord {
    pub fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }
}

/// One worker thread: who it is, where it was pinned, and the kernel's counters.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ThreadRecord {
    pub index: usize,
    pub name: String,
    /// The kernel's thread id (0 until the thread has started).
    pub tid: i32,
    /// The core it was pinned to; `None` when unpinned.
    pub pinned_core: Option<usize>,
    /// CPU time of the whole thread (`CLOCK_THREAD_CPUTIME_ID` at its end).
    pub cpu_ns: u64,
    /// `getrusage(RUSAGE_THREAD)`: switches because the thread waited (sleep, I/O, lock)…
    pub voluntary_switches: u64,
    /// …and because the kernel preempted it.
    pub involuntary_switches: u64,
    /// Time spent runnable but waiting for a CPU (`/proc/thread-self/schedstat`).
    pub run_delay_ns: u64,
    /// Moves between cores (the kernel's `se.nr_migrations`).
    pub migrations: u64,
    pub tasks_done: u64,
}

/// What a run reports, in order: `Started`, then any mix of the others, then `Finished`.
#[derive(Clone, Debug)]
pub enum RunEvent {
    /// Capture is on and threads are about to be spawned.
    Started {
        origin_ns: u64,
        threads: Vec<ThreadRecord>,
        sched_source: SchedSource,
        sched_note: Option<String>,
    },
    /// A worker is pinned (or failed to be) and knows its kernel thread id.
    ThreadStarted { index: usize, tid: i32 },
    /// A batch of finished tasks.
    Tasks(Vec<TaskRecord>),
    /// A worker finished; its counters are final.
    ThreadDone(ThreadRecord),
    /// Something went wrong that the user must hear about (a panic, a failed pin).
    Failure(String),
    /// The kernel's scheduling of the workers, once they have all ended.
    Sched(SchedReport),
    /// Everything has ended: no more events follow.
    Finished { wall_ns: u64, cancelled: bool },
}

/// A worker's thread-local batch of task records. Recording is a push into a
/// vector; the channel is touched once per `BATCH` tasks. The channel is
/// unbounded, so a worker never waits for the watcher.
pub struct TaskSink {
    batch: Vec<TaskRecord>,
    tx: Sender<RunEvent>,
}

impl TaskSink {
    pub const BATCH: usize = 256;

    pub fn new(tx: Sender<RunEvent>) -> TaskSink {
        TaskSink {
            batch: Vec::with_capacity(Self::BATCH),
            tx,
        }
    }

    #[inline]
    pub fn record(&mut self, task: TaskRecord) {
        self.batch.push(task);
        if self.batch.len() >= Self::BATCH {
            self.flush();
        }
    }

    pub fn flush(&mut self) {
        if !self.batch.is_empty() {
            let full = std::mem::replace(&mut self.batch, Vec::with_capacity(Self::BATCH));
            // A watcher that went away no longer wants the events: dropping them is right.
            let _ = self.tx.send(RunEvent::Tasks(full));
        }
    }
}

impl Drop for TaskSink {
    fn drop(&mut self) {
        self.flush();
    }
}
