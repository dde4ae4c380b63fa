//! Events the run sends to whoever watches it, and the worker-side batch
//! that keeps recording a task cheap.

use crossbeam_channel::Sender;

use super::sched::{SchedReport, SchedSlice, SchedSource, SliceState};
use crate::environment::Environment;

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

/// Where the tasks' `cpu_ns` come from: the path a run used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskCpu {
    /// Two `CLOCK_THREAD_CPUTIME_ID` reads on the worker around each task
    /// (~0.6 µs each): capture off, or sampled from /proc, whose slice edges
    /// are placed only to about a millisecond. Sessions saved before the
    /// choice existed were all made this way.
    #[default]
    ThreadClock,
    /// The thread's running slices from perf's exact context switches,
    /// clipped to the task's interval, summed once the run has ended:
    /// nothing on the worker. Until then the tasks hold 0.
    KernelSlices,
}

impl TaskCpu {
    /// The path a run takes with scheduler capture from `source`.
    pub fn for_source(source: SchedSource) -> TaskCpu {
        match source {
            SchedSource::Perf => TaskCpu::KernelSlices,
            SchedSource::Procfs | SchedSource::Off => TaskCpu::ThreadClock,
        }
    }

    /// Words for reports and figures.
    pub fn label(self) -> &'static str {
        match self {
            TaskCpu::ThreadClock => "thread CPU clock read on the worker",
            TaskCpu::KernelSlices => "kernel running slices (perf)",
        }
    }

    /// Sets each task's `cpu_ns` to its thread's running time inside the
    /// task's interval, from `slices` (sorted by thread, then start, as a
    /// [`SchedReport`] holds them; same origin as the tasks).
    pub fn fill_from_slices(tasks: &mut [TaskRecord], slices: &[SchedSlice]) {
        // Each thread's slices are one stretch of `slices`, found in one pass.
        let mut of_thread: Vec<std::ops::Range<usize>> = Vec::new();
        for (i, s) in slices.iter().enumerate() {
            if of_thread.len() <= s.thread() {
                of_thread.resize(s.thread() + 1, i..i);
            }
            of_thread[s.thread()].end = i + 1;
        }
        // A thread's tasks come in the order it ran them, so a cursor per
        // thread walks its slices once; a binary search per task (a cache
        // miss or more each) was most of this pass's cost.
        let mut cursor: Vec<usize> = of_thread.iter().map(|r| r.start).collect();
        for task in tasks {
            let t = task.thread as usize;
            let Some(mine) = of_thread.get(t) else {
                task.cpu_ns = 0;
                continue;
            };
            let at = &mut cursor[t];
            if *at > mine.start && slices[*at - 1].end_ns > task.start_ns {
                // Out of order: look it up from the thread's start.
                *at = mine.start
                    + slices[mine.clone()].partition_point(|s| s.end_ns <= task.start_ns);
            }
            // A thread is in one state at a time: its slices never overlap.
            while *at < mine.end && slices[*at].end_ns <= task.start_ns {
                *at += 1;
            }
            task.cpu_ns = slices[*at..mine.end]
                .iter()
                .take_while(|s| s.start_ns < task.end_ns)
                .filter(|s| s.state == SliceState::Running)
                .map(|s| s.end_ns.min(task.end_ns) - s.start_ns.max(task.start_ns))
                .sum();
        }
    }
}

/// A lock passed from one worker to another that was waiting for it: the
/// releaser wrote who it was and when, just before unlocking; the acquirer,
/// whose attempt began before that release, noted when it got the lock.
/// Times are ns since the run's origin (like [`TaskRecord`]'s).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Handoff {
    /// Worker index of the thread that released the lock…
    pub from: usize,
    /// …and of the one it unblocked.
    pub to: usize,
    pub release_ns: u64,
    pub acquire_ns: u64,
}

impl Handoff {
    /// The same hand-off with its times made relative to `origin_ns`
    /// (the workload stamps absolute `CLOCK_MONOTONIC` ns).
    pub fn since(self, origin_ns: u64) -> Handoff {
        Handoff {
            release_ns: self.release_ns.saturating_sub(origin_ns),
            acquire_ns: self.acquire_ns.saturating_sub(origin_ns),
            ..self
        }
    }
}

/// A task a worker has started and not yet finished (ns since the run's origin).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InFlight {
    pub id: u32,
    pub start_ns: u64,
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
    /// The machine as it was just before the workers started (boxed: it is
    /// sent once, and would make every other event bigger).
    Environment(Box<Environment>),
    /// A worker is pinned (or failed to be) and knows its kernel thread id.
    ThreadStarted { index: usize, tid: i32 },
    /// A recorded program's thread appeared (index = next after those known).
    ThreadSeen(ThreadRecord),
    /// The recorded program (another program's recording only): at the start,
    /// and again at the end with its exit status.
    Program(crate::record::ProgramInfo),
    /// A batch of finished tasks.
    Tasks(Vec<TaskRecord>),
    /// Lock hand-offs (the lock workload), sent with the tasks' batches.
    Handoffs(Vec<Handoff>),
    /// A worker finished; its counters are final (a recorded program's
    /// threads: all of them at the end, from the kernel's slices).
    ThreadDone(ThreadRecord),
    /// Something went wrong that the user must hear about (a panic, a failed pin).
    Failure(String),
    /// Scheduler slices as the capture builds them during the run: a live
    /// preview, in the order they ended, replaced by `Sched` at the end.
    Slices(Vec<SchedSlice>),
    /// The kernel's scheduling of the workers, complete, once they have all ended.
    Sched(SchedReport),
    /// Everything has ended: no more events follow.
    Finished { wall_ns: u64, cancelled: bool },
}

/// A worker's thread-local batch of task records. Recording is a push into a
/// vector; the channel is touched once per `BATCH` short tasks, and at least
/// every [`TaskSink::MAX_AGE_NS`], so a watcher sees finished tasks soon.
/// The channel is unbounded, so a worker never waits for the watcher.
pub struct TaskSink {
    batch: Vec<TaskRecord>,
    /// Allocated only once a hand-off happens: most workloads have none.
    handoffs: Vec<Handoff>,
    tx: Sender<RunEvent>,
}

impl TaskSink {
    pub const BATCH: usize = 4096;
    /// The oldest task of a batch is sent once a later one ends this long after it…
    pub const MAX_AGE_NS: u64 = 20_000_000;
    /// …and any task this long is sent at once: the next one may be long too,
    /// and one send is nothing beside a millisecond of work.
    pub const LONG_TASK_NS: u64 = 1_000_000;

    pub fn new(tx: Sender<RunEvent>) -> TaskSink {
        TaskSink {
            batch: Vec::with_capacity(Self::BATCH),
            handoffs: Vec::new(),
            tx,
        }
    }

    /// Keeps a hand-off for the next batch (call before recording its task).
    #[inline]
    pub fn handoff(&mut self, handoff: Handoff) {
        self.handoffs.push(handoff);
    }

    /// Keeps `task`; true when that sent the batch (which takes microseconds).
    #[inline]
    pub fn record(&mut self, task: TaskRecord) -> bool {
        self.batch.push(task);
        let oldest_end = self.batch[0].end_ns;
        let send = self.batch.len() >= Self::BATCH
            || task.end_ns >= oldest_end + Self::MAX_AGE_NS
            || task.duration_ns() >= Self::LONG_TASK_NS;
        if send {
            self.flush();
        }
        send
    }

    pub fn flush(&mut self) {
        if !self.handoffs.is_empty() {
            let _ = self
                .tx
                .send(RunEvent::Handoffs(std::mem::take(&mut self.handoffs)));
        }
        if !self.batch.is_empty() {
            // The next batch is likely as big as this one: a long task's
            // send of one record should not allocate room for 4096.
            let room = self.batch.len().next_power_of_two().clamp(16, Self::BATCH);
            let full = std::mem::replace(&mut self.batch, Vec::with_capacity(room));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn task(thread: u32, start_ns: u64, end_ns: u64) -> TaskRecord {
        TaskRecord {
            id: 0,
            thread,
            start_ns,
            end_ns,
            core_at_start: 0,
            core_at_end: 0,
            cpu_ns: 999,
            ok: true,
        }
    }

    fn slice(thread: usize, state: SliceState, start_ns: u64, end_ns: u64) -> SchedSlice {
        SchedSlice::on_core0(thread, state, start_ns, end_ns)
    }

    #[test]
    fn task_cpu_is_the_running_time_inside_the_task() {
        use SliceState::{Blocked, Runnable, Running};
        let slices = [
            slice(0, Running, 0, 100),
            slice(0, Runnable, 100, 150),
            slice(0, Running, 150, 300),
            slice(0, Blocked, 300, 400),
            slice(0, Running, 400, 500),
            slice(2, Running, 0, 1000),
        ];
        let mut tasks = [
            task(0, 50, 200),  // 50 of the first slice, 50 of the second
            task(0, 120, 140), // only a wait
            task(0, 250, 450), // 50 + 50 around a block
            task(0, 0, 500),   // all three: 100 + 150 + 100
            task(1, 0, 500),   // a thread with no slices at all
            task(2, 10, 20),   // inside one slice
        ];
        TaskCpu::fill_from_slices(&mut tasks, &slices);
        let cpu: Vec<u64> = tasks.iter().map(|t| t.cpu_ns).collect();
        assert_eq!(cpu, [100, 0, 100, 350, 0, 10]);
    }

    #[test]
    fn the_path_follows_the_capture_source() {
        assert_eq!(
            TaskCpu::for_source(SchedSource::Perf),
            TaskCpu::KernelSlices
        );
        for coarse_or_none in [SchedSource::Procfs, SchedSource::Off] {
            assert_eq!(TaskCpu::for_source(coarse_or_none), TaskCpu::ThreadClock);
        }
        assert_eq!(
            serde_json::to_string(&TaskCpu::KernelSlices).unwrap(),
            "\"kernel-slices\""
        );
    }
}
