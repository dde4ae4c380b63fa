//! Derived counters a session carries for Perfetto: how many of a run's
//! threads were running, and how many runnable (waiting for a CPU), over
//! time, and how busy the run kept each core. Computed from the kernel
//! slices; never read back (the reader rebuilds the slices themselves).

use std::collections::BTreeMap;

pub use crate::metrics::count_changes;
use crate::telemetry::sched::{SchedSlice, SliceState};

/// The most values a core's utilisation counter gets: windows widen on long
/// runs so that the counters stay a small part of the file.
const MAX_WINDOWS: u64 = 2000;
/// The narrowest window: about what a utilisation sampler shows.
const MIN_WINDOW_NS: u64 = 10_000_000;

/// The window of the per-core utilisation counters of a run lasting `wall_ns`.
pub fn busy_window_ns(wall_ns: u64) -> u64 {
    // Whole milliseconds, so that the track's name can say it exactly.
    ((wall_ns / MAX_WINDOWS).div_ceil(1_000_000) * 1_000_000).max(MIN_WINDOW_NS)
}

/// Per core, the nanoseconds of each `window_ns` window (from 0 to `end_ns`)
/// in which the run's threads ran on it. Only the slices of this run are
/// known, so other programs' use of the core is not in it.
pub fn core_busy(slices: &[SchedSlice], window_ns: u64, end_ns: u64) -> BTreeMap<usize, Vec<u64>> {
    let windows = end_ns.div_ceil(window_ns).max(1) as usize;
    let mut busy: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    for s in slices.iter().filter(|s| s.state == SliceState::Running) {
        let per_window = busy.entry(s.core()).or_insert_with(|| vec![0; windows]);
        let (mut t, end) = (s.start_ns, s.end_ns.min(end_ns));
        while t < end {
            let w = t / window_ns;
            let until = ((w + 1) * window_ns).min(end);
            per_window[w as usize] += until - t;
            t = until;
        }
    }
    busy
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(thread: usize, state: SliceState, start_ns: u64, end_ns: u64) -> SchedSlice {
        SchedSlice::on_core0(thread, state, start_ns, end_ns)
    }

    fn changes(slices: &[SchedSlice], state: SliceState) -> Vec<(u64, i64)> {
        count_changes(slices, state).collect()
    }

    #[test]
    fn core_busy_splits_slices_at_window_edges_and_ignores_waiting() {
        use SliceState::{Runnable, Running};
        let slices = [
            slice(0, Running, 5, 25),
            slice(1, Running, 25, 30),
            slice(1, Runnable, 0, 25),
            SchedSlice {
                core: 3,
                ..slice(2, Running, 28, 45)
            },
        ];
        let busy = core_busy(&slices, 10, 40);
        assert_eq!(busy.keys().copied().collect::<Vec<_>>(), [0, 3]);
        assert_eq!(busy[&0], [5, 10, 10, 0], "5–25 and 25–30 on core 0");
        assert_eq!(busy[&3], [0, 0, 2, 10], "cut at the run's end, 40");
        assert_eq!(busy_window_ns(1_000_000), MIN_WINDOW_NS);
        assert_eq!(busy_window_ns(3_600_000_000_000), 1_800_000_000);
        assert_eq!(busy_window_ns(30_500_000_000), 16_000_000, "whole ms");
    }

    #[test]
    fn counts_change_only_where_slices_begin_or_end_uncovered() {
        use SliceState::{Blocked, Runnable, Running};
        let slices = [
            // Thread 0 runs, is preempted, runs again; thread 1 takes its turn.
            slice(0, Running, 10, 20),
            slice(0, Runnable, 20, 30),
            slice(0, Running, 30, 40),
            slice(1, Runnable, 10, 20),
            slice(1, Running, 20, 30),
            slice(1, Blocked, 30, 50),
            // Thread 2 runs beside them on another core, and for no time at 45.
            slice(2, Running, 15, 35),
            slice(2, Running, 45, 45),
        ];
        assert_eq!(
            changes(&slices, Running),
            [(0, 0), (10, 1), (15, 2), (35, 1), (40, 0)],
            "a hand-over at 20 and 30 keeps the count; 45 lasts no time"
        );
        assert_eq!(
            changes(&slices, Runnable),
            [(0, 0), (10, 1), (30, 0)],
            "thread 1 waits 10–20, thread 0 20–30: one waiting throughout"
        );
        assert_eq!(changes(&slices, Blocked), [(0, 0), (30, 1), (50, 0)]);
        assert_eq!(changes(&[], Running), [(0, 0)]);
        assert_eq!(
            changes(&[slice(0, Running, 0, 5)], Running),
            [(0, 1), (5, 0)],
            "no zero before a slice at the origin"
        );
    }
}
