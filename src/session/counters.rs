//! Derived counters a session carries for Perfetto: how many of a run's
//! threads were running, and how many runnable (waiting for a CPU), over
//! time. Computed from the kernel slices; never read back (the reader
//! rebuilds the slices themselves).

use crate::telemetry::sched::{SchedSlice, SliceState};

/// Calls `each(time_ns, count)` with the number of `slices` in `state` at
/// each instant that number changes, in time order (slices are half-open,
/// `[start, end)`, so one ending as another starts changes nothing). The
/// first call is at time 0, the start of the run.
pub fn count_changes<E>(
    slices: &[SchedSlice],
    state: SliceState,
    mut each: impl FnMut(u64, i64) -> Result<(), E>,
) -> Result<(), E> {
    // Two sorted lists of instants and a merge: 16 B a slice in state, where
    // sorting (time, ±1) pairs would take 16 B a boundary.
    let (mut starts, mut ends): (Vec<u64>, Vec<u64>) = slices
        .iter()
        .filter(|s| s.state == state)
        .map(|s| (s.start_ns, s.end_ns.max(s.start_ns)))
        .unzip();
    starts.sort_unstable();
    ends.sort_unstable();
    let (mut s, mut e, mut count, mut shown) = (0, 0, 0i64, None);
    if starts.first().is_none_or(|&t| t > 0) {
        each(0, 0)?;
        shown = Some(0);
    }
    while e < ends.len() {
        let now = starts.get(s).map_or(ends[e], |&t| t.min(ends[e]));
        while starts.get(s) == Some(&now) {
            count += 1;
            s += 1;
        }
        while ends.get(e) == Some(&now) {
            count -= 1;
            e += 1;
        }
        if shown != Some(count) {
            each(now, count)?;
            shown = Some(count);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(thread: usize, state: SliceState, start_ns: u64, end_ns: u64) -> SchedSlice {
        SchedSlice {
            thread,
            core: 0,
            state,
            start_ns,
            end_ns,
        }
    }

    fn changes(slices: &[SchedSlice], state: SliceState) -> Vec<(u64, i64)> {
        let mut out = Vec::new();
        count_changes::<()>(slices, state, |t, n| {
            out.push((t, n));
            Ok(())
        })
        .unwrap();
        out
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
