//! One worker thread: pin, take tasks from the shared queue, record each one.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crossbeam_channel::Sender;

use crate::sys;
use crate::telemetry::events::{InFlight, RunEvent, TaskCpu, TaskRecord, TaskSink, ThreadRecord};
use crate::telemetry::sched::{SchedCapture, SchedSource};
use crate::telemetry::thread_stats;
use crate::workload::Plan;

/// What all workers of one run share.
pub(super) struct Shared {
    pub plan: Plan,
    pub next_task: AtomicUsize,
    pub cancel: Arc<AtomicBool>,
    pub serial_done: Gate,
    pub sched: Option<SchedCapture>,
    /// False when the capture watches only the cores the threads are pinned to.
    pub every_core_watched: bool,
    pub origin_ns: u64,
    /// Each worker's current task, by worker index.
    pub in_flight: Arc<[super::live::Slot]>,
}

/// A one-way door: closed until `open`, then every `wait` returns.
#[derive(Default)]
pub(super) struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    pub fn open(&self) {
        *self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        self.opened.notify_all();
    }

    /// Waits until opened or cancelled; true when opened.
    fn wait(&self, cancel: &AtomicBool) -> bool {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while !*open {
            if cancel.load(Ordering::Relaxed) {
                return false;
            }
            open = self
                .opened
                .wait_timeout(open, Duration::from_millis(20))
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        true
    }
}

pub(super) fn work(shared: &Shared, mut me: ThreadRecord, tx: Sender<RunEvent>) {
    if let Some(core) = me.pinned_core
        && !core_affinity::set_for_current(core_affinity::CoreId { id: core })
    {
        let missed = if shared.sched.is_some() && !shared.every_core_watched {
            " The scheduler capture watches only the run's cores: its time on others is missing from its lane."
        } else {
            ""
        };
        let _ = tx.send(RunEvent::Failure(format!(
            "{} could not be pinned to core {core}; it ran unpinned. Check the core is online and in this process's affinity.{missed}",
            me.name
        )));
        me.pinned_core = None;
    }
    me.tid = sys::gettid();
    crate::workload::enter_worker(me.index);
    if let Some(sched) = &shared.sched
        && let Err(why) = sched.register_worker(me.index, me.tid)
    {
        let _ = tx.send(RunEvent::Failure(format!("{}: {why}", me.name)));
    }
    let _ = tx.send(RunEvent::ThreadStarted {
        index: me.index,
        tid: me.tid,
    });

    // With perf's exact switches the recording sums each task's CPU time
    // from them afterwards, and the worker reads no clock for it.
    let source = shared
        .sched
        .as_ref()
        .map_or(SchedSource::Off, SchedCapture::source);
    let read_cpu_clock = TaskCpu::for_source(source) == TaskCpu::ThreadClock;
    let slot = &shared.in_flight[me.index];
    let mut sink = TaskSink::new(tx.clone());
    let plan = &shared.plan;
    let cancel = &*shared.cancel;
    // One stamp per task boundary: the end of one task is the start of the
    // next, when only this loop's bookkeeping (a few ns) came between.
    // Anything slower (a batch's send, a failure's report, the serial gate)
    // makes the next start take its own stamp.
    let mut boundary: Option<sys::Stamp> = None;
    let mut claims = Claims::default();
    while let Some(task) = claims.next(&shared.next_task, plan.tasks) {
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        if plan.serial_first && task > 0 && !shared.serial_done.wait(cancel) {
            break;
        }
        // Time and CPU from one reading where it can (see `sys::stamp`).
        let start = boundary.take().unwrap_or_else(sys::stamp);
        let start_ns = start.ns.saturating_sub(shared.origin_ns);
        slot.publish(Some(InFlight {
            id: task as u32,
            start_ns,
        }));
        let cpu_before = if read_cpu_clock {
            sys::thread_cpu_ns()
        } else {
            0
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| plan.body.run(task, cancel)));
        let cpu_ns = if read_cpu_clock {
            sys::thread_cpu_ns() - cpu_before
        } else {
            0
        };
        let end = sys::stamp();
        if plan.serial_first && task == 0 {
            shared.serial_done.open();
        }
        let problem = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(why)) => Some(why),
            Err(panic) => Some(format!("panicked: {}", panic_text(&panic))),
        };
        if let Some(why) = &problem {
            let _ = tx.send(RunEvent::Failure(format!(
                "task {task} on {}: {why}",
                me.name
            )));
        }
        if let Some(handoff) = crate::workload::take_handoff() {
            sink.handoff(handoff.since(shared.origin_ns));
        }
        let sent = sink.record(TaskRecord {
            id: task as u32,
            thread: me.index as u32,
            start_ns,
            end_ns: end.ns.saturating_sub(shared.origin_ns),
            core_at_start: core_number(start.cpu),
            core_at_end: core_number(end.cpu),
            cpu_ns,
            ok: problem.is_none() && !cancel.load(Ordering::Relaxed),
        });
        me.tasks_done += 1;
        claims.took(end.ns.saturating_sub(start.ns));
        if !sent && problem.is_none() && !plan.serial_first {
            // The next task's start replaces this one in the slot a moment from now.
            boundary = Some(end);
        } else {
            slot.publish(None);
        }
    }
    slot.publish(None);
    sink.flush();

    me.cpu_ns = sys::thread_cpu_ns();
    (me.voluntary_switches, me.involuntary_switches) = sys::thread_switches();
    me.run_delay_ns = thread_stats::own_schedstat().map_or(0, |(_, wait, _)| wait);
    // Counted from the thread's birth: it was born on its core (see `control`),
    // so any move at all is one the user should see.
    me.migrations = thread_stats::own_migrations().unwrap_or(0);
    let _ = tx.send(RunEvent::ThreadDone(me));
}

/// The tasks a worker has taken from the shared queue and not yet run.
/// Short tasks are taken several at a time: the queue's atomic add is a
/// locked instruction that also waits for the worker's earlier stores, about
/// half of a short task's cost here. A claim holds at most
/// [`Claims::SPAN_NS`] of work at the last task's pace, so workers still end
/// within microseconds of each other; a long task makes the next claim one.
#[derive(Default)]
struct Claims {
    next: usize,
    end: usize,
    size: usize,
}

impl Claims {
    const SPAN_NS: u64 = 10_000;
    const MOST: usize = 64;

    #[inline]
    fn next(&mut self, queue: &AtomicUsize, tasks: usize) -> Option<usize> {
        if self.next >= self.end {
            let size = self.size.max(1);
            let first = queue.fetch_add(size, Ordering::Relaxed);
            if first >= tasks {
                return None;
            }
            (self.next, self.end) = (first, (first + size).min(tasks));
        }
        self.next += 1;
        Some(self.next - 1)
    }

    /// The last task took `ns`: size the next claim to it. The shortest
    /// tasks skip the division, a few ns of their own.
    #[inline]
    fn took(&mut self, ns: u64) {
        self.size = if ns.saturating_mul(Self::MOST as u64) <= Self::SPAN_NS {
            Self::MOST
        } else {
            (Self::SPAN_NS / ns).max(1) as usize
        };
    }
}

/// A task record's core: `u32::MAX` where the kernel would not say.
fn core_number(cpu: Option<usize>) -> u32 {
    cpu.and_then(|c| u32::try_from(c).ok()).unwrap_or(u32::MAX)
}

pub fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(std::string::ToString::to_string)
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_take_every_task_once_between_workers() {
        let queue = AtomicUsize::new(0);
        let tasks = 100_003;
        let taken: Vec<Vec<usize>> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..3u64)
                .map(|w| {
                    let queue = &queue;
                    s.spawn(move || {
                        let mut claims = Claims::default();
                        let mut mine = Vec::new();
                        while let Some(task) = claims.next(queue, tasks) {
                            mine.push(task);
                            // Workers of different paces claim differently.
                            claims.took(10 + w * 1000);
                        }
                        mine
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        let mut all: Vec<usize> = taken.concat();
        all.sort_unstable();
        assert_eq!(all, (0..tasks).collect::<Vec<_>>());
    }

    #[test]
    fn a_claim_holds_a_few_microseconds_of_work_and_a_long_task_claims_one() {
        let queue = AtomicUsize::new(0);
        let mut claims = Claims::default();
        assert_eq!(claims.next(&queue, 1000), Some(0));
        assert_eq!(
            queue.load(Ordering::Relaxed),
            1,
            "the first claim is one task"
        );
        claims.took(50);
        assert_eq!(claims.next(&queue, 1000), Some(1));
        let size = queue.load(Ordering::Relaxed) - 1;
        assert!(
            (2..=Claims::MOST).contains(&size) && size as u64 * 50 <= Claims::SPAN_NS,
            "claimed {size} tasks of 50 ns"
        );
        // Run out the claim, then a long task: the next claim is one task.
        for _ in 0..size - 1 {
            claims.next(&queue, 1000);
        }
        claims.took(2_000_000);
        let before = queue.load(Ordering::Relaxed);
        claims.next(&queue, 1000);
        assert_eq!(queue.load(Ordering::Relaxed) - before, 1);
    }
}
