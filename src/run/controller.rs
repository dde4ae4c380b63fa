//! The thread that drives a run or a recording, seen from its handle: its
//! events, and the events that end it as failed when the thread could not
//! start or died without saying `Finished`.

use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use super::{arrived, failed, worker};
use crate::telemetry::events::RunEvent;

pub struct Controller {
    events: Receiver<RunEvent>,
    thread: Option<JoinHandle<()>>,
    /// "run" or "recording", for the failure sentences.
    what: &'static str,
}

impl Controller {
    /// Starts `body` on a thread named `name`, with the events' sender. If the
    /// thread cannot start, its events say so and end the `what` as failed.
    pub fn spawn(
        name: &str,
        what: &'static str,
        body: impl FnOnce(Sender<RunEvent>) + Send + 'static,
    ) -> Controller {
        let (tx, events) = crossbeam_channel::unbounded();
        let sender = tx.clone();
        let thread = match std::thread::Builder::new()
            .name(name.into())
            .spawn(move || body(sender))
        {
            Ok(thread) => Some(thread),
            Err(e) => {
                for event in failed(format!("cannot start the {what}'s thread: {e}")) {
                    let _ = tx.send(event);
                }
                None
            }
        };
        Controller {
            events,
            thread,
            what,
        }
    }

    pub fn events(&self) -> &Receiver<RunEvent> {
        &self.events
    }

    /// The events that arrived since the last call, without waiting; if the
    /// thread died, ending with [`Controller::obituary`]'s, so the caller
    /// never waits forever.
    pub fn try_events(&mut self) -> Vec<RunEvent> {
        let (mut events, closed) = arrived(&self.events);
        if closed {
            events.extend(self.obituary());
        }
        events
    }

    /// Call once the events channel has closed. If the thread died (a panic)
    /// instead of sending `Finished`, the events that end it as failed, with
    /// the panic's message; else none (and none a second time).
    pub fn obituary(&mut self) -> Vec<RunEvent> {
        match self.thread.take().map(JoinHandle::join) {
            Some(Err(panic)) => failed(format!(
                "the {}'s controller thread panicked ({}); the {0} was stopped",
                self.what,
                worker::panic_text(&panic)
            ))
            .into(),
            _ => Vec::new(),
        }
    }

    /// Waits for the thread to end (all events have been sent by then).
    pub fn join(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
