//! The computation kernel and its calibration.

use std::hint::black_box;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// Iterations between two looks at the cancel flag (~1 ms of work).
const CHUNK: u64 = 1 << 20;

/// Runs `iters` rounds of a xorshift generator. Its result depends on every
/// round and goes through `black_box`, so the optimiser cannot drop the work.
/// Stops early (returning what it has) once `cancel` is set.
pub fn spin(iters: u64, seed: u64, cancel: &AtomicBool) -> u64 {
    let mut x = seed | 1;
    let mut left = iters;
    while left > 0 {
        let n = left.min(CHUNK);
        for _ in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        x = black_box(x);
        left -= n;
        if cancel.load(Ordering::Relaxed) {
            break;
        }
    }
    x
}

/// How fast this machine runs [`spin`]: measured once per process, so every
/// run of a session (and every point of a sweep) does the same work per task.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Calibration {
    pub iters_per_ms: f64,
}

static CALIBRATION: OnceLock<Calibration> = OnceLock::new();

impl Calibration {
    pub fn get() -> Calibration {
        *CALIBRATION.get_or_init(Calibration::measure)
    }

    /// Times a few short rounds with the thread's own CPU clock (so time spent
    /// preempted by other processes does not count) and keeps the fastest:
    /// the rate of an idle core.
    fn measure() -> Calibration {
        let never = AtomicBool::new(false);
        let iters = 4_000_000;
        let best_ns = (0..5)
            .map(|round| {
                let t0 = crate::sys::thread_cpu_ns();
                black_box(spin(iters, round, &never));
                crate::sys::thread_cpu_ns().saturating_sub(t0).max(1)
            })
            .min()
            .unwrap_or(1);
        Calibration {
            iters_per_ms: iters as f64 * 1e6 / best_ns as f64,
        }
    }

    pub fn iters_for_ms(&self, ms: f64) -> u64 {
        (self.iters_per_ms * ms.max(0.0)).round() as u64
    }
}
