//! Running an experiment: spawn named worker threads, pin them, hand out tasks,
//! stream what happens, and let the caller cancel.
//!
//! A run lives on its own controller thread, so callers (the GUI's frame, the
//! CLI) only read events: nothing a worker does ever waits for them.

mod config;
pub mod controller;
mod live;
mod recording;
mod worker;

pub use config::{
    ConfigError, Fault, MAX_TASK_ITERS, MAX_TASK_MS, MAX_TASKS, MAX_THREADS, MIN_TASK_MS,
    Placement, RunConfig, ValidConfig,
};
pub use recording::{Recording, RunStatus};
pub use worker::panic_text;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use crate::environment::Environment;
use crate::sys;
use crate::telemetry::events::{InFlight, RunEvent, ThreadRecord};
use crate::telemetry::sched::perf::Target;
use crate::telemetry::sched::{SchedCapture, SchedSource};
use crate::topology::Topology;
use crate::workload::Plan;

/// A run in progress. Read its events; dropping the handle does not stop the
/// run (call [`RunHandle::cancel`] for that).
pub struct RunHandle {
    controller: controller::Controller,
    cancel: Arc<AtomicBool>,
    in_flight: Arc<[live::Slot]>,
}

impl RunHandle {
    pub fn events(&self) -> &Receiver<RunEvent> {
        self.controller.events()
    }

    /// The events that arrived since the last call, without waiting; if the
    /// controller died, they end the run as failed, so the caller never
    /// waits forever.
    pub fn try_events(&mut self) -> Vec<RunEvent> {
        self.controller.try_events()
    }

    /// Call once the events channel has closed: the events that end the run
    /// as failed if its controller thread panicked, else none.
    pub fn obituary(&mut self) -> Vec<RunEvent> {
        self.controller.obituary()
    }

    /// The task each worker is running now, by worker index (no channel involved).
    pub fn in_flight(&self) -> Vec<Option<InFlight>> {
        self.in_flight.iter().map(live::Slot::read).collect()
    }

    /// Asks every worker to stop after (or, for long tasks, within ~1 ms of) its current step.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// Waits for the controller thread to end (all events have been sent by then).
    pub fn join(self) {
        self.controller.join();
    }
}

/// Starts the configured workload.
pub fn start(valid: ValidConfig) -> RunHandle {
    let plan = valid.config.plan();
    start_plan(valid, plan)
}

/// Starts a run whose tasks are `plan`'s (a custom [`crate::workload::TaskBody`]).
pub fn start_plan(valid: ValidConfig, plan: Result<Plan, String>) -> RunHandle {
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let in_flight: Arc<[live::Slot]> = (0..valid.cores.len())
        .map(|_| live::Slot::default())
        .collect();
    let slots = in_flight.clone();
    RunHandle {
        controller: controller::Controller::spawn("corelanes-run", "run", move |tx| {
            control(valid, plan, flag, tx, slots);
        }),
        cancel,
        in_flight,
    }
}

/// The events that end a run that failed before or instead of finishing.
pub fn failed(why: String) -> [RunEvent; 2] {
    [
        RunEvent::Failure(why),
        RunEvent::Finished {
            wall_ns: 0,
            cancelled: true,
        },
    ]
}

/// Runs to the end on this thread's watch and returns everything recorded.
pub fn run_to_end(valid: ValidConfig) -> Recording {
    run_until(valid, &crossbeam_channel::never())
}

/// Runs to the end, or until `stop` is ready (its sender dropped, or a
/// message): then stops the run as [`RunHandle::cancel`] does and waits for
/// its workers. Returns everything recorded, a stopped run as `Cancelled`.
pub fn run_until(valid: ValidConfig, stop: &Receiver<()>) -> Recording {
    let plan = valid.config.plan();
    run_plan_until(valid, plan, stop)
}

/// [`run_until`] with tasks of a custom `plan` (a lesson's probe, say); the
/// recording's config still says what the run stands for in the history.
pub fn run_plan_until(
    valid: ValidConfig,
    plan: Result<Plan, String>,
    stop: &Receiver<()>,
) -> Recording {
    let mut recording = Recording::new(valid.config.clone());
    let cpu_before = crate::sys::process_cpu_ns();
    let mut handle = start_plan(valid, plan);
    ingest_until(&mut recording, handle.events(), stop, || handle.cancel());
    for event in handle.obituary() {
        recording.ingest(event);
    }
    recording.run_cpu_ns = Some(crate::sys::process_cpu_ns().saturating_sub(cpu_before));
    recording
}

/// The events that arrived on `events` without waiting, and whether the
/// channel has closed (the sender is done, or died).
pub fn arrived(events: &Receiver<RunEvent>) -> (Vec<RunEvent>, bool) {
    let mut out = Vec::new();
    loop {
        match events.try_recv() {
            Ok(event) => out.push(event),
            Err(TryRecvError::Empty) => return (out, false),
            Err(TryRecvError::Disconnected) => return (out, true),
        }
    }
}

/// Ingests `events` into `recording` until the channel closes; once `stop`
/// is ready (its sender dropped, or a message), calls `on_stop` once.
pub fn ingest_until(
    recording: &mut Recording,
    events: &Receiver<RunEvent>,
    stop: &Receiver<()>,
    mut on_stop: impl FnMut(),
) {
    let never = crossbeam_channel::never();
    let mut stop = stop;
    loop {
        crossbeam_channel::select! {
            recv(events) -> event => match event {
                Ok(event) => recording.ingest(event),
                Err(_) => break,
            },
            recv(stop) -> _ => {
                on_stop();
                // Asked once; from now on only the events matter.
                stop = &never;
            }
        }
    }
}

fn control(
    valid: ValidConfig,
    plan: Result<Plan, String>,
    cancel: Arc<AtomicBool>,
    tx: Sender<RunEvent>,
    in_flight: Arc<[live::Slot]>,
) {
    // A panic below would leave the workers running their whole plan, and
    // the events channel open that long: stop them, and the channel closes
    // within ~1 ms, which tells the handle that this thread died.
    let _stop_workers = StopWorkersOnPanic(&cancel);
    let finish_early = |why: String| {
        for event in failed(why) {
            let _ = tx.send(event);
        }
    };
    let plan = match plan {
        Ok(plan) => plan,
        Err(why) => return finish_early(why),
    };
    // Before the capture and the workers, so that other programs' CPU use is
    // read while the run uses none; it costs `BUSY_WINDOW` (100 ms) per run.
    let environment = Environment::at_run_start();
    // Opened here, before the workers exist, so that they inherit the perf
    // events (or, where each opens its own, a refusal comes before any runs).
    let allowed = &Topology::get().allowed;
    let capture_cpus = valid.capture_cpus(allowed);
    let target = valid.capture_target(&capture_cpus);
    let sched = match SchedCapture::start_within(
        valid.config.sched,
        &capture_cpus,
        target,
        valid.config.system_wide,
        valid.capture_limits,
    ) {
        Ok(capture) => capture,
        Err(e) => return finish_early(e.to_string()),
    };
    sys::sync_fast_clock();
    let origin_ns = sys::monotonic_ns();
    let threads: Vec<ThreadRecord> = valid
        .cores
        .iter()
        .enumerate()
        .map(|(index, &pinned_core)| ThreadRecord {
            index,
            name: format!("worker-{index}"),
            pinned_core,
            ..ThreadRecord::default()
        })
        .collect();
    let _ = tx.send(RunEvent::Started {
        origin_ns,
        threads: threads.clone(),
        sched_source: sched.source(),
        sched_note: sched.note().map(str::to_owned),
    });
    let _ = tx.send(RunEvent::Environment(Box::new(environment)));
    let live_tx = tx.clone();
    sched.stream(
        origin_ns,
        Box::new(move |slices| {
            let _ = live_tx.send(RunEvent::Slices(slices));
        }),
    );
    let shared = Arc::new(worker::Shared {
        plan,
        next_task: AtomicUsize::new(0),
        cancel: cancel.clone(),
        serial_done: worker::Gate::default(),
        sched: (sched.source() != SchedSource::Off).then_some(sched),
        // A worker's own event follows it to any core.
        every_core_watched: target == Target::Workers || capture_cpus.len() >= allowed.len(),
        origin_ns,
        in_flight,
    });
    let mut workers = Vec::with_capacity(threads.len());
    let own_affinity = sys::affinity_of_current_thread().ok();
    for me in threads {
        let (shared, worker_tx) = (shared.clone(), tx.clone());
        let name = me.name.clone();
        // A thread inherits its creator's affinity: spawned from here while
        // this thread is on the worker's core, the worker is born there and
        // never runs a moment elsewhere before it pins itself.
        if let Some(core) = me.pinned_core {
            let _ = sys::set_affinity_of_current_thread(&[core]);
        } else if let Some(all) = &own_affinity {
            let _ = sys::set_affinity_of_current_thread(all);
        }
        let spawned = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || worker::work(&shared, me, worker_tx));
        match spawned {
            Ok(handle) => workers.push((name, handle)),
            Err(e) => {
                let _ = tx.send(RunEvent::Failure(format!(
                    "cannot start {name}: {e}; the run was stopped. Try fewer threads."
                )));
                cancel.store(true, Ordering::Relaxed);
                break;
            }
        }
    }
    if let Some(all) = &own_affinity {
        let _ = sys::set_affinity_of_current_thread(all);
    }
    if valid.fault == Some(Fault::ControllerPanics) {
        panic!(
            "a fault injected by a test, with {} workers running",
            workers.len()
        );
    }
    for (name, handle) in workers {
        if handle.join().is_err() {
            let _ = tx.send(RunEvent::Failure(format!(
                "{name} ended with a panic outside its tasks"
            )));
        }
    }
    let wall_ns = sys::monotonic_ns() - origin_ns;
    if let Some(sched) = Arc::into_inner(shared).and_then(|shared| shared.sched) {
        let _ = tx.send(RunEvent::Sched(sched.finish(origin_ns)));
    }
    let _ = tx.send(RunEvent::Finished {
        wall_ns,
        cancelled: cancel.load(Ordering::Relaxed),
    });
}

/// Sets the run's cancel flag if the controller unwinds (see `control`).
struct StopWorkersOnPanic<'a>(&'a AtomicBool);

impl Drop for StopWorkersOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}
