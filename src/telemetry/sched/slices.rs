//! From one thread's switch events to its scheduler slices (pure logic).
//!
//! A switch-in on CPU C at t starts a Running slice on C that lasts until the
//! next switch-out; a switch-out marked preempted starts a Runnable slice
//! (still wanting a CPU), any other switch-out a Blocked slice (sleep, I/O,
//! lock), each lasting until the next switch-in. Times in events are absolute
//! `CLOCK_MONOTONIC` ns; slices come out relative to the run origin.

use std::collections::HashMap;

use super::perf::{PerfRecord, RecordKind};
use super::{OtherSlice, OtherTotal, SchedSlice, SliceState, ThreadSched};

/// What happened to the thread at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwitchKind {
    In,
    Out { preempted: bool },
}

/// One context switch of one thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwitchEvent {
    pub time_ns: u64,
    pub cpu: usize,
    pub kind: SwitchKind,
}

impl SwitchEvent {
    /// The switch a perf record tells of, if it tells of one.
    pub fn of(r: &PerfRecord) -> Option<SwitchEvent> {
        let kind = match r.kind {
            RecordKind::SwitchIn => SwitchKind::In,
            RecordKind::SwitchOut { preempted } => SwitchKind::Out { preempted },
            RecordKind::Fork | RecordKind::Exit | RecordKind::Comm { .. } => return None,
        };
        Some(SwitchEvent {
            time_ns: r.time_ns,
            cpu: r.cpu as usize,
            kind,
        })
    }
}

/// Everything known about one worker thread's life, in absolute ns.
#[derive(Clone, Debug, Default)]
pub struct ThreadTrack {
    /// When the thread was created (perf fork record), if seen: it is
    /// Runnable from then until its first switch-in.
    pub fork_ns: Option<u64>,
    /// When the worker registered itself (it was running at that instant).
    pub registered_ns: Option<u64>,
    /// Switch events in time order.
    pub events: Vec<SwitchEvent>,
    /// When the thread exited and on which CPU (perf exit record), if seen.
    pub exit: Option<(u64, usize)>,
    /// Its state now, for a thread still alive that never switched (see [`Quiet`]).
    pub quiet: Quiet,
    /// Whether the thread still existed when the capture stopped.
    pub alive_at_end: bool,
    /// When the capture stopped.
    pub end_ns: u64,
}

impl ThreadTrack {
    /// Takes one of the thread's perf records (in any order: `events` are
    /// sorted before [`build_thread`]).
    pub fn take(&mut self, r: &PerfRecord) {
        if let Some(switch) = SwitchEvent::of(r) {
            self.events.push(switch);
        } else if r.kind == RecordKind::Fork {
            self.fork_ns = Some(self.fork_ns.map_or(r.time_ns, |f| f.min(r.time_ns)));
        } else if r.kind == RecordKind::Exit && self.exit.is_none_or(|(e, _)| r.time_ns > e) {
            self.exit = Some((r.time_ns, r.cpu as usize));
        }
    }
}

/// How a thread still alive at the end spent a capture in which it never
/// switched: one state on one core all along, since any change would have
/// been a switch record. Its state at the end, as /proc tells it
/// ([`super::procfs::still_state`]); `None`: not known. (One that exited
/// was running: [`SliceBuilder::finish`] knows that from the exit.)
pub type Quiet = Option<(SliceState, usize)>;

/// Builds the slices of worker `thread` from its track, appending them to
/// `out`, and returns its switch-out counts (preempted, blocked).
pub fn build_thread(
    thread: usize,
    track: &ThreadTrack,
    origin_ns: u64,
    out: &mut Vec<SchedSlice>,
) -> (u64, u64) {
    let mut builder = SliceBuilder::new(thread, origin_ns, track.registered_ns);
    builder.fork_ns = track.fork_ns;
    let limit = track.exit.map_or(u64::MAX, |(ns, _)| ns);
    for ev in track.events.iter().filter(|e| e.time_ns <= limit) {
        builder.event(ev, out);
    }
    builder.finish(
        track.exit,
        track.alive_at_end,
        track.end_ns,
        track.quiet,
        out,
    )
}

/// One thread's slices, built event by event: the whole run at its end, or
/// live as the events stream in (in time order).
#[derive(Clone, Debug)]
pub struct SliceBuilder {
    thread: usize,
    origin_ns: u64,
    /// When the thread was created, if seen: Runnable from then to its first run.
    pub fork_ns: Option<u64>,
    registered_ns: Option<u64>,
    /// The open slice: (state, core, since).
    open: Option<(SliceState, usize, u64)>,
    /// When the latest switch took effect.
    last_ns: u64,
    first: bool,
    preempted: u64,
    blocked: u64,
}

impl SliceBuilder {
    pub fn new(thread: usize, origin_ns: u64, registered_ns: Option<u64>) -> SliceBuilder {
        SliceBuilder {
            thread,
            origin_ns,
            fork_ns: None,
            registered_ns,
            open: None,
            last_ns: 0,
            first: true,
            preempted: 0,
            blocked: 0,
        }
    }

    fn emit(
        &self,
        state: SliceState,
        core: usize,
        start: u64,
        end: u64,
        out: &mut Vec<SchedSlice>,
    ) {
        if end > start {
            out.push(SchedSlice::new(
                self.thread,
                core,
                state,
                start.saturating_sub(self.origin_ns),
                end.saturating_sub(self.origin_ns),
            ));
        }
    }

    /// The worker index whose slices this builds.
    pub fn thread(&self) -> usize {
        self.thread
    }

    /// Whether any switch of the thread was taken.
    pub fn switched(&self) -> bool {
        !self.first
    }

    /// Takes the next switch (in time order); appends the slice it closed.
    pub fn event(&mut self, ev: &SwitchEvent, out: &mut Vec<SchedSlice>) {
        if self.first {
            self.first = false;
            match ev.kind {
                // A new thread waits on a run queue from its creation to its first run.
                SwitchKind::In => {
                    if let Some(fork) = self.fork_ns {
                        self.emit(SliceState::Runnable, ev.cpu, fork, ev.time_ns, out);
                    }
                }
                // Its switch-in was not seen: it was running since we knew of it.
                SwitchKind::Out { .. } => {
                    if let Some(since) = self.registered_ns.or(self.fork_ns) {
                        self.open = Some((SliceState::Running, ev.cpu, since));
                    }
                }
            }
        }
        // A record that came late to a live capture may be older than the
        // switch before it: it takes effect at that switch, so that no slice
        // overlaps those already sent (in time order, nothing changes).
        let at = ev.time_ns.max(self.last_ns);
        self.last_ns = at;
        if let Some((state, core, since)) = self.open.take() {
            self.emit(state, core, since, at, out);
        }
        self.open = Some(match ev.kind {
            SwitchKind::In => (SliceState::Running, ev.cpu, at),
            SwitchKind::Out { preempted: true } => {
                self.preempted += 1;
                (SliceState::Runnable, ev.cpu, at)
            }
            SwitchKind::Out { preempted: false } => {
                self.blocked += 1;
                (SliceState::Blocked, ev.cpu, at)
            }
        });
    }

    /// Closes the last slice at the thread's exit (when, and on which CPU),
    /// or at `end_ns` while it lives, and returns its switch-out counts
    /// (preempted, blocked). A thread that never switched gets one slice
    /// from when it was known: running until its exit, else in its `quiet` state.
    pub fn finish(
        self,
        exit: Option<(u64, usize)>,
        alive_at_end: bool,
        end_ns: u64,
        quiet: Quiet,
        out: &mut Vec<SchedSlice>,
    ) -> (u64, u64) {
        let exit_ns = exit.map(|(ns, _)| ns);
        if !self.switched() {
            // No switch while recorded: one state from when we knew of it,
            // running until an exit (the last thing a running thread does).
            let still = match exit {
                Some((_, cpu)) => Some((SliceState::Running, cpu)),
                None => quiet,
            };
            if let (Some((state, core)), Some(since)) = (still, self.registered_ns.or(self.fork_ns))
            {
                self.emit(state, core, since, exit_ns.unwrap_or(end_ns), out);
            }
            return (0, 0);
        }
        if let Some((state, core, since)) = self.open {
            match exit_ns {
                // Exiting is the last thing a running thread does; a switch-out
                // just before exit means its switch-in was lost: emit nothing.
                Some(exit) if state == SliceState::Running => {
                    self.emit(state, core, since, exit, out);
                }
                Some(_) => {}
                None if alive_at_end || state == SliceState::Running => {
                    self.emit(state, core, since, end_ns, out);
                }
                // Gone without an exit record after a switch-out: the final
                // switch-out of an exiting thread is not recorded, so drop it.
                None => {}
            }
        }
        (self.preempted, self.blocked)
    }
}

/// Adds the time and migration totals of `slices` (each thread's in start
/// order) into `per_thread`, which must be long enough for every thread index.
pub fn add_totals(slices: &[SchedSlice], per_thread: &mut [ThreadSched]) {
    let mut totals = Totals {
        per_thread: per_thread.to_vec(),
        last_core: Vec::new(),
    };
    for s in slices {
        totals.add(s, false);
    }
    per_thread.clone_from_slice(&totals.per_thread[..per_thread.len()]);
}

/// Groups `slices` by thread in place, each thread's in the order given: a
/// live capture's slices (threads interleaved, each in start order) in a
/// report's order, without a sort and without a second copy of them (at
/// the end of a long run that copy's fresh pages cost more than the moves).
/// Where they moved, returns where each went: slice `i` is now at `moved[i]`.
pub fn group_by_thread(slices: &mut [SchedSlice]) -> Option<Vec<u32>> {
    if slices.is_sorted_by_key(|s| s.thread) {
        return None;
    }
    let threads = slices.iter().map(|s| s.thread() + 1).max().unwrap_or(0);
    // Each thread's first place in the result, then its next one.
    let mut next = vec![0u32; threads];
    for s in slices.iter() {
        next[s.thread()] += 1;
    }
    let mut first = 0;
    for n in &mut next {
        (first, *n) = (first + *n, first);
    }
    let moved: Vec<u32> = slices
        .iter()
        .map(|s| {
            next[s.thread()] += 1;
            next[s.thread()] - 1
        })
        .collect();
    // Each swap puts one slice in its place, following the cycles.
    let mut to = moved.clone();
    for i in 0..slices.len() {
        while to[i] as usize != i {
            let j = to[i] as usize;
            slices.swap(i, j);
            to.swap(i, j);
        }
    }
    Some(moved)
}

/// Per-thread totals kept as slices arrive, threads interleaved, each
/// thread's slices in start order (what a live capture streams).
#[derive(Clone, Debug, Default)]
pub struct Totals {
    pub per_thread: Vec<ThreadSched>,
    /// The core of each thread's latest running slice.
    last_core: Vec<Option<usize>>,
}

impl Totals {
    /// Adds one slice. With `count_switches`, a runnable or blocked slice
    /// after the thread has run counts as one switch-out of that kind (when
    /// the switch records themselves are not at hand).
    pub fn add(&mut self, s: &SchedSlice, count_switches: bool) {
        if self.per_thread.len() <= s.thread() {
            self.per_thread
                .resize(s.thread() + 1, ThreadSched::default());
        }
        if self.last_core.len() <= s.thread() {
            self.last_core.resize(s.thread() + 1, None);
        }
        let t = &mut self.per_thread[s.thread()];
        let last_core = &mut self.last_core[s.thread()];
        let len = s.end_ns.saturating_sub(s.start_ns);
        let switched = count_switches && last_core.is_some();
        match s.state {
            SliceState::Running => {
                t.running_ns += len;
                if last_core.is_some_and(|core| core != s.core()) {
                    t.migrations += 1;
                }
                *last_core = Some(s.core());
            }
            SliceState::Runnable => {
                t.runnable_ns += len;
                t.switches_out_preempted += u64::from(switched);
            }
            SliceState::Blocked => {
                t.blocked_ns += len;
                t.switches_out_blocked += u64::from(switched);
            }
        }
    }

    /// The core of `thread`'s latest running slice, if it ran.
    pub fn last_core(&self, thread: usize) -> Option<usize> {
        self.last_core.get(thread).copied().flatten()
    }

    /// Sum over threads.
    pub fn sum(&self, f: impl Fn(&ThreadSched) -> u64) -> u64 {
        self.per_thread.iter().map(f).sum()
    }
}

/// How long a task stays on a core, from its switch-in to its switch-out
/// (absolute ns), before anything is known of whose it is.
#[derive(Clone, Copy, Debug)]
struct Run {
    core: u32,
    tid: i32,
    pid: i32,
    start_ns: u64,
    end_ns: u64,
}

/// A core's task now, and since when (`None` before its first record).
#[derive(Clone, Copy, Debug, Default)]
struct OnCore {
    running: Option<(PerfRecord, u64)>,
    seen: bool,
}

/// A system-wide capture's other tasks, built as the CPU-wide switch
/// records arrive: on each core a task runs from its switch-in to its
/// switch-out; the task already running when the capture began runs from
/// the origin to its first switch-out, the one still running at the end
/// until the end. The idle task (tid 0) is left out. Each finished stretch is kept
/// until it is old or past the budget ([`Others::forget`]), then only its
/// time is, per core and program.
#[derive(Debug, Default)]
pub struct Others {
    cores: HashMap<u32, OnCore>,
    runs: Vec<Run>,
    /// Time of the forgotten stretches by (core, name).
    before: HashMap<(usize, String), u64>,
}

/// Whose a stretch is can be told once its task registered, which a
/// worker does within moments of starting: stretches younger than this
/// are not forgotten yet (as [`super::live`] keeps unclaimed records).
const SETTLE_NS: u64 = 1_000_000_000;

/// The fewest stretches kept, however small the budget.
const MIN_RUNS: usize = 256;

impl Others {
    /// Takes records read from the CPU-wide rings: in time order per CPU,
    /// as each ring holds them, from one read to the next (a batch may be in
    /// any order: it is sorted per CPU first).
    pub fn feed(&mut self, records: &[PerfRecord]) {
        let mut records: Vec<&PerfRecord> = records
            .iter()
            .filter(|r| matches!(r.kind, RecordKind::SwitchIn | RecordKind::SwitchOut { .. }))
            .collect();
        records.sort_by_key(|r| (r.cpu, r.time_ns));
        for r in records {
            let core = self.cores.entry(r.cpu).or_default();
            let first = !std::mem::replace(&mut core.seen, true);
            let running = core.running.take();
            if !matches!(r.kind, RecordKind::SwitchOut { .. }) {
                core.running = Some((*r, r.time_ns));
                continue;
            }
            let since = match running {
                Some((on, since)) if on.tid == r.tid => Some(since),
                // Running since before the capture: from the origin (clipped later).
                None if first => Some(0),
                _ => None, // records lost in between: no guess
            };
            if let Some(since) = since {
                self.push(r, since, r.time_ns);
            }
        }
    }

    fn push(&mut self, r: &PerfRecord, start_ns: u64, end_ns: u64) {
        if r.tid > 0 {
            self.runs.push(Run {
                core: r.cpu,
                tid: r.tid,
                pid: r.pid,
                start_ns,
                end_ns,
            });
        }
    }

    /// Bytes of stretches kept.
    pub fn bytes(&self) -> usize {
        std::mem::size_of_val(self.runs.as_slice())
    }

    /// Clipped to [`origin_ns`, `end_ns`], relative to `origin_ns`, if another's.
    fn slice(
        run: &Run,
        origin_ns: u64,
        end_ns: u64,
        names: &HashMap<i32, String>,
        own: &dyn Fn(i32) -> bool,
    ) -> Option<OtherSlice> {
        let (start, end) = (run.start_ns.max(origin_ns), run.end_ns.min(end_ns));
        (!own(run.tid) && end > start).then(|| OtherSlice {
            core: run.core as usize,
            tid: run.tid,
            pid: run.pid,
            name: names
                .get(&run.tid)
                .cloned()
                .unwrap_or_else(|| format!("pid {}", run.pid)),
            start_ns: start - origin_ns,
            end_ns: end - origin_ns,
        })
    }

    /// Forgets stretches from the front, as [`crate::retention::trim`] does
    /// (those that ended over `limits.window_ns` before `now_ns`, checked an
    /// eighth of the way in; the oldest quarter past `limits.bytes`), none
    /// younger than [`SETTLE_NS`]; keeps their time per core and program.
    pub fn forget(
        &mut self,
        now_ns: u64,
        limits: super::Limits,
        origin_ns: u64,
        names: &HashMap<i32, String>,
        own: &dyn Fn(i32) -> bool,
    ) {
        let most = (limits.bytes / std::mem::size_of::<Run>()).max(MIN_RUNS);
        let settled = now_ns.saturating_sub(SETTLE_NS);
        let horizon = now_ns.saturating_sub(limits.window_ns).min(settled);
        let probe = self.runs.len() / 8;
        let old = probe > 0 && self.runs[probe].end_ns < horizon;
        let over = self.runs.len() > most;
        if !old && !over {
            return;
        }
        let quarter = if over { self.runs.len() / 4 } else { 0 };
        let n = self
            .runs
            .iter()
            .enumerate()
            .take_while(|&(i, r)| r.end_ns < horizon || (i < quarter && r.end_ns < settled))
            .count();
        for run in self.runs.drain(..n) {
            if let Some(o) = Self::slice(&run, origin_ns, u64::MAX, names, own) {
                *self.before.entry((o.core, o.name)).or_default() += o.end_ns - o.start_ns;
            }
        }
    }

    /// Ends the stretches still open at `end_ns`; returns the other tasks'
    /// stretches kept, clipped to [`origin_ns`, `end_ns`], made relative to
    /// `origin_ns` and sorted by (core, start), and the time of those forgotten.
    pub fn finish(
        mut self,
        origin_ns: u64,
        end_ns: u64,
        names: &HashMap<i32, String>,
        own: &dyn Fn(i32) -> bool,
    ) -> (Vec<OtherSlice>, Vec<OtherTotal>) {
        let mut open: Vec<_> = self.cores.values().filter_map(|c| c.running).collect();
        open.sort_by_key(|(r, _)| r.cpu);
        for (r, since) in open {
            self.push(&r, since, end_ns);
        }
        let mut kept: Vec<OtherSlice> = self
            .runs
            .iter()
            .filter_map(|run| Self::slice(run, origin_ns, end_ns, names, own))
            .collect();
        kept.sort_by_key(|o| (o.core, o.start_ns));
        let mut before: Vec<OtherTotal> = self
            .before
            .into_iter()
            .map(|((core, name), ns)| OtherTotal { core, name, ns })
            .collect();
        before.sort_by(|a, b| (a.core, &a.name).cmp(&(b.core, &b.name)));
        (kept, before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn slices_are_grouped_by_thread_each_in_the_order_given() {
        let at = |thread, start_ns| {
            SchedSlice::on_core0(thread, SliceState::Running, start_ns, start_ns + 1)
        };
        let mixed = vec![at(2, 5), at(0, 1), at(2, 3), at(0, 9), at(1, 4), at(0, 2)];
        let mut grouped = mixed.clone();
        let moved = group_by_thread(&mut grouped).expect("they move");
        let starts: Vec<_> = grouped.iter().map(|s| (s.thread, s.start_ns)).collect();
        assert_eq!(starts, [(0, 1), (0, 9), (0, 2), (1, 4), (2, 5), (2, 3)]);
        for (i, s) in mixed.iter().enumerate() {
            assert_eq!(
                grouped[moved[i] as usize], *s,
                "slice {i} went to {}",
                moved[i]
            );
        }
        let mut already = vec![at(0, 2), at(0, 1), at(3, 0)];
        assert_eq!(group_by_thread(&mut already), None);
        assert_eq!(already, [at(0, 2), at(0, 1), at(3, 0)]);
        assert_eq!(group_by_thread(&mut []), None);
    }

    fn ev(time_ns: u64, cpu: usize, kind: SwitchKind) -> SwitchEvent {
        SwitchEvent { time_ns, cpu, kind }
    }
    /// All of a capture's other stretches at once (see [`Others`]).
    fn other_slices(
        wide: &[PerfRecord],
        names: &HashMap<i32, String>,
        own: &HashSet<i32>,
        origin_ns: u64,
        end_ns: u64,
    ) -> Vec<OtherSlice> {
        let mut others = Others::default();
        others.feed(wide);
        others
            .finish(origin_ns, end_ns, names, &|tid| own.contains(&tid))
            .0
    }

    const IN: SwitchKind = SwitchKind::In;
    const PRE: SwitchKind = SwitchKind::Out { preempted: true };
    const BLK: SwitchKind = SwitchKind::Out { preempted: false };

    #[test]
    fn a_slice_takes_24_bytes_and_gives_back_its_thread_and_core() {
        assert_eq!(std::mem::size_of::<SchedSlice>(), 24);
        let s = SchedSlice::new(70_000, 8_191, SliceState::Blocked, 5, 9);
        assert_eq!((s.thread(), s.core()), (70_000, 8_191));
    }

    fn slice(state: SliceState, core: usize, start_ns: u64, end_ns: u64) -> SchedSlice {
        SchedSlice::new(3, core, state, start_ns, end_ns)
    }

    fn build(track: &ThreadTrack, origin: u64) -> (Vec<SchedSlice>, (u64, u64)) {
        let mut out = Vec::new();
        let counts = build_thread(3, track, origin, &mut out);
        (out, counts)
    }

    #[test]
    fn full_life_with_fork_and_exit() {
        let track = ThreadTrack {
            fork_ns: Some(1_000),
            registered_ns: Some(1_600),
            events: vec![
                ev(1_500, 0, IN),
                ev(2_000, 0, PRE),
                ev(2_500, 1, IN),
                ev(3_000, 1, BLK),
                ev(4_000, 1, IN),
            ],
            exit: Some((4_200, 1)),
            alive_at_end: false,
            end_ns: 9_000,
            ..Default::default()
        };
        let (slices, counts) = build(&track, 1_000);
        use SliceState::*;
        assert_eq!(
            slices,
            vec![
                slice(Runnable, 0, 0, 500),
                slice(Running, 0, 500, 1_000),
                slice(Runnable, 0, 1_000, 1_500),
                slice(Running, 1, 1_500, 2_000),
                slice(Blocked, 1, 2_000, 3_000),
                slice(Running, 1, 3_000, 3_200),
            ]
        );
        assert_eq!(counts, (1, 1));
        let mut per = vec![ThreadSched::default(); 4];
        add_totals(&slices, &mut per);
        assert_eq!(per[3].running_ns, 500 + 500 + 200);
        assert_eq!(per[3].runnable_ns, 500 + 500);
        assert_eq!(per[3].blocked_ns, 1_000);
        assert_eq!(per[3].migrations, 1);
    }

    #[test]
    fn first_event_switch_out_runs_from_registration() {
        let track = ThreadTrack {
            registered_ns: Some(100),
            events: vec![ev(300, 1, BLK), ev(700, 1, IN)],
            exit: Some((750, 1)),
            ..Default::default()
        };
        let (slices, counts) = build(&track, 0);
        use SliceState::*;
        assert_eq!(
            slices,
            vec![
                slice(Running, 1, 100, 300),
                slice(Blocked, 1, 300, 700),
                slice(Running, 1, 700, 750),
            ]
        );
        assert_eq!(counts, (0, 1));
    }

    /// A thread that never switched while recorded (attached to a busy
    /// loop alone on its core, say) kept one state all along: running until
    /// its exit, or what /proc says at the end.
    #[test]
    fn a_thread_that_never_switched_keeps_one_state_all_along() {
        use SliceState::*;
        let exited = ThreadTrack {
            registered_ns: Some(100),
            exit: Some((900, 2)),
            ..Default::default()
        };
        assert_eq!(build(&exited, 0).0, vec![slice(Running, 2, 100, 900)]);
        let asleep = ThreadTrack {
            registered_ns: Some(100),
            alive_at_end: true,
            end_ns: 1_000,
            quiet: Some((Blocked, 1)),
            ..Default::default()
        };
        assert_eq!(build(&asleep, 0).0, vec![slice(Blocked, 1, 100, 1_000)]);
        let unknown = ThreadTrack {
            quiet: None,
            ..asleep
        };
        assert_eq!(build(&unknown, 0).0, vec![]);
    }

    #[test]
    fn trailing_switch_out_of_dead_thread_is_dropped() {
        let track = ThreadTrack {
            events: vec![ev(10, 0, IN), ev(20, 0, BLK)],
            alive_at_end: false,
            end_ns: 1_000,
            ..Default::default()
        };
        let (slices, _) = build(&track, 0);
        assert_eq!(slices, vec![slice(SliceState::Running, 0, 10, 20)]);
    }

    #[test]
    fn open_slices_close_at_end_when_alive_or_running() {
        let alive = ThreadTrack {
            events: vec![ev(10, 0, IN), ev(20, 0, BLK)],
            alive_at_end: true,
            end_ns: 1_000,
            ..Default::default()
        };
        let (slices, _) = build(&alive, 0);
        assert_eq!(slices[1], slice(SliceState::Blocked, 0, 20, 1_000));

        let running_lost_exit = ThreadTrack {
            events: vec![ev(10, 0, IN)],
            alive_at_end: false,
            end_ns: 1_000,
            ..Default::default()
        };
        let (slices, _) = build(&running_lost_exit, 0);
        assert_eq!(slices, vec![slice(SliceState::Running, 0, 10, 1_000)]);
    }

    #[test]
    fn a_lost_record_stretches_the_last_known_state_and_slices_never_overlap() {
        // Two switch-outs in a row (the switch-in between was lost) and two
        // switch-ins in a row (the switch-out between was lost). Where the
        // lost switch fell is unknown, so the state before it lasts until
        // the next record: 20..30 reads Runnable though the thread ran for
        // part of it, and 40..50 reads Running though it was off the CPU for
        // part of it. The error is bounded by that gap; slices stay
        // contiguous and never overlap. (The capture reports lost records.)
        let track = ThreadTrack {
            events: vec![
                ev(10, 0, IN),
                ev(20, 0, PRE),
                ev(30, 0, BLK),
                ev(40, 1, IN),
                ev(50, 1, IN),
            ],
            exit: Some((60, 1)),
            ..Default::default()
        };
        let (slices, counts) = build(&track, 0);
        use SliceState::*;
        assert_eq!(
            slices,
            vec![
                slice(Running, 0, 10, 20),
                slice(Runnable, 0, 20, 30),
                slice(Blocked, 0, 30, 40),
                slice(Running, 1, 40, 50),
                slice(Running, 1, 50, 60),
            ]
        );
        assert_eq!(counts, (1, 1));
        for w in slices.windows(2) {
            assert!(w[0].end_ns <= w[1].start_ns);
        }
        let mut per = vec![ThreadSched::default(); 4];
        add_totals(&slices, &mut per);
        // 10..20 and 50..60 are known; 40..50 is the stretched guess.
        assert_eq!(per[3].running_ns, 10 + 10 + 10);
    }

    #[test]
    fn events_after_exit_and_before_origin() {
        let track = ThreadTrack {
            events: vec![ev(10, 0, IN), ev(90, 0, BLK)],
            exit: Some((50, 0)),
            ..Default::default()
        };
        let (slices, counts) = build(&track, 30);
        // Clipped at the origin (saturating), closed at exit, later event ignored.
        assert_eq!(slices, vec![slice(SliceState::Running, 0, 0, 20)]);
        assert_eq!(counts, (0, 0));
    }

    #[test]
    fn migrations_count_core_changes_between_running_slices_only() {
        use SliceState::*;
        let mut s = vec![
            slice(Running, 0, 0, 10),
            slice(Runnable, 1, 10, 20),
            slice(Running, 0, 20, 30),
            slice(Blocked, 0, 30, 40),
            slice(Running, 1, 40, 50),
            slice(Running, 0, 50, 60),
        ];
        s.push(SchedSlice {
            thread: 4,
            ..slice(Running, 1, 60, 70)
        });
        let mut per = vec![ThreadSched::default(); 5];
        add_totals(&s, &mut per);
        assert_eq!(per[3].migrations, 2);
        assert_eq!(per[4].migrations, 0);
        assert_eq!(per[3].running_ns, 40);
        assert_eq!(per[4].running_ns, 10);
    }

    #[test]
    fn other_slices_name_who_took_each_core() {
        let rec = |pid, tid, cpu, time_ns, out: bool| PerfRecord {
            pid,
            tid,
            cpu,
            time_ns,
            kind: if out {
                RecordKind::SwitchOut { preempted: true }
            } else {
                RecordKind::SwitchIn
            },
        };
        // Core 1: "busy" (tid 50) runs from before the origin (1000) until
        // 1500, then the run's worker (7), then idle (0), then busy again
        // until after the end (3000). Core 0: a kworker 2000..2100, given
        // out of order (the rings are read one by one).
        let wide = vec![
            rec(40, 41, 0, 2100, true),
            rec(50, 50, 1, 1500, true),
            rec(1, 7, 1, 1500, false),
            rec(1, 7, 1, 1800, true),
            rec(0, 0, 1, 1800, false),
            rec(0, 0, 1, 1900, true),
            rec(50, 50, 1, 1900, false),
            rec(40, 41, 0, 2000, false),
        ];
        let names = HashMap::from([(50, "busy".to_owned()), (7, "worker".to_owned())]);
        let own = HashSet::from([7]);
        let got = other_slices(&wide, &names, &own, 1000, 3000);
        let o = |core, tid, pid, name: &str, start_ns, end_ns| OtherSlice {
            core,
            tid,
            pid,
            name: name.to_owned(),
            start_ns,
            end_ns,
        };
        assert_eq!(
            got,
            vec![
                o(0, 41, 40, "pid 40", 1000, 1100),
                o(1, 50, 50, "busy", 0, 500),
                o(1, 50, 50, "busy", 900, 2000),
            ]
        );
    }

    /// A system-wide capture of a long run keeps a bounded number of other
    /// tasks' stretches: those it forgets (past the window or the budget)
    /// live on as time per core and program, which with the kept ones is
    /// exactly the time of the capture that forgot nothing. The run's own
    /// thread and the idle task are never counted, kept or forgotten.
    #[test]
    fn other_tasks_forgotten_past_the_limits_keep_exact_totals_per_program() {
        use crate::telemetry::sched::{Limits, SchedReport, SchedSource};
        const MS: u64 = 1_000_000;
        // 60 s on two cores: every 10 ms the next of tids 0 (idle), 7 (the
        // run's), 41 and 42 (one program), 50 takes the core, the core's
        // first task running since before the origin (1 s in).
        let tids = [(0, 0), (1, 7), (40, 41), (40, 42), (50, 50)];
        let mut drains = Vec::new();
        for step in 0..6_000u64 {
            let t = 500 * MS + step * 10 * MS;
            let mut batch = Vec::new();
            for cpu in 0..2u32 {
                let (pid, tid) = tids[(step as usize + cpu as usize) % tids.len()];
                let (next_pid, next_tid) = tids[(step as usize + cpu as usize + 1) % tids.len()];
                let rec = |pid, tid, kind| PerfRecord {
                    pid,
                    tid,
                    cpu,
                    time_ns: t,
                    kind,
                };
                batch.push(rec(pid, tid, RecordKind::SwitchOut { preempted: true }));
                batch.push(rec(next_pid, next_tid, RecordKind::SwitchIn));
            }
            drains.push((t, batch));
        }
        let names = HashMap::from([
            (41, "prog".to_owned()),
            (42, "prog".to_owned()),
            (50, "other".to_owned()),
        ]);
        let own = |tid| tid == 7;
        let (origin, end) = (1_000 * MS, 60_500 * MS);
        let everything = {
            let mut all = Others::default();
            for (_, batch) in &drains {
                all.feed(batch);
            }
            all.finish(origin, end, &names, &own)
        };
        // A budget of nothing keeps MIN_RUNS (and a drain's two more); a
        // window of 5 s its 1000 stretches, and up to an eighth more before
        // the check an eighth of the way in fires.
        for (limits, bound) in [
            (
                Limits {
                    bytes: 0,
                    window_ns: u64::MAX,
                },
                MIN_RUNS + 2,
            ),
            (
                Limits {
                    bytes: usize::MAX,
                    window_ns: 5_000 * MS,
                },
                1_000 * 8 / 7 + 2,
            ),
        ] {
            let mut others = Others::default();
            let mut most = 0;
            for (now, batch) in &drains {
                others.feed(batch);
                others.forget(*now, limits, origin, &names, &own);
                most = most.max(others.runs.len());
            }
            eprintln!(
                "{limits:?}: at most {most} of {} stretches kept",
                2 * drains.len()
            );
            assert!(most <= bound, "{most} > {bound}");
            let (kept, before) = others.finish(origin, end, &names, &own);
            assert!(!before.is_empty());
            let report = |others, others_before| SchedReport {
                others,
                others_before,
                ..SchedReport::of_slices(SchedSource::Perf, Vec::new(), Vec::new())
            };
            let whole = report(everything.0.clone(), Vec::new());
            let bounded = report(kept, before);
            for cores in [vec![0], vec![1], vec![0, 1]] {
                assert_eq!(bounded.others_on(&cores), whole.others_on(&cores));
            }
            let mut on_both = bounded.others_on(&[0, 1]);
            on_both.sort();
            // 59.5 s on two cores, a fifth each for 50, 41 and 42.
            assert_eq!(
                on_both,
                vec![
                    ("other".to_owned(), 23_800 * MS),
                    ("prog".to_owned(), 47_600 * MS)
                ]
            );
        }
    }
}
