//! Slices built while the run goes on, from the perf records as the drain
//! thread reads them, so the app shows the kernel's scheduling live. They
//! are also the report's, so that nothing is built twice.
//!
//! Records of different CPUs come from different rings, so a record stamped
//! just before a ring was read may land just after: the builder stays
//! [`LAG_NS`] behind the moment the rings' read began and takes records in
//! time order. A record older than what the builder already passed is
//! noted as late (the report then says so); it takes effect at its
//! thread's previous switch, so no slice overlaps those already sent.

use std::collections::HashMap;

use super::perf::{Kept, RecordKind};
use super::slices::{Quiet, SliceBuilder, SwitchEvent, Totals};
use super::{Registry, SchedSlice, ThreadSched, TidMap};

/// Where live slices go (the run's event channel).
pub type Sink = Box<dyn FnMut(Vec<SchedSlice>) + Send>;

/// How far behind the start of the rings' read the builder stays.
pub const LAG_NS: u64 = 2_000_000;
/// Records of a thread that has not registered are kept this long, then dropped
/// (the run's controller thread, which is not a worker, never registers).
const UNCLAIMED_NS: u64 = 1_000_000_000;

pub struct LiveSlices {
    sink: Sink,
    origin_ns: u64,
    /// Records not yet taken: too recent, or of a thread not yet registered
    /// (16 bytes each: sorting and keeping them moves less than full records).
    pending: Vec<Kept>,
    /// One builder per registered worker, by thread id.
    builders: TidMap<SliceBuilder>,
    /// Registrations already seen.
    seen: usize,
    /// Totals of every slice sent, and each finished builder's switch-outs:
    /// exact figures for a capture that keeps no records of its own.
    totals: Totals,
    switches: HashMap<usize, (u64, u64)>,
    /// Records up to this time have been taken…
    passed_ns: u64,
    /// …and one of a worker's came in after that: its slices may be wrong.
    late: bool,
}

impl LiveSlices {
    pub fn new(origin_ns: u64, sink: Sink) -> LiveSlices {
        LiveSlices {
            sink,
            origin_ns,
            pending: Vec::new(),
            builders: TidMap::default(),
            seen: 0,
            totals: Totals::default(),
            switches: HashMap::new(),
            passed_ns: 0,
            late: false,
        }
    }

    /// Sends what is left once the capture stopped: `records` and every pending one,
    /// then each thread's last slice, closed at its exit or at `end_ns`
    /// (alive: `alive(tid)`), as the complete report does. Returns the
    /// per-thread totals of every slice this builder sent, and whether a
    /// worker's record came in after the builder had passed its time, so
    /// that the slices sent may be wrong.
    pub fn finish(
        mut self,
        records: &[Kept],
        registry: &Registry,
        end_ns: u64,
        alive: impl Fn(i32) -> bool,
        quiet: impl Fn(i32) -> Quiet,
    ) -> (Vec<ThreadSched>, bool) {
        self.feed(records, registry, u64::MAX);
        let mut out = Vec::new();
        for (tid, builder) in std::mem::take(&mut self.builders) {
            let thread = builder.thread();
            let alive = alive(tid);
            // Read only where it is needed: /proc, maybe a 20 ms wait.
            let still = if alive && !builder.switched() {
                quiet(tid)
            } else {
                None
            };
            let counts = builder.finish(None, alive, end_ns, still, &mut out);
            Self::count(&mut self.switches, thread, counts);
        }
        self.send(out);
        let mut per_thread = self.totals.per_thread;
        for (thread, (preempted, blocked)) in self.switches {
            if per_thread.len() <= thread {
                per_thread.resize(thread + 1, ThreadSched::default());
            }
            per_thread[thread].switches_out_preempted += preempted;
            per_thread[thread].switches_out_blocked += blocked;
        }
        (per_thread, self.late)
    }

    fn count(switches: &mut HashMap<usize, (u64, u64)>, thread: usize, counts: (u64, u64)) {
        let c = switches.entry(thread).or_default();
        c.0 += counts.0;
        c.1 += counts.1;
    }

    fn send(&mut self, out: Vec<SchedSlice>) {
        if out.is_empty() {
            return;
        }
        // Each builder emits its thread's slices in start order, as the totals need.
        for s in &out {
            self.totals.add(s, false);
        }
        (self.sink)(out);
    }

    /// Takes newly read records; sends the slices they close, up to
    /// `read_ns − LAG_NS`, where `read_ns` is when the read of the rings began.
    pub fn feed(&mut self, records: &[Kept], registry: &Registry, read_ns: u64) {
        // Late: older than what the builder of a thread known before these
        // records passed. A thread registered now has sent no slice yet.
        let passed = self.passed_ns;
        self.late |= records
            .iter()
            .any(|r| r.time_ns <= passed && self.builders.contains_key(&r.tid));
        for r in registry.since(&mut self.seen) {
            let builder = SliceBuilder::new(r.index, self.origin_ns, Some(r.registered_ns));
            self.builders.insert(r.tid, builder);
        }
        self.pending.extend_from_slice(records);
        self.pending.sort_by_key(|r| r.time_ns);
        let watermark = read_ns.saturating_sub(LAG_NS);
        self.passed_ns = self.passed_ns.max(watermark);
        // In time order, the records old enough to take come first.
        let old_enough = self.pending.partition_point(|r| r.time_ns <= watermark);
        let mut out = Vec::with_capacity(old_enough);
        let mut unclaimed = Vec::new();
        for kept in &self.pending[..old_enough] {
            let Some(builder) = self.builders.get_mut(&kept.tid) else {
                if kept.time_ns + UNCLAIMED_NS > watermark {
                    unclaimed.push(*kept); // its thread may register yet
                }
                continue;
            };
            let r = kept.record();
            if let Some(switch) = SwitchEvent::of(&r) {
                builder.event(&switch, &mut out);
                continue;
            }
            match r.kind {
                RecordKind::Fork => {
                    builder.fork_ns = Some(builder.fork_ns.map_or(r.time_ns, |f| f.min(r.time_ns)));
                }
                RecordKind::Exit => {
                    if let Some(builder) = self.builders.remove(&r.tid) {
                        let thread = builder.thread();
                        let exit = Some((r.time_ns, r.cpu as usize));
                        let counts = builder.finish(exit, false, r.time_ns, None, &mut out);
                        Self::count(&mut self.switches, thread, counts);
                    }
                }
                RecordKind::SwitchIn | RecordKind::SwitchOut { .. } | RecordKind::Comm { .. } => {}
            }
        }
        // Kept, still in time order: the unclaimed, then those too recent.
        self.pending.splice(..old_enough, unclaimed);
        self.send(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::sched::perf::PerfRecord;
    use crate::telemetry::sched::slices::{self, ThreadTrack};
    use crate::telemetry::sched::{Registered, SliceState};
    use std::sync::{Arc, Mutex};

    /// What the drain thread hands the builder: the records less their names.
    fn kept(records: &[PerfRecord]) -> Vec<Kept> {
        records.iter().filter_map(Kept::of).collect()
    }

    fn rec(tid: i32, cpu: u32, time_ns: u64, kind: RecordKind) -> PerfRecord {
        PerfRecord {
            pid: tid,
            tid,
            cpu,
            time_ns,
            kind,
        }
    }

    #[test]
    fn slices_come_out_in_time_order_once_old_enough() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink_got = got.clone();
        let mut live =
            LiveSlices::new(1_000, Box::new(move |s| sink_got.lock().unwrap().extend(s)));
        let registry = Registry::default();
        worker(&registry, 0, 7, 1_100);
        let out = RecordKind::SwitchOut { preempted: true };
        // Read from two rings out of order; tid 9 never registers.
        live.feed(
            &kept(&[
                rec(7, 1, 3_000_000, RecordKind::SwitchIn),
                rec(7, 0, 1_000_000, RecordKind::SwitchIn),
                rec(7, 0, 2_000_000, out),
                rec(9, 0, 1_500_000, RecordKind::SwitchIn),
            ]),
            &registry,
            5_500_000,
        );
        let slices = got.lock().unwrap().clone();
        let spans: Vec<_> = slices
            .iter()
            .map(|s| (s.state, s.core, s.start_ns, s.end_ns))
            .collect();
        assert_eq!(
            spans,
            vec![
                (SliceState::Running, 0, 999_000, 1_999_000),
                (SliceState::Runnable, 0, 1_999_000, 2_999_000),
            ],
            "the running slice on CPU 1 from 3 ms is still open"
        );
        // The exit closes it.
        live.feed(
            &kept(&[rec(7, 1, 3_500_000, RecordKind::Exit)]),
            &registry,
            9_000_000,
        );
        let last = got.lock().unwrap().last().cloned().unwrap();
        assert_eq!(
            (last.state, last.core, last.end_ns),
            (SliceState::Running, 1, 3_499_000)
        );
    }

    /// A thread that never switched while recorded: its exit says it ran
    /// from registration on that CPU, and one alive at the end is in the
    /// state the caller reads for it.
    #[test]
    fn a_thread_without_switches_keeps_one_state_from_registration() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink_got = got.clone();
        let mut live = LiveSlices::new(0, Box::new(move |s| sink_got.lock().unwrap().extend(s)));
        let registry = Registry::default();
        worker(&registry, 0, 7, 1_000);
        worker(&registry, 1, 8, 1_000);
        live.feed(
            &kept(&[rec(7, 1, 3_000_000, RecordKind::Exit)]),
            &registry,
            9_000_000,
        );
        let quiet = |tid| (tid == 8).then_some((SliceState::Blocked, 0));
        live.finish(&[], &registry, 10_000_000, |_| true, quiet);
        let spans: Vec<_> = got
            .lock()
            .unwrap()
            .iter()
            .map(|s| (s.thread(), s.state, s.core, s.start_ns, s.end_ns))
            .collect();
        assert_eq!(
            spans,
            vec![
                (0, SliceState::Running, 1, 1_000, 3_000_000),
                (1, SliceState::Blocked, 0, 1_000, 10_000_000),
            ]
        );
    }

    fn worker(registry: &Registry, index: usize, tid: i32, registered_ns: u64) {
        registry.add(Registered {
            index,
            tid,
            registered_ns,
            first_sample: None,
            sampled: false,
        });
    }

    /// A thread's records: switched in on `cpu` at each start, out
    /// (preempted) at each end, then its exit.
    fn turns(tid: i32, cpu: u32, runs: &[(u64, u64)], exit_ns: u64) -> Vec<PerfRecord> {
        let out = RecordKind::SwitchOut { preempted: true };
        let mut records: Vec<_> = runs
            .iter()
            .flat_map(|&(a, b)| {
                [
                    rec(tid, cpu, a, RecordKind::SwitchIn),
                    rec(tid, cpu, b, out),
                ]
            })
            .collect();
        records.push(rec(tid, cpu, exit_ns, RecordKind::Exit));
        records
    }

    /// The slices streamed are those the complete report builds from the
    /// same records, whatever the rings' order and however they are read.
    #[test]
    fn streamed_slices_are_the_complete_reports() {
        let registry = Registry::default();
        worker(&registry, 0, 7, 1_000_000);
        worker(&registry, 1, 8, 1_500_000);
        // Two threads taking turns on CPU 0 every 3 ms, then thread 1
        // moving to CPU 1 at 33 ms; each ring read in 10 ms chunks, CPU 1's first.
        let a: Vec<_> = (0..8)
            .map(|i| (2_000_000 + i * 6_000_000, 5_000_000 + i * 6_000_000))
            .collect();
        let b: Vec<_> = (0..5)
            .map(|i| (5_000_000 + i * 6_000_000, 8_000_000 + i * 6_000_000))
            .collect();
        let b_moved = [(33_000_000, 36_000_000), (41_000_000, 47_000_000)];
        let a_records = turns(7, 0, &a, 49_000_000);
        let mut b_records = turns(8, 0, &b, 60_000_000);
        b_records.pop();
        b_records.extend(turns(8, 1, &b_moved, 53_000_000));
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink_got = got.clone();
        let mut live = LiveSlices::new(
            500_000,
            Box::new(move |s| sink_got.lock().unwrap().extend(s)),
        );
        let mut read = 0;
        for until in (10_000_000..=60_000_000).step_by(10_000_000) {
            // Ring by ring, CPU 1's first: a thread that moved has its
            // records out of time order.
            let batch: Vec<PerfRecord> = [1, 0]
                .into_iter()
                .flat_map(|cpu| {
                    a_records
                        .iter()
                        .chain(&b_records)
                        .filter(move |r| r.cpu == cpu && r.time_ns > read && r.time_ns <= until)
                        .copied()
                })
                .collect();
            live.feed(&kept(&batch), &registry, until);
            read = until;
        }
        let (_, late) = live.finish(&[], &registry, 70_000_000, |_| false, |_| None);
        assert!(!late);
        let mut streamed = got.lock().unwrap().clone();
        slices::group_by_thread(&mut streamed);

        let mut complete = Vec::new();
        for (index, tid, registered_ns, records) in
            [(0, 7, 1_000_000, &a_records), (1, 8, 1_500_000, &b_records)]
        {
            // As the complete report takes them (each thread's in time order).
            let mut track = ThreadTrack {
                registered_ns: Some(registered_ns),
                end_ns: 70_000_000,
                ..Default::default()
            };
            records.iter().for_each(|r| track.take(r));
            assert_eq!(tid, records[0].tid);
            slices::build_thread(index, &track, 500_000, &mut complete);
        }
        assert!(complete.len() > 20, "{complete:?}");
        assert_eq!(streamed, complete);
    }

    /// Worker 7, switched in at 2 ms, its records taken up to `read_ns` − [`LAG_NS`].
    fn seven_switched_in(read_ns: u64) -> (Registry, LiveSlices) {
        let registry = Registry::default();
        worker(&registry, 0, 7, 1_000);
        let mut live = LiveSlices::new(0, Box::new(drop));
        live.feed(
            &kept(&[rec(7, 0, 2_000_000, RecordKind::SwitchIn)]),
            &registry,
            read_ns,
        );
        (registry, live)
    }

    /// A record older than what the builder already took is noted as late
    /// (its slices may be wrong); one of a thread that is not a worker is not.
    #[test]
    fn a_workers_record_older_than_what_was_taken_is_late() {
        let late_after = |last: &[PerfRecord]| {
            let (registry, mut live) = seven_switched_in(10_000_000);
            // Taken up to 8 ms: a record at 9 ms is in time, another thread's at 3 ms harmless.
            let out = RecordKind::SwitchOut { preempted: true };
            live.feed(
                &kept(&[rec(7, 0, 9_000_000, out), rec(9, 1, 3_000_000, out)]),
                &registry,
                20_000_000,
            );
            live.feed(&kept(last), &registry, 30_000_000);
            live.finish(&[], &registry, 40_000_000, |_| false, |_| None)
                .1
        };
        assert!(!late_after(&[]));
        assert!(
            late_after(&[rec(7, 1, 17_000_000, RecordKind::SwitchIn)]),
            "17 ms came after 18 ms was passed"
        );
    }

    /// A worker registered only now (one that watches itself is registered
    /// as its ring is taken) may bring records older than what the builder
    /// passed: not late, since none of its slices was sent.
    #[test]
    fn a_new_workers_older_records_are_not_late() {
        let (registry, mut live) = seven_switched_in(20_000_000);
        worker(&registry, 1, 8, 3_000_000);
        let out = RecordKind::SwitchOut { preempted: false };
        live.feed(&kept(&[rec(8, 1, 4_000_000, out)]), &registry, 30_000_000);
        let (per_thread, late) = live.finish(&[], &registry, 40_000_000, |_| false, |_| None);
        assert!(!late);
        assert_eq!(
            per_thread[1].running_ns, 1_000_000,
            "from registration to its switch"
        );
    }

    /// A late switch takes effect at the thread's previous switch: the slices
    /// already sent are not overlapped by one reaching back before them.
    #[test]
    fn a_late_record_never_makes_slices_overlap() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink_got = got.clone();
        let registry = Registry::default();
        worker(&registry, 0, 7, 1_000);
        let mut live = LiveSlices::new(0, Box::new(move |s| sink_got.lock().unwrap().extend(s)));
        let out = RecordKind::SwitchOut { preempted: true };
        let feeds = [
            (
                vec![
                    rec(7, 0, 2_000_000, RecordKind::SwitchIn),
                    rec(7, 0, 9_000_000, out),
                ],
                12_000_000,
            ),
            (
                vec![rec(7, 0, 15_000_000, RecordKind::SwitchIn)],
                20_000_000,
            ),
            // Switched out at 12 ms, read after 18 ms was passed.
            (vec![rec(7, 0, 12_000_000, out)], 30_000_000),
            (
                vec![rec(7, 0, 25_000_000, RecordKind::SwitchIn)],
                40_000_000,
            ),
        ];
        for (records, read_ns) in feeds {
            live.feed(&kept(&records), &registry, read_ns);
        }
        let (_, late) = live.finish(&[], &registry, 50_000_000, |_| true, |_| None);
        assert!(late);
        let slices = got.lock().unwrap().clone();
        let spans: Vec<_> = slices
            .iter()
            .map(|s| (s.state, s.start_ns, s.end_ns))
            .collect();
        assert!(
            spans.windows(2).all(|w| w[0].2 <= w[1].1),
            "overlapping slices: {spans:?}"
        );
        assert_eq!(spans.last().map(|s| s.2), Some(50_000_000), "{spans:?}");
    }
}
