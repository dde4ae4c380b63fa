//! The run in progress, from the click on Run to its `Finished` event.
//!
//! Starting may be put off a little (see `Cadence::start_after` in the app):
//! then a helper thread starts the run, so that the frames showing the new
//! state are drawn before the run, not during it.

use std::time::Duration;

use crossbeam_channel::Receiver;

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

    /// Stops the run (as soon as it has started).
    pub fn cancel(&mut self) {
        self.stop = true;
        if let Launch::Started(handle) = &self.launch {
            handle.cancel();
        }
    }

    /// The events that arrived since the last call; none before the run started.
    pub fn events(&mut self) -> Vec<RunEvent> {
        if let Launch::Waiting(started) = &self.launch
            && let Ok(handle) = started.try_recv()
        {
            if self.stop {
                handle.cancel();
            }
            self.launch = Launch::Started(handle);
        }
        match &self.launch {
            // try_iter: the frame never waits for a run.
            Launch::Started(handle) => handle.events().try_iter().collect(),
            Launch::Waiting(_) => Vec::new(),
        }
    }

    /// Each worker's unfinished task (none before the run started).
    pub fn in_flight(&self) -> Vec<Option<InFlight>> {
        match &self.launch {
            Launch::Started(handle) => handle.in_flight(),
            Launch::Waiting(_) => Vec::new(),
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
