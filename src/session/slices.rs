//! Which scheduler slices the `sched_switch` pairs imply, shared by the
//! writer (to store only what they do not) and the reader (to rebuild them).
//!
//! A switch-out says whether the thread was still runnable (preempted, R) or
//! went to sleep (S); it then waited in that state, on the core it left, until
//! its next switch-in. So between two running slices of a thread lies one
//! implied slice. Anything else (a wait before the first run, after the last,
//! a coarse source's odd gaps) is stored beside the metadata.

use crate::telemetry::sched::{SchedSlice, SliceState};

use super::proto::{TASK_INTERRUPTIBLE, TASK_RUNNING};

/// How a running slice ended: the state its switch-out names.
pub fn out_state(slices: &[SchedSlice], running: usize) -> SliceState {
    let ran = &slices[running];
    match slices.get(running + 1) {
        Some(next)
            if next.thread == ran.thread
                && next.start_ns == ran.end_ns
                && next.state != SliceState::Running =>
        {
            next.state
        }
        _ => SliceState::Blocked,
    }
}

pub fn prev_state(state: SliceState) -> i64 {
    match state {
        SliceState::Runnable => TASK_RUNNING,
        _ => TASK_INTERRUPTIBLE,
    }
}

pub fn from_prev_state(prev_state: i64) -> SliceState {
    if prev_state == TASK_RUNNING {
        SliceState::Runnable
    } else {
        SliceState::Blocked
    }
}

/// Appends one thread's implied slices, given its running slices in start
/// order, each with the state it was switched out into.
pub fn implied(runs: &[(SchedSlice, SliceState)], out: &mut Vec<SchedSlice>) {
    for (i, (ran, state)) in runs.iter().enumerate() {
        out.push(ran.clone());
        if let Some((next, _)) = runs.get(i + 1)
            && next.start_ns > ran.end_ns
        {
            out.push(SchedSlice {
                state: *state,
                start_ns: ran.end_ns,
                end_ns: next.start_ns,
                ..ran.clone()
            });
        }
    }
}

/// What to store besides the switches so that one thread's `actual` slices
/// (start order) come back: those not implied, and implied ones not there.
pub fn difference(
    actual: &[SchedSlice],
    implied: &[SchedSlice],
    extra: &mut Vec<SchedSlice>,
    not_there: &mut Vec<(usize, u64)>,
) {
    let (mut a, mut b) = (actual.iter().peekable(), implied.iter().peekable());
    loop {
        match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x == y => {
                a.next();
                b.next();
            }
            (Some(x), Some(y)) if x.start_ns < y.start_ns => {
                extra.push((*x).clone());
                a.next();
            }
            (Some(x), Some(y)) if x.start_ns == y.start_ns => {
                extra.push((*x).clone());
                not_there.push((y.thread(), y.start_ns));
                a.next();
                b.next();
            }
            (_, Some(y)) => {
                not_there.push((y.thread(), y.start_ns));
                b.next();
            }
            (Some(x), None) => {
                extra.push((*x).clone());
                a.next();
            }
            (None, None) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(state: SliceState, core: usize, start_ns: u64, end_ns: u64) -> SchedSlice {
        SchedSlice::new(0, core, state, start_ns, end_ns)
    }

    /// Each way a thread's slices can fall comes back exactly: implied waits,
    /// a leading wait, a trailing wait, a gap with no slice, a migration with
    /// no gap, and a wait that does not reach the next run.
    #[test]
    fn implied_plus_difference_gives_the_slices_back() {
        use SliceState::*;
        let actual = vec![
            slice(Runnable, 0, 0, 5),
            slice(Running, 0, 5, 10),
            slice(Runnable, 0, 10, 20),
            slice(Running, 1, 20, 30),
            slice(Blocked, 1, 30, 40),
            slice(Running, 1, 40, 50),
            slice(Running, 0, 50, 60),
            slice(Running, 0, 70, 80),
            slice(Blocked, 0, 80, 85),
            slice(Running, 1, 90, 95),
            slice(Blocked, 1, 95, 200),
        ];
        let runs: Vec<_> = (0..actual.len())
            .filter(|&i| actual[i].state == Running)
            .map(|i| (actual[i].clone(), out_state(&actual, i)))
            .collect();
        let mut derived = Vec::new();
        implied(&runs, &mut derived);
        let (mut extra, mut not_there) = (Vec::new(), Vec::new());
        difference(&actual, &derived, &mut extra, &mut not_there);
        assert_eq!(
            extra.len(),
            3,
            "leading, short and trailing waits: {extra:?}"
        );
        assert_eq!(not_there, vec![(0, 60), (0, 80)]);

        let mut back: Vec<_> = derived
            .into_iter()
            .filter(|s| !not_there.contains(&(s.thread(), s.start_ns)))
            .chain(extra)
            .collect();
        back.sort_by_key(|s| (s.thread, s.start_ns, s.end_ns));
        assert_eq!(back, actual);
    }
}
