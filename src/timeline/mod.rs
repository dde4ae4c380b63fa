//! The drawing store: spans on lanes (one lane per thread, per core, per
//! thread's scheduler state), each in start order with a multi-resolution
//! summary, so that a view gets the exact time share of every thread or
//! state in any pixel column without walking the spans inside it.

mod counts;
mod lane;
mod summary;

pub use counts::{Counts, Level};
pub use lane::{Class, Lane, Span};
pub use summary::Mix;

use crate::telemetry::events::{RunEvent, TaskRecord, ThreadRecord};
use crate::telemetry::sched::{OtherSlice, SchedSlice, SchedSource, SliceState};

/// Most spans stored across all lanes of one run (22 B each: 220 MB at most).
pub const SPAN_CAP: usize = 10_000_000;

/// CPU numbers at or above this are not believed (a lane index must stay small).
const MAX_CORES: usize = 1 << 16;

/// Lanes are searched for spans out of the window at most once per this
/// much of the run's time, not per batch: each search is a binary search
/// per lane, cache misses over lanes of millions of spans.
const AGE_EVERY_NS: u64 = crate::retention::WINDOW_NS / 64;

/// Heap bytes of the drawing store by what they hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapBytes {
    /// The stored spans.
    pub spans: usize,
    /// Per-pixel summaries (segment-tree nodes, the counts' buckets).
    pub summary: usize,
    /// Capacity allocated and not in use.
    pub spare: usize,
}

impl HeapBytes {
    /// `v`'s items (as summary or as spans) and its spare capacity.
    fn of<T>(v: &Vec<T>, summary: bool) -> HeapBytes {
        let size = std::mem::size_of::<T>();
        let used = v.len() * size;
        HeapBytes {
            spans: if summary { 0 } else { used },
            summary: if summary { used } else { 0 },
            spare: (v.capacity() - v.len()) * size,
        }
    }

    pub fn total(&self) -> usize {
        self.spans + self.summary + self.spare
    }
}

impl std::ops::Add for HeapBytes {
    type Output = HeapBytes;
    fn add(self, o: HeapBytes) -> HeapBytes {
        HeapBytes {
            spans: self.spans + o.spans,
            summary: self.summary + o.summary,
            spare: self.spare + o.spare,
        }
    }
}

impl std::iter::Sum for HeapBytes {
    fn sum<I: Iterator<Item = HeapBytes>>(iter: I) -> HeapBytes {
        iter.fold(HeapBytes::default(), std::ops::Add::add)
    }
}

/// A state strip's class for each scheduler state.
pub fn state_class(state: SliceState) -> Class {
    match state {
        SliceState::Running => 0,
        SliceState::Runnable => 1,
        SliceState::Blocked => 2,
    }
}

/// The scheduler state a state strip's class stands for.
pub fn class_state(class: Class) -> SliceState {
    match class {
        0 => SliceState::Running,
        1 => SliceState::Runnable,
        _ => SliceState::Blocked,
    }
}

/// Which lanes a slice goes to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lanes {
    /// Its thread's state strip only.
    State,
    /// Its core's lane only (running slices).
    Core,
    Both,
}

/// Lanes of one run. Items are indices into the run's `tasks` (task lanes)
/// or its scheduler slices (core lanes and state strips).
#[derive(Clone, Debug)]
pub struct Timeline {
    /// Task lifetimes, one lane per worker thread.
    pub threads: Vec<Lane>,
    /// The kernel's view of each thread: running, runnable, blocked slices
    /// (class: [`state_class`]).
    pub thread_states: Vec<Lane>,
    /// The kernel's running slices on each core, indexed by core id (class: thread).
    pub cores: Vec<Lane>,
    /// Without kernel data: task lifetimes by the core each task started
    /// on, one lane per `[core][thread]` (lifetimes of threads sharing a core
    /// overlap, so each thread keeps a lane of its own).
    pub core_tasks: Vec<Vec<Lane>>,
    /// True once the core lanes hold the kernel's running slices.
    pub cores_from_kernel: bool,
    /// How many threads ran and waited over time (all slices, stored or not).
    pub counts: Counts,
    /// System-wide capture only: what other programs ran on each core,
    /// indexed by core id (items: the report's `others`; class 0).
    pub others: Vec<Lane>,
    /// Spans stored (pieces of very long spans aside), kept to check the cap cheaply.
    stored: usize,
    /// Task lifetimes and scheduler spans not stored because the cap was reached.
    dropped_tasks: u64,
    dropped_slices: u64,
    /// Most spans stored ([`SPAN_CAP`]; smaller in tests).
    cap: usize,
    /// The run's time at which lanes are next searched for spans out of the window.
    next_age_ns: u64,
}

impl Default for Timeline {
    fn default() -> Timeline {
        Timeline {
            threads: Vec::new(),
            thread_states: Vec::new(),
            cores: Vec::new(),
            core_tasks: Vec::new(),
            cores_from_kernel: false,
            counts: Counts::default(),
            others: Vec::new(),
            stored: 0,
            dropped_tasks: 0,
            dropped_slices: 0,
            cap: SPAN_CAP,
            // Nothing is out of the window before the window has passed.
            next_age_ns: crate::retention::WINDOW_NS,
        }
    }
}

impl Timeline {
    /// Takes in one of a run's events. Items index the run's tasks and
    /// slices: `tasks` and `slices` are how many the run held before this
    /// event (so call it just before the recording takes the same event).
    pub fn ingest(&mut self, event: &RunEvent, tasks: usize, slices: usize, planned_tasks: usize) {
        match event {
            RunEvent::Started {
                threads,
                sched_source,
                ..
            } => {
                self.reset(threads.len());
                // Without streamed kernel slices each task is drawn on its
                // core too, and a pinned thread's core is known now.
                if *sched_source == SchedSource::Perf {
                    self.reserve(planned_tasks.min(self.cap));
                } else {
                    let tasks = planned_tasks.min(self.cap / 2);
                    self.reserve(tasks);
                    self.reserve_pinned_cores(tasks, threads);
                }
            }
            RunEvent::Tasks(batch) => {
                self.age_out(batch.iter().map(|t| t.end_ns).max().unwrap_or(0));
                self.add_tasks(tasks, batch);
            }
            RunEvent::Slices(batch) => {
                self.age_out(batch.iter().map(|s| s.end_ns).max().unwrap_or(0));
                self.add_slices(slices, batch);
            }
            RunEvent::Sched(report) => {
                // A streamed report's slices are those already here.
                if !report.streamed {
                    self.set_slices(0, &report.slices);
                }
                self.set_others(&report.others);
            }
            // No more spans come: what was reserved for them is let go.
            RunEvent::Finished { .. } => self.shrink_to_fit(),
            RunEvent::Environment(_)
            | RunEvent::Handoffs(_)
            | RunEvent::ThreadStarted { .. }
            | RunEvent::ThreadSeen(_)
            | RunEvent::Program(_)
            | RunEvent::ThreadDone(_)
            | RunEvent::Failure(_) => {}
        }
    }

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

    /// Makes room on each pinned thread's core lane for its share of
    /// `tasks`, as [`Timeline::reserve`] does on its own lane: otherwise
    /// those lanes grow, copy and fault in pages while the tasks arrive
    /// (a run without perf drew tasks at two thirds of the speed).
    fn reserve_pinned_cores(&mut self, tasks: usize, threads: &[ThreadRecord]) {
        let per_lane = tasks.div_ceil(threads.len().max(1));
        for (index, thread) in threads.iter().enumerate() {
            if let Some(core) = thread.pinned_core.filter(|&c| c < MAX_CORES) {
                at(at(&mut self.core_tasks, core), index).reserve(per_lane);
            }
        }
    }

    fn lanes(&self) -> impl Iterator<Item = &Lane> {
        self.threads
            .iter()
            .chain(&self.thread_states)
            .chain(&self.cores)
            .chain(self.core_tasks.iter().flatten())
            .chain(&self.others)
    }

    pub fn len(&self) -> usize {
        self.lanes().map(Lane::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets, in every lane, the spans that ended over
    /// [`crate::retention::WINDOW_NS`] before `now_ns`, once they are an
    /// eighth of the lane (so the copy is amortised); their summary stays.
    /// Looked for once per [`AGE_EVERY_NS`] of the run's time.
    fn age_out(&mut self, now_ns: u64) {
        if now_ns < self.next_age_ns {
            return;
        }
        self.next_age_ns = now_ns + AGE_EVERY_NS;
        let horizon = now_ns.saturating_sub(crate::retention::WINDOW_NS);
        let mut forgot = false;
        for lane in self.lanes_mut() {
            let n = lane.forgettable(horizon);
            if n > 0 && n >= lane.len() / 8 {
                lane.forget(n);
                forgot = true;
            }
        }
        if forgot {
            self.stored = self.len();
        }
    }

    /// Makes room for `needed` more spans under the cap by forgetting the
    /// oldest quarter of every lane into the summary (the recording's
    /// [`crate::retention::trim`] drops half instead); what still does not
    /// fit is dropped and counted by the caller.
    fn make_room(&mut self, needed: usize) {
        if self.stored + needed <= self.cap {
            return;
        }
        for lane in self.lanes_mut() {
            let quarter = lane.get(lane.len() / 4).end_ns;
            let n = lane.forgettable(quarter);
            lane.forget(n);
        }
        self.stored = self.len();
    }

    /// The lanes that hold spans and may forget them (not the other programs').
    fn lanes_mut(&mut self) -> impl Iterator<Item = &mut Lane> {
        self.threads
            .iter_mut()
            .chain(&mut self.thread_states)
            .chain(&mut self.cores)
            .chain(self.core_tasks.iter_mut().flatten())
            .filter(|lane| !lane.is_empty())
    }

    /// Lets go of capacity not in use (what was reserved for spans that
    /// did not come, what forgotten spans left): for a store that takes
    /// no more spans, or few.
    pub fn shrink_to_fit(&mut self) {
        self.threads
            .iter_mut()
            .chain(&mut self.thread_states)
            .chain(&mut self.cores)
            .chain(self.core_tasks.iter_mut().flatten())
            .chain(&mut self.others)
            .for_each(Lane::shrink_to_fit);
        self.counts.shrink_to_fit();
    }

    /// Before this time (ns since the origin) some lane keeps only the
    /// summary of its spans; 0 when every span is kept.
    pub fn summarised_before_ns(&self) -> u64 {
        self.lanes()
            .map(Lane::summarised_before_ns)
            .max()
            .unwrap_or(0)
    }

    /// Adds task lifetimes; `first` is the index of `tasks[0]` in the run's task list.
    pub fn add_tasks(&mut self, first: usize, tasks: &[TaskRecord]) {
        // Without kernel data each task is drawn twice: on its thread and on its core.
        let lanes_per_task = if self.cores_from_kernel { 1 } else { 2 };
        self.make_room(tasks.len() * lanes_per_task);
        let keep = tasks
            .len()
            .min(self.cap.saturating_sub(self.stored) / lanes_per_task);
        self.dropped_tasks += (tasks.len() - keep) as u64;
        self.stored += keep * lanes_per_task;
        for (i, task) in tasks[..keep].iter().enumerate() {
            let item = (first + i) as u32;
            let thread = task.thread as usize;
            at(&mut self.threads, thread).push(task.start_ns, task.end_ns, item, 0);
            let core = task.core_at_start as usize;
            // A task whose CPU could not be read belongs to no core lane.
            if !self.cores_from_kernel && core < MAX_CORES {
                let by_thread = at(&mut self.core_tasks, core);
                at(by_thread, thread).push(task.start_ns, task.end_ns, item, 0);
            }
        }
    }

    /// Adds the kernel's slices as they stream in; `first` is the index of
    /// `slices[0]` among the run's slices. Core lanes switch from task
    /// lifetimes to running slices.
    pub fn add_slices(&mut self, first: usize, slices: &[SchedSlice]) {
        for (i, slice) in slices.iter().enumerate() {
            self.add_slice((first + i) as u32, slice, Lanes::Both);
        }
    }

    /// Follows the recording when it puts its kept slices, from item
    /// `first` on, in a report's order: the one that was at `first + i` is
    /// now at `first + moved[i]` (see `Recording::ingest_reordering`). The spans stay where
    /// they are; only the slices they name are renamed.
    pub fn reorder_slices(&mut self, first: u64, moved: &[u32]) {
        let first = first as u32;
        let rename = |item: u32| match item.checked_sub(first) {
            Some(i) if (i as usize) < moved.len() => first + moved[i as usize],
            _ => item,
        };
        for lane in self.thread_states.iter_mut().chain(&mut self.cores) {
            lane.rename_items(rename);
        }
    }

    /// Replaces the streamed slices with the final, complete ones (sorted
    /// by thread, then start, as a `SchedReport` holds them); `first` is the
    /// index of `slices[0]` among the run's slices.
    pub fn set_slices(&mut self, first: usize, slices: &[SchedSlice]) {
        self.thread_states.fill(Lane::default());
        self.cores.clear();
        self.counts = Counts::default();
        self.stored = self.len();
        self.dropped_slices = 0;
        // Counted first, so each lane is allocated once, at its size.
        let (mut per_thread, mut per_core) = (Vec::new(), Vec::new());
        for s in slices.iter().filter(|s| s.core() < MAX_CORES) {
            *at(&mut per_thread, s.thread()) += 1;
            if s.state == SliceState::Running {
                *at(&mut per_core, s.core()) += 1;
            }
        }
        for (thread, &n) in per_thread.iter().enumerate() {
            at(&mut self.thread_states, thread).reserve(n);
        }
        for (core, &n) in per_core.iter().enumerate() {
            at(&mut self.cores, core).reserve(n);
        }
        for (i, slice) in slices.iter().enumerate() {
            self.add_slice((first + i) as u32, slice, Lanes::State);
        }
        // Core lanes fill in start order per core; the report is in thread order.
        let mut running: Vec<u32> = (0..slices.len() as u32)
            .filter(|&i| slices[i as usize].state == SliceState::Running)
            .collect();
        running.sort_by_key(|&i| (slices[i as usize].core, slices[i as usize].start_ns));
        for i in running {
            self.add_slice(first as u32 + i, &slices[i as usize], Lanes::Core);
        }
        // The complete set: no more slices come.
        self.shrink_to_fit();
    }

    /// Sets what other programs ran on the cores (a system-wide capture's
    /// `others`, sorted by core, then start).
    pub fn set_others(&mut self, others: &[OtherSlice]) {
        self.others.clear();
        self.stored = self.len();
        self.counts.clear_others();
        for o in others {
            self.counts.add_other(o.start_ns, o.end_ns);
        }
        for (i, o) in others.iter().enumerate() {
            if self.stored >= self.cap || o.core >= MAX_CORES {
                self.dropped_slices += 1;
                continue;
            }
            self.stored += 1;
            at(&mut self.others, o.core).push(o.start_ns, o.end_ns, i as u32, 0);
        }
        self.others.iter_mut().for_each(Lane::shrink_to_fit);
    }

    fn add_slice(&mut self, item: u32, slice: &SchedSlice, lanes: Lanes) {
        if !self.cores_from_kernel {
            self.core_tasks.clear();
            self.cores_from_kernel = true;
            self.stored = self.len();
        }
        let running = slice.state == SliceState::Running;
        let to_state = lanes != Lanes::Core;
        let to_core = lanes != Lanes::State && running;
        let needed = usize::from(to_state) + usize::from(to_core);
        if to_state {
            self.counts.add(slice.state, slice.start_ns, slice.end_ns);
        }
        self.make_room(needed);
        if self.stored + needed > self.cap || slice.core() >= MAX_CORES {
            self.dropped_slices += needed as u64;
            return;
        }
        self.stored += needed;
        let (start, end) = (slice.start_ns, slice.end_ns);
        if to_state {
            let class = state_class(slice.state);
            at(&mut self.thread_states, slice.thread()).push(start, end, item, class);
        }
        if to_core {
            at(&mut self.cores, slice.core()).push(start, end, item, slice.thread() as Class);
        }
    }

    /// The cores that hold at least one span, ascending.
    pub fn busy_cores(&self) -> Vec<usize> {
        let lanes = if self.cores_from_kernel {
            self.cores.iter().map(|l| !l.is_empty()).collect::<Vec<_>>()
        } else {
            self.core_tasks
                .iter()
                .map(|ls| ls.iter().any(|l| !l.is_empty()))
                .collect()
        };
        (0..lanes.len()).filter(|&c| lanes[c]).collect()
    }

    /// The latest end of any span.
    pub fn end_ns(&self) -> u64 {
        self.lanes().map(Lane::end_ns).max().unwrap_or(0)
    }

    /// Spans not stored because the cap was reached.
    pub fn dropped(&self) -> u64 {
        self.dropped_tasks + self.dropped_slices
    }

    /// Bytes the lanes hold on the heap, summaries and spare capacity included.
    pub fn heap_bytes(&self) -> usize {
        self.heap().total()
    }

    /// The same by what the bytes hold.
    pub fn heap(&self) -> HeapBytes {
        self.lanes().map(Lane::heap).sum::<HeapBytes>() + self.counts.heap()
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
fn at<T: Default + Clone>(v: &mut Vec<T>, index: usize) -> &mut T {
    if v.len() <= index {
        v.resize(index + 1, T::default());
    }
    &mut v[index]
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
        SchedSlice::new(thread, core, state, start_ns, start_ns + 5)
    }

    #[test]
    fn kernel_slices_replace_task_lifetimes_on_core_lanes() {
        let mut tl = Timeline::default();
        tl.reset(2);
        tl.add_tasks(0, &[task(0, 0, 1), task(1, 1, 1)]);
        let by_thread: Vec<usize> = tl.core_tasks[1].iter().map(Lane::len).collect();
        assert_eq!(
            by_thread,
            vec![1, 1],
            "without kernel data, lifetimes by core and thread"
        );
        assert_eq!(tl.busy_cores(), vec![1]);
        tl.add_slices(
            0,
            &[
                slice(0, 0, SliceState::Running, 0),
                slice(0, 0, SliceState::Blocked, 5),
                slice(1, 0, SliceState::Running, 10),
            ],
        );
        assert!(tl.cores_from_kernel);
        assert_eq!(
            tl.busy_cores(),
            vec![0],
            "only running slices, on the core they ran on"
        );
        assert_eq!(tl.cores[0].len(), 2);
        assert_eq!(
            tl.cores[0].get(1).class,
            1,
            "core lanes are told apart by thread"
        );
        assert_eq!(tl.thread_states[0].len(), 2);
        assert_eq!(tl.len(), 2 + 3 + 2);
    }

    #[test]
    fn a_task_whose_cpu_is_unknown_stays_off_the_core_lanes() {
        let mut tl = Timeline::default();
        tl.reset(1);
        tl.add_tasks(0, &[task(0, 0, u32::MAX)]);
        assert_eq!(tl.threads[0].len(), 1);
        assert!(tl.core_tasks.is_empty() && tl.busy_cores().is_empty());
    }

    #[test]
    fn final_slices_in_thread_order_fill_core_lanes_in_time_order() {
        let mut tl = Timeline::default();
        tl.reset(2);
        // Thread 0 ran at 10, thread 1 at 0 and 20, all on core 0.
        tl.set_slices(
            0,
            &[
                slice(0, 0, SliceState::Running, 10),
                slice(1, 0, SliceState::Running, 0),
                slice(1, 0, SliceState::Running, 20),
            ],
        );
        let core: Vec<(u64, Class)> = (0..3)
            .map(|i| tl.cores[0].get(i))
            .map(|s| (s.start_ns, s.class))
            .collect();
        assert_eq!(core, vec![(0, 1), (10, 0), (20, 1)]);
        assert_eq!(tl.cores[0].clipped_ns, 0);
    }

    /// A store of `threads` thread lanes that keeps at most `cap` spans.
    fn capped(cap: usize, threads: usize) -> Timeline {
        let mut tl = Timeline {
            cap,
            ..Timeline::default()
        };
        tl.reset(threads);
        tl
    }

    #[test]
    fn a_run_without_streamed_slices_makes_room_on_its_pinned_cores_at_the_start() {
        let threads = |pinned: [Option<usize>; 3]| -> Vec<ThreadRecord> {
            pinned
                .into_iter()
                .map(|pinned_core| ThreadRecord {
                    pinned_core,
                    ..Default::default()
                })
                .collect()
        };
        let started = |sched_source| RunEvent::Started {
            origin_ns: 0,
            threads: threads([Some(1), None, Some(1)]),
            sched_source,
            sched_note: None,
        };
        let spare = |tl: &Timeline, core: usize, thread: usize| {
            tl.core_tasks
                .get(core)
                .and_then(|lanes| lanes.get(thread))
                .map_or(0, |lane| lane.heap().spare)
        };
        let mut tl = capped(60_000, 0);
        tl.ingest(&started(SchedSource::Procfs), 0, 0, 3_000);
        let per_lane = 1_000 * std::mem::size_of::<u64>();
        assert!(spare(&tl, 1, 0) >= per_lane && spare(&tl, 1, 2) >= per_lane);
        assert_eq!(spare(&tl, 1, 1), 0, "thread 1 is not pinned");
        assert_eq!(spare(&tl, 0, 0), 0, "nobody is pinned to core 0");
        // Each task is drawn twice: both reserves together stay within the
        // cap of 60 000 spans of 18 bytes, however many tasks are planned.
        tl.ingest(&started(SchedSource::Off), 0, 0, 1_000_000);
        assert!(spare(&tl, 1, 0) > 0);
        assert!(tl.heap().spare <= 60_000 * 18, "{}", tl.heap().spare);
        // With perf the slices come instead: the core lanes are not reserved.
        tl.ingest(&started(SchedSource::Perf), 0, 0, 3_000);
        assert!(tl.core_tasks.is_empty());
    }

    #[test]
    fn past_the_cap_old_spans_are_forgotten_and_no_capacity_is_left_spare() {
        let mut tl = capped(60_000, 1);
        tl.reserve(1_000);
        tl.add_tasks(0, &[task(0, 0, 0)]);
        // 40 000 running slices: a state span and a core span each, 80 000 in all.
        let slices: Vec<SchedSlice> = (0..40_000)
            .map(|i| slice(0, 0, SliceState::Running, i * 10))
            .collect();
        tl.set_slices(0, &slices);
        assert!(
            tl.summarised_before_ns() > 0,
            "the oldest spans were forgotten"
        );
        assert!(tl.len() <= 60_000 && tl.dropped() == 0, "{}", tl.len());
        let heap = tl.heap();
        assert_eq!(heap.spare, 0, "{heap:?}");
        assert_eq!(heap.spans, tl.len() * (8 + 4 + 4 + 2));
        // Task lanes reserved for tasks that never came let go once the run ends.
        let mut tl = Timeline::default();
        tl.reset(2);
        tl.reserve(10_000);
        tl.add_tasks(0, &[task(0, 0, 0), task(1, 1, 0)]);
        assert!(tl.heap().spare > 0);
        tl.ingest(
            &RunEvent::Finished {
                wall_ns: 20,
                cancelled: true,
            },
            2,
            0,
            0,
        );
        assert_eq!(tl.heap().spare, 0, "{:?}", tl.heap());
    }

    #[test]
    fn lanes_keep_the_window_raw_and_forget_what_left_it() {
        let mut tl = Timeline::default();
        tl.reset(1);
        // A task every 10 ms for 30 minutes, in batches as a worker sends them.
        let tasks: Vec<TaskRecord> = (0..180_000u32)
            .map(|i| {
                let t = u64::from(i) * 10_000_000;
                TaskRecord {
                    start_ns: t,
                    end_ns: t + 5_000_000,
                    ..task(i, 0, 0)
                }
            })
            .collect();
        for (k, batch) in tasks.chunks(256).enumerate() {
            tl.ingest(&RunEvent::Tasks(batch.to_vec()), k * 256, 0, 0);
        }
        let now = tl.end_ns();
        let window = crate::retention::WINDOW_NS;
        for lane in [&tl.threads[0], &tl.core_tasks[0][0]] {
            let kept = now - lane.summarised_before_ns();
            // Never inside the window; at most an eighth past it (what
            // waits to be forgotten), a step of spans and one check's wait.
            assert!(kept >= window, "{kept}");
            assert!(kept <= window + window / 4, "{kept}");
            assert_eq!(lane.mix(0, now).covered_ns(), 180_000 * 5_000_000);
        }
    }

    #[test]
    fn the_cap_drops_and_counts_what_does_not_fit() {
        let mut tl = capped(5, 1);
        // Two lanes per task without kernel data: two tasks fit, the third is dropped.
        tl.add_tasks(0, &[task(0, 0, 0), task(1, 0, 0), task(2, 0, 0)]);
        assert_eq!((tl.len(), tl.dropped()), (4, 1));
        // Kernel data replaces the core lanes (2 spans freed): 3 places left. A
        // running slice needs two lanes, a blocked one needs one; the second
        // running slice does not fit.
        tl.add_slices(
            0,
            &[
                slice(0, 0, SliceState::Running, 0),
                slice(0, 0, SliceState::Blocked, 5),
                slice(0, 0, SliceState::Running, 10),
            ],
        );
        assert_eq!(tl.thread_states[0].len(), 2);
        assert_eq!((tl.len(), tl.dropped()), (5, 3));
    }
}
