//! System-wide per-core utilisation from sysinfo, sampled on a background
//! thread so that no frame ever waits for `/proc/stat`.
//!
//! The figures include every process on the machine: interference from other
//! programs is part of what a run measured, so it is shown, not hidden.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::sys;

/// How much history is kept.
pub const KEEP: Duration = Duration::from_secs(60);

/// Every core's busy percentage at one instant.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// `CLOCK_MONOTONIC` ns, the clock of a run's `origin_ns`.
    pub t_ns: u64,
    /// Busy % (0–100) of each CPU the system lists, by CPU id.
    pub per_core: Vec<f32>,
}

/// Samples no older than [`KEEP`] before the newest, oldest first.
#[derive(Debug, Default)]
pub struct History {
    samples: VecDeque<Sample>,
}

impl History {
    pub fn push(&mut self, sample: Sample) {
        let keep_ns = KEEP.as_nanos() as u64;
        let newest = sample.t_ns;
        self.samples.push_back(sample);
        while self
            .samples
            .front()
            .is_some_and(|s| s.t_ns + keep_ns < newest)
        {
            self.samples.pop_front();
        }
    }

    pub fn samples(&self) -> &VecDeque<Sample> {
        &self.samples
    }

    /// How many CPUs the latest sample lists.
    pub fn cores(&self) -> usize {
        self.samples.back().map_or(0, |s| s.per_core.len())
    }
}

/// The background sampler. Dropping it stops and joins its thread.
pub struct Sampler {
    history: Arc<Mutex<History>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    period: Duration,
}

impl Sampler {
    /// Starts sampling every `period` (never faster than sysinfo's minimum,
    /// below which its figures are meaningless). `on_sample` runs after each
    /// sample, e.g. to ask a window to repaint.
    pub fn start(
        period: Duration,
        on_sample: impl Fn() + Send + 'static,
    ) -> std::io::Result<Sampler> {
        let period = period.max(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        let system = sysinfo::System::new().map_err(|e| std::io::Error::other(e.to_string()))?;
        let history = Arc::new(Mutex::new(History::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (shared, flag) = (history.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("corelanes-utilisation".into())
            .spawn(move || sample_until(system, &flag, period, &shared, on_sample))?;
        Ok(Sampler {
            history,
            stop,
            thread: Some(thread),
            period,
        })
    }

    pub fn period(&self) -> Duration {
        self.period
    }

    /// Reads the history under its lock (held only as long as `read` runs).
    pub fn with_history<R>(&self, read: impl FnOnce(&History) -> R) -> R {
        read(&self.history.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

fn sample_until(
    mut system: sysinfo::System,
    stop: &AtomicBool,
    period: Duration,
    history: &Mutex<History>,
    on_sample: impl Fn(),
) {
    // sysinfo's usage is a difference between two reads: the first one only primes it.
    system.refresh_cpu_usage();
    while !stop.load(Ordering::Relaxed) {
        std::thread::park_timeout(period);
        if stop.load(Ordering::Relaxed) {
            break;
        }
        system.refresh_cpu_usage();
        let sample = Sample {
            t_ns: sys::monotonic_ns(),
            per_core: system.cpus().iter().map(|cpu| cpu.usage()).collect(),
        };
        history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(sample);
        on_sample();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_the_last_minute() {
        let mut history = History::default();
        let second = 1_000_000_000;
        for t in 0..100u64 {
            history.push(Sample {
                t_ns: t * second,
                per_core: vec![50.0, 10.0],
            });
        }
        let samples = history.samples();
        assert_eq!(samples.back().unwrap().t_ns, 99 * second);
        assert_eq!(samples.front().unwrap().t_ns, 39 * second);
        assert_eq!(history.cores(), 2);
    }

    #[test]
    fn sampler_reports_every_cpu_and_stops_when_dropped() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let sampler = Sampler::start(Duration::ZERO, move || {
            let _ = tx.send(());
        })
        .unwrap();
        assert!(sampler.period() >= sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        rx.recv_timeout(Duration::from_secs(10))
            .expect("a sample arrives");
        let (cores, busy) = sampler.with_history(|h| {
            let last = h.samples().back().unwrap();
            (
                h.cores(),
                last.per_core.iter().all(|p| (0.0..=100.5).contains(p)),
            )
        });
        assert!(cores >= 1 && busy);
        drop(sampler);
    }
}
