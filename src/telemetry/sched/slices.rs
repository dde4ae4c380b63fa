//! From one thread's switch events to its scheduler slices (pure logic).
//!
//! A switch-in on CPU C at t starts a Running slice on C that lasts until the
//! next switch-out; a switch-out marked preempted starts a Runnable slice
//! (still wanting a CPU), any other switch-out a Blocked slice (sleep, I/O,
//! lock), each lasting until the next switch-in. Times in events are absolute
//! `CLOCK_MONOTONIC` ns; slices come out relative to the run origin.

use std::collections::{HashMap, HashSet};

use super::perf::{PerfRecord, RecordKind};
use super::{OtherSlice, SchedSlice, SliceState, ThreadSched};

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
    /// When the thread exited (perf exit record), if seen.
    pub exit_ns: Option<u64>,
    /// Whether the thread still existed when the capture stopped.
    pub alive_at_end: bool,
    /// When the capture stopped.
    pub end_ns: u64,
}

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
    let limit = track.exit_ns.unwrap_or(u64::MAX);
    for ev in track.events.iter().filter(|e| e.time_ns <= limit) {
        builder.event(ev, out);
    }
    builder.finish(track.exit_ns, track.alive_at_end, track.end_ns, out)
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
            out.push(SchedSlice {
                thread: self.thread,
                core,
                state,
                start_ns: start.saturating_sub(self.origin_ns),
                end_ns: end.saturating_sub(self.origin_ns),
            });
        }
    }

    /// The worker index whose slices this builds.
    pub fn thread(&self) -> usize {
        self.thread
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
        if let Some((state, core, since)) = self.open.take() {
            self.emit(state, core, since, ev.time_ns, out);
        }
        self.open = Some(match ev.kind {
            SwitchKind::In => (SliceState::Running, ev.cpu, ev.time_ns),
            SwitchKind::Out { preempted: true } => {
                self.preempted += 1;
                (SliceState::Runnable, ev.cpu, ev.time_ns)
            }
            SwitchKind::Out { preempted: false } => {
                self.blocked += 1;
                (SliceState::Blocked, ev.cpu, ev.time_ns)
            }
        });
    }

    /// Closes the last slice at the thread's exit (or at `end_ns` while it
    /// lives) and returns its switch-out counts (preempted, blocked).
    pub fn finish(
        self,
        exit_ns: Option<u64>,
        alive_at_end: bool,
        end_ns: u64,
        out: &mut Vec<SchedSlice>,
    ) -> (u64, u64) {
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
        if self.per_thread.len() <= s.thread {
            self.per_thread.resize(s.thread + 1, ThreadSched::default());
        }
        if self.last_core.len() <= s.thread {
            self.last_core.resize(s.thread + 1, None);
        }
        let t = &mut self.per_thread[s.thread];
        let last_core = &mut self.last_core[s.thread];
        let len = s.end_ns.saturating_sub(s.start_ns);
        let switched = count_switches && last_core.is_some();
        match s.state {
            SliceState::Running => {
                t.running_ns += len;
                if last_core.is_some_and(|core| core != s.core) {
                    t.migrations += 1;
                }
                *last_core = Some(s.core);
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

    /// Sum over threads.
    pub fn sum(&self, f: impl Fn(&ThreadSched) -> u64) -> u64 {
        self.per_thread.iter().map(f).sum()
    }
}

/// The stretches in which tasks other than `own` ran, from the CPU-wide
/// switch records of a system-wide capture (any order), clipped to
/// [`origin_ns`, `end_ns`] and made relative to `origin_ns`, sorted by
/// (core, start). On each core a task runs from its switch-in to its
/// switch-out; the task already running when the capture began runs from
/// the origin to its first switch-out, the one still running at the end
/// until `end_ns`. The idle task (tid 0) is left out.
pub fn other_slices(
    wide: &[PerfRecord],
    names: &HashMap<i32, String>,
    own: &HashSet<i32>,
    origin_ns: u64,
    end_ns: u64,
) -> Vec<OtherSlice> {
    let mut records: Vec<&PerfRecord> = wide
        .iter()
        .filter(|r| matches!(r.kind, RecordKind::SwitchIn | RecordKind::SwitchOut { .. }))
        .collect();
    records.sort_by_key(|r| (r.cpu, r.time_ns));
    let mut out = Vec::new();
    let mut emit = |r: &PerfRecord, start: u64, end: u64| {
        let (start, end) = (start.max(origin_ns), end.min(end_ns));
        if r.tid > 0 && !own.contains(&r.tid) && end > start {
            out.push(OtherSlice {
                core: r.cpu as usize,
                tid: r.tid,
                pid: r.pid,
                name: names
                    .get(&r.tid)
                    .cloned()
                    .unwrap_or_else(|| format!("pid {}", r.pid)),
                start_ns: start - origin_ns,
                end_ns: end - origin_ns,
            });
        }
    };
    for core in records.chunk_by(|a, b| a.cpu == b.cpu) {
        // The task on the core and since when; the origin for the one that
        // was already running when the capture began.
        let mut running: Option<(&PerfRecord, u64)> = None;
        for (i, &r) in core.iter().enumerate() {
            match r.kind {
                RecordKind::SwitchOut { .. } => {
                    let since = match running {
                        Some((on, since)) if on.tid == r.tid => Some(since),
                        None if i == 0 => Some(origin_ns),
                        _ => None, // records lost in between: no guess
                    };
                    if let Some(since) = since {
                        emit(r, since, r.time_ns);
                    }
                    running = None;
                }
                _ => running = Some((r, r.time_ns)),
            }
        }
        if let Some((r, since)) = running {
            emit(r, since, end_ns);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(time_ns: u64, cpu: usize, kind: SwitchKind) -> SwitchEvent {
        SwitchEvent { time_ns, cpu, kind }
    }
    const IN: SwitchKind = SwitchKind::In;
    const PRE: SwitchKind = SwitchKind::Out { preempted: true };
    const BLK: SwitchKind = SwitchKind::Out { preempted: false };

    fn slice(state: SliceState, core: usize, start_ns: u64, end_ns: u64) -> SchedSlice {
        SchedSlice {
            thread: 3,
            core,
            state,
            start_ns,
            end_ns,
        }
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
            exit_ns: Some(4_200),
            alive_at_end: false,
            end_ns: 9_000,
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
            exit_ns: Some(750),
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
            exit_ns: Some(60),
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
            exit_ns: Some(50),
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
}
