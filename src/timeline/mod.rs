//! The drawing store: spans on lanes (one lane per thread, per core, per
//! thread's scheduler state), kept as structures of arrays sorted by start,
//! so a view finds the visible range by binary search and folds spans too
//! narrow to see.

mod lane;

pub use lane::{Drawn, Lane};

use crate::telemetry::events::TaskRecord;
use crate::telemetry::sched::{SchedSlice, SliceState};

/// Most spans stored across all lanes of one run (20 B each: 200 MB at most).
pub const SPAN_CAP: usize = 10_000_000;

/// Lanes of one run. Items are indices into the run's `tasks` (thread lanes,
/// and core lanes without kernel data) or its scheduler `slices`.
#[derive(Clone, Debug)]
pub struct Timeline {
    /// Task lifetimes, one lane per worker thread.
    pub threads: Vec<Lane>,
    /// The kernel's view of each thread: running, runnable, blocked slices.
    pub thread_states: Vec<Lane>,
    /// What each core ran, indexed by core id.
    pub cores: Vec<Lane>,
    /// True once `cores` holds the kernel's running slices rather than task lifetimes.
    pub cores_from_kernel: bool,
    /// Spans not stored because the cap was reached.
    pub dropped: u64,
    /// Most spans stored ([`SPAN_CAP`]; smaller in tests).
    cap: usize,
}

impl Default for Timeline {
    fn default() -> Timeline {
        Timeline {
            threads: Vec::new(),
            thread_states: Vec::new(),
            cores: Vec::new(),
            cores_from_kernel: false,
            dropped: 0,
            cap: SPAN_CAP,
        }
    }
}

impl Timeline {
    pub fn reset(&mut self, threads: usize) {
        *self = Timeline {
            threads: vec![Lane::default(); threads],
            thread_states: vec![Lane::default(); threads],
            cap: self.cap,
            ..Timeline::default()
        };
    }

    /// Makes room for `tasks` task lifetimes spread evenly over the thread lanes.
    pub fn reserve(&mut self, tasks: usize) {
        let per_lane = tasks.div_ceil(self.threads.len().max(1));
        for lane in &mut self.threads {
            lane.reserve(per_lane);
        }
    }

    pub fn len(&self) -> usize {
        let count = |lanes: &[Lane]| lanes.iter().map(Lane::len).sum::<usize>();
        count(&self.threads) + count(&self.thread_states) + count(&self.cores)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds task lifetimes; `first` is the index of `tasks[0]` in the run's task list.
    pub fn add_tasks(&mut self, first: usize, tasks: &[TaskRecord]) {
        // Without kernel data each task is drawn twice: on its thread and on its core.
        let lanes_per_task = if self.cores_from_kernel { 1 } else { 2 };
        let keep = tasks
            .len()
            .min(self.cap.saturating_sub(self.len()) / lanes_per_task);
        self.dropped += (tasks.len() - keep) as u64;
        for (i, task) in tasks[..keep].iter().enumerate() {
            let item = (first + i) as u32;
            lane_at(&mut self.threads, task.thread as usize).push(task.start_ns, task.end_ns, item);
            if !self.cores_from_kernel {
                lane_at(&mut self.cores, task.core_at_start as usize).push(
                    task.start_ns,
                    task.end_ns,
                    item,
                );
            }
        }
    }

    /// Adds the kernel's slices; core lanes switch from task lifetimes to running slices.
    pub fn add_slices(&mut self, slices: &[SchedSlice]) {
        if !self.cores_from_kernel {
            self.cores.clear();
            self.cores_from_kernel = true;
        }
        // Counted once, not per slice (len() sums every lane).
        let mut room = self.cap.saturating_sub(self.len());
        for (i, slice) in slices.iter().enumerate() {
            let lanes = if slice.state == SliceState::Running {
                2
            } else {
                1
            };
            if room < lanes {
                self.dropped += lanes as u64;
                continue;
            }
            room -= lanes;
            let item = i as u32;
            lane_at(&mut self.thread_states, slice.thread).push(slice.start_ns, slice.end_ns, item);
            if slice.state == SliceState::Running {
                lane_at(&mut self.cores, slice.core).push(slice.start_ns, slice.end_ns, item);
            }
        }
        self.settle();
    }

    /// Sorts lanes that received spans out of order (core lanes gather many threads).
    pub fn settle(&mut self) {
        for lane in self
            .threads
            .iter_mut()
            .chain(&mut self.thread_states)
            .chain(&mut self.cores)
        {
            lane.settle();
        }
    }

    /// The cores that hold at least one span, ascending.
    pub fn busy_cores(&self) -> Vec<usize> {
        (0..self.cores.len())
            .filter(|&c| !self.cores[c].is_empty())
            .collect()
    }

    /// The latest end of any span.
    pub fn end_ns(&self) -> u64 {
        self.threads
            .iter()
            .chain(&self.thread_states)
            .chain(&self.cores)
            .map(Lane::max_end)
            .max()
            .unwrap_or(0)
    }
}

/// Reserves room for `n` more items and touches it, so that the kernel zeroes
/// those pages now, when the run starts, instead of on the ingest path (on a
/// VM, first-touch page zeroing was most of the cost of ingesting an event).
pub(crate) fn reserve_resident<T: Copy>(v: &mut Vec<T>, n: usize) {
    v.reserve_exact(n);
    v.spare_capacity_mut().fill(std::mem::MaybeUninit::zeroed());
}

#[inline]
fn lane_at(lanes: &mut Vec<Lane>, index: usize) -> &mut Lane {
    if lanes.len() <= index {
        lanes.resize(index + 1, Lane::default());
    }
    &mut lanes[index]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: u32, thread: u32, core: u32) -> TaskRecord {
        let t = u64::from(id) * 10;
        TaskRecord {
            id,
            thread,
            start_ns: t,
            end_ns: t + 5,
            core_at_start: core,
            core_at_end: core,
            cpu_ns: 5,
            ok: true,
        }
    }

    fn slice(thread: usize, core: usize, state: SliceState, start_ns: u64) -> SchedSlice {
        SchedSlice {
            thread,
            core,
            state,
            start_ns,
            end_ns: start_ns + 5,
        }
    }

    #[test]
    fn kernel_slices_replace_task_lifetimes_on_core_lanes() {
        let mut tl = Timeline::default();
        tl.reset(2);
        tl.add_tasks(0, &[task(0, 0, 1), task(1, 1, 1)]);
        assert_eq!(
            tl.cores[1].len(),
            2,
            "without kernel data, lifetimes by core"
        );
        tl.add_slices(&[
            slice(0, 0, SliceState::Running, 0),
            slice(0, 0, SliceState::Blocked, 5),
            slice(1, 0, SliceState::Running, 10),
        ]);
        assert!(tl.cores_from_kernel);
        assert_eq!(
            tl.busy_cores(),
            vec![0],
            "only running slices, on the core they ran on"
        );
        assert_eq!(tl.cores[0].len(), 2);
        assert_eq!(tl.thread_states[0].len(), 2);
        assert_eq!(tl.len(), 2 + 3 + 2);
    }

    #[test]
    fn the_cap_drops_and_counts_what_does_not_fit() {
        let mut tl = Timeline {
            cap: 5,
            ..Timeline::default()
        };
        tl.reset(1);
        // Two lanes per task without kernel data: two tasks fit, the third is dropped.
        tl.add_tasks(0, &[task(0, 0, 0), task(1, 0, 0), task(2, 0, 0)]);
        assert_eq!((tl.len(), tl.dropped), (4, 1));
        // One place left (core lanes kept): a running slice needs two lanes and is
        // dropped, a blocked one needs one and fits.
        tl.cores_from_kernel = true;
        tl.add_slices(&[
            slice(0, 0, SliceState::Running, 0),
            slice(0, 0, SliceState::Blocked, 5),
        ]);
        assert_eq!(tl.thread_states[0].len(), 1);
        assert_eq!((tl.len(), tl.dropped), (5, 3));
    }
}
