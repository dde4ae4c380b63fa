//! Slices built while the run goes on, from the perf records as the drain
//! thread reads them, so the app shows the kernel's scheduling live. The
//! complete report built at the end replaces them.
//!
//! Records of different CPUs come from different rings, so a record stamped
//! just before a ring was read may land just after: the builder stays
//! [`LAG_NS`] behind the newest read and takes records in time order.

use std::collections::HashMap;

use super::perf::{PerfRecord, RecordKind};
use super::slices::{SliceBuilder, SwitchEvent, SwitchKind, Totals};
use super::{Registry, SchedSlice, ThreadSched};

/// Where live slices go (the run's event channel).
pub type Sink = Box<dyn FnMut(Vec<SchedSlice>) + Send>;

/// How far behind the newest read the builder stays.
const LAG_NS: u64 = 2_000_000;
/// Records of a thread that has not registered are kept this long, then dropped
/// (the run's controller thread, which is not a worker, never registers).
const UNCLAIMED_NS: u64 = 1_000_000_000;

pub struct LiveSlices {
    sink: Sink,
    origin_ns: u64,
    /// Records not yet taken: too recent, or of a thread not yet registered.
    pending: Vec<PerfRecord>,
    /// One builder per registered worker, by thread id.
    builders: HashMap<i32, SliceBuilder>,
    /// Registrations already seen.
    seen: usize,
    /// Totals of every slice sent, and each finished builder's switch-outs:
    /// exact figures for a capture that keeps no records of its own.
    totals: Totals,
    switches: HashMap<usize, (u64, u64)>,
}

impl LiveSlices {
    pub fn new(origin_ns: u64, sink: Sink) -> LiveSlices {
        LiveSlices {
            sink,
            origin_ns,
            pending: Vec::new(),
            builders: HashMap::new(),
            seen: 0,
            totals: Totals::default(),
            switches: HashMap::new(),
        }
    }

    /// Sends what is left once the capture stopped: `records` and every pending one,
    /// then each thread's last slice, closed at its exit or at `end_ns`
    /// (alive: `alive(tid)`), as the complete report does. Returns the
    /// per-thread totals of every slice this builder sent.
    pub fn finish(
        mut self,
        records: &[PerfRecord],
        registry: &Registry,
        end_ns: u64,
        alive: impl Fn(i32) -> bool,
    ) -> Vec<ThreadSched> {
        self.feed(records, registry, u64::MAX);
        let mut out = Vec::new();
        for (tid, builder) in std::mem::take(&mut self.builders) {
            let thread = builder.thread();
            let counts = builder.finish(None, alive(tid), end_ns, &mut out);
            self.count(thread, counts);
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
        per_thread
    }

    fn count(&mut self, thread: usize, (preempted, blocked): (u64, u64)) {
        let c = self.switches.entry(thread).or_default();
        c.0 += preempted;
        c.1 += blocked;
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

    /// Takes newly read records; sends the slices they close, up to `now_ns − LAG_NS`.
    pub fn feed(&mut self, records: &[PerfRecord], registry: &Registry, now_ns: u64) {
        for r in registry.since(&mut self.seen) {
            let builder = SliceBuilder::new(r.index, self.origin_ns, Some(r.registered_ns));
            self.builders.insert(r.tid, builder);
        }
        self.pending.extend_from_slice(records);
        self.pending.sort_by_key(|r| r.time_ns);
        let watermark = now_ns.saturating_sub(LAG_NS);
        let mut out = Vec::new();
        let mut keep = Vec::new();
        for r in std::mem::take(&mut self.pending) {
            if r.time_ns > watermark {
                keep.push(r);
                continue;
            }
            let Some(builder) = self.builders.get_mut(&r.tid) else {
                if r.time_ns + UNCLAIMED_NS > watermark {
                    keep.push(r); // its thread may register yet
                }
                continue;
            };
            let switch = |kind| SwitchEvent {
                time_ns: r.time_ns,
                cpu: r.cpu as usize,
                kind,
            };
            match r.kind {
                RecordKind::SwitchIn => builder.event(&switch(SwitchKind::In), &mut out),
                RecordKind::SwitchOut { preempted } => {
                    builder.event(&switch(SwitchKind::Out { preempted }), &mut out);
                }
                RecordKind::Fork => {
                    builder.fork_ns = Some(builder.fork_ns.map_or(r.time_ns, |f| f.min(r.time_ns)));
                }
                RecordKind::Exit => {
                    if let Some(builder) = self.builders.remove(&r.tid) {
                        let thread = builder.thread();
                        let counts = builder.finish(Some(r.time_ns), false, r.time_ns, &mut out);
                        self.count(thread, counts);
                    }
                }
                RecordKind::Comm { .. } => {}
            }
        }
        self.pending = keep;
        self.send(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::sched::{Registered, SliceState};
    use std::sync::{Arc, Mutex};

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
        registry.add(Registered {
            index: 0,
            tid: 7,
            registered_ns: 1_100,
            first_sample: None,
            sampled: false,
        });
        let out = RecordKind::SwitchOut { preempted: true };
        // Read from two rings out of order; tid 9 never registers.
        live.feed(
            &[
                rec(7, 1, 3_000_000, RecordKind::SwitchIn),
                rec(7, 0, 1_000_000, RecordKind::SwitchIn),
                rec(7, 0, 2_000_000, out),
                rec(9, 0, 1_500_000, RecordKind::SwitchIn),
            ],
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
            &[rec(7, 1, 3_500_000, RecordKind::Exit)],
            &registry,
            9_000_000,
        );
        let last = got.lock().unwrap().last().cloned().unwrap();
        assert_eq!(
            (last.state, last.core, last.end_ns),
            (SliceState::Running, 1, 3_499_000)
        );
    }
}
