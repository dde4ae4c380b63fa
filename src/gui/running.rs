//! The run in progress, from the click on Run to its `Finished` event.
//!
//! Starting may be put off a little (see `Cadence::start_after` in the app):
//! then a helper thread starts the run, so that the frames showing the new
//! state are drawn before the run, not during it.

use std::time::Duration;

use crossbeam_channel::{Receiver, TryRecvError};

use crate::record::{self, RecordConfig, RecordHandle};
use crate::run::{self, RunHandle, ValidConfig};
use crate::telemetry::events::{InFlight, RunEvent};

/// The run in progress: its entry in the history, and its handle once started.
pub struct Running {
    /// The run's index in the history.
    pub index: usize,
    launch: Launch,
    /// Stop was pressed, maybe before the run had started.
    stop: bool,
}

enum Launch {
    /// To be started by a helper thread after a pause.
    Waiting(Receiver<RunHandle>),
    Started(RunHandle),
    /// A program being recorded (no tasks, no workers of ours).
    Recording(RecordHandle),
    /// The helper thread died before handing the run over.
    Lost,
}

impl Running {
    /// Starts `valid` now, or after `delay` on a helper thread.
    pub fn start(index: usize, valid: ValidConfig, delay: Duration) -> Running {
        let launch = if delay.is_zero() {
            Launch::Started(run::start(valid))
        } else {
            start_later(valid, delay)
        };
        Running {
            index,
            launch,
            stop: false,
        }
    }

    /// Records a program, now.
    pub fn record(index: usize, config: RecordConfig) -> Running {
        Running {
            index,
            launch: Launch::Recording(record::start(config)),
            stop: false,
        }
    }

    /// Stops the run (as soon as it has started).
    pub fn cancel(&mut self) {
        self.stop = true;
        match &self.launch {
            Launch::Started(handle) => handle.cancel(),
            Launch::Recording(handle) => handle.stop(),
            Launch::Waiting(_) | Launch::Lost => {}
        }
    }

    /// The events that arrived since the last call; none before the run
    /// started. A run whose threads died ends here as failed, with a message,
    /// so the app never stays "running".
    pub fn events(&mut self) -> Vec<RunEvent> {
        if let Launch::Waiting(started) = &self.launch {
            match started.try_recv() {
                Ok(handle) => {
                    if self.stop {
                        handle.cancel();
                    }
                    self.launch = Launch::Started(handle);
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => {
                    self.launch = Launch::Lost;
                    return run::failed(
                        "the thread starting the run died before it started".into(),
                    )
                    .into();
                }
            }
        }
        match &mut self.launch {
            // try_events: the frame never waits for a run.
            Launch::Started(handle) => handle.try_events(),
            Launch::Recording(handle) => handle.try_events(),
            Launch::Waiting(_) | Launch::Lost => Vec::new(),
        }
    }

    /// Each worker's unfinished task (none before the run started).
    pub fn in_flight(&self) -> Vec<Option<InFlight>> {
        match &self.launch {
            Launch::Started(handle) => handle.in_flight(),
            Launch::Recording(_) | Launch::Waiting(_) | Launch::Lost => Vec::new(),
        }
    }

    /// Waits for the run's controller thread, which has sent `Finished` and is ending.
    pub fn join(self) {
        if let Launch::Started(handle) = self.launch {
            handle.join();
        }
    }
}

/// Starts `valid` after `delay` on a helper thread (at once if there is none).
fn start_later(valid: ValidConfig, delay: Duration) -> Launch {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let now = valid.clone();
    let spawned = std::thread::Builder::new()
        .name("corelanes-start".into())
        .spawn(move || {
            std::thread::sleep(delay);
            let _ = tx.send(run::start(valid));
        });
    match spawned {
        Ok(_) => Launch::Waiting(rx),
        Err(_) => Launch::Started(run::start(now)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{Fault, Placement, RunConfig, RunStatus};
    use crate::telemetry::sched::SchedMode;
    use crate::topology::Topology;
    use crate::workload::WorkloadKind;

    fn long_cpu_run() -> ValidConfig {
        let topo = Topology::get();
        RunConfig {
            workload: WorkloadKind::Cpu,
            threads: 2,
            tasks: 100,
            task_ms: 200.0,
            placement: Placement::Spread,
            sched: SchedMode::Off,
            ..RunConfig::defaults(topo)
        }
        .validate(topo)
        .unwrap()
    }

    /// Polls as the app's frames do until the run has ended, for at most `limit`.
    fn poll_until_ended(running: &mut Running, limit: Duration) -> crate::run::Recording {
        let mut rec = crate::run::Recording::new(long_cpu_run().config);
        let deadline = std::time::Instant::now() + limit;
        while rec.is_running() && std::time::Instant::now() < deadline {
            running.events().into_iter().for_each(|e| rec.ingest(e));
            std::thread::sleep(Duration::from_millis(10));
        }
        rec
    }

    #[test]
    fn a_controller_that_dies_ends_the_run_as_failed_with_its_message() {
        // 100 tasks of 200 ms on 2 threads: 10 s unless the death stops the workers.
        let valid = long_cpu_run().with_fault(Fault::ControllerPanics);
        for delay in [Duration::ZERO, Duration::from_millis(50)] {
            let mut running = Running::start(0, valid.clone(), delay);
            let rec = poll_until_ended(&mut running, Duration::from_secs(5));
            assert_eq!(
                rec.status,
                RunStatus::Cancelled,
                "the run ended (delay {delay:?})"
            );
            assert!(
                rec.failures
                    .iter()
                    .any(|f| f.contains("controller thread panicked")
                        && f.contains("a fault injected by a test")),
                "{:?}",
                rec.failures
            );
            assert!(rec.tasks.len() < 100, "the workers were stopped");
            running.join();
        }
    }
}
