//! Ctrl+C and SIGTERM for the commands that measure (`run`, `sweep`, a
//! scripted `gui`): the first stops the work as the app's Stop does, so that
//! what was measured is still printed and written, and the workloads clean up
//! after themselves; a second exits at once.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use crossbeam_channel::Receiver;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Ctrl+C and SIGTERM, taken over from their default (killing the process).
pub struct Interrupts {
    stop: Receiver<()>,
    /// The first signal received, 0 until then.
    received: Arc<AtomicI32>,
}

impl Interrupts {
    /// Takes over SIGINT and SIGTERM for the rest of the process's life.
    pub fn install() -> std::io::Result<Interrupts> {
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        let (raise, stop) = crossbeam_channel::bounded::<()>(0);
        let received = Arc::new(AtomicI32::new(0));
        let seen = received.clone();
        std::thread::Builder::new()
            .name("corelanes-signals".into())
            .spawn(move || {
                let mut raise = Some(raise);
                for signal in signals.forever() {
                    let Some(raise) = raise.take() else {
                        std::process::exit(exit_status(signal));
                    };
                    // Recorded before the stop is raised, so whoever sees the
                    // stop also sees which signal asked for it.
                    seen.store(signal, Ordering::SeqCst);
                    drop(raise);
                    eprintln!(
                        "{}: stopping and keeping what was measured; {} again to quit at once",
                        name(signal),
                        name(signal)
                    );
                }
            })?;
        Ok(Interrupts { stop, received })
    }

    /// Ready (disconnected) once a signal asked to stop: what
    /// [`crate::run::run_until`] and the app wait on.
    pub fn stop(&self) -> &Receiver<()> {
        &self.stop
    }

    /// The exit status a signal calls for (128 + its number: 130 for Ctrl+C,
    /// 143 for SIGTERM), once one asked to stop.
    pub fn exit_code(&self) -> Option<ExitCode> {
        match self.received.load(Ordering::SeqCst) {
            0 => None,
            signal => Some(ExitCode::from(exit_status(signal) as u8)),
        }
    }
}

fn exit_status(signal: i32) -> i32 {
    128 + signal
}

fn name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "Ctrl+C",
        _ => "SIGTERM",
    }
}
