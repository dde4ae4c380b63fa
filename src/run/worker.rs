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
        let _ = tx.send(RunEvent::Failure(format!(
            "{} could not be pinned to core {core}; it ran unpinned. Check the core is online and in this process's affinity.",
            me.name
        )));
        me.pinned_core = None;
    }
    me.tid = sys::gettid();
    crate::workload::enter_worker(me.index);
    if let Some(sched) = &shared.sched {
        sched.register_worker(me.index, me.tid);
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
    loop {
        let task = shared.next_task.fetch_add(1, Ordering::Relaxed);
        if task >= plan.tasks || cancel.load(Ordering::Relaxed) {
            break;
        }
        if plan.serial_first && task > 0 && !shared.serial_done.wait(cancel) {
            break;
        }
        // Time and CPU from one `rdtscp` where it can (see `sys::stamp`).
        let start = sys::stamp();
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
        slot.publish(None);
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
        sink.record(TaskRecord {
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
    }
    sink.flush();

    me.cpu_ns = sys::thread_cpu_ns();
    (me.voluntary_switches, me.involuntary_switches) = sys::thread_switches();
    me.run_delay_ns = thread_stats::own_schedstat().map_or(0, |(_, wait, _)| wait);
    // Counted from the thread's birth: it was born on its core (see `control`),
    // so any move at all is one the user should see.
    me.migrations = thread_stats::own_migrations().unwrap_or(0);
    let _ = tx.send(RunEvent::ThreadDone(me));
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
