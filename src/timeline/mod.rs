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
#[derive(Clone, Debug, Default)]
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
}

impl Timeline {
    pub fn reset(&mut self, threads: usize) {
        *self = Timeline {
            threads: vec![Lane::default(); threads],
            thread_states: vec![Lane::default(); threads],
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

    fn room(&mut self) -> bool {
        let ok = self.len() < SPAN_CAP;
        if !ok {
            self.dropped += 1;
        }
        ok
    }

    /// Adds task lifetimes; `first` is the index of `tasks[0]` in the run's task list.
    pub fn add_tasks(&mut self, first: usize, tasks: &[TaskRecord]) {
        // Without kernel data each task is drawn twice: on its thread and on its core.
        let lanes_per_task = if self.cores_from_kernel { 1 } else { 2 };
        let keep = tasks
            .len()
            .min(SPAN_CAP.saturating_sub(self.len()) / lanes_per_task);
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
        for (i, slice) in slices.iter().enumerate() {
            if !self.room() {
                continue;
            }
            let item = i as u32;
            lane_at(&mut self.thread_states, slice.thread).push(slice.start_ns, slice.end_ns, item);
            if slice.state == SliceState::Running && self.room() {
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
