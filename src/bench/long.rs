//! `corelanes bench --long`: memory of a long run, by synthetic ingest
//! (for scale only: no thread ran). An io run of 4 threads on 2 cores at a
//! given rate of context switches: each switch ends a 10 µs task and a
//! running slice, and starts a blocked one; the events go through the
//! recording and the drawing store as a live run's do.

use crate::run::{Recording, RunConfig};
use crate::telemetry::events::{RunEvent, TaskRecord, ThreadRecord};
use crate::telemetry::sched::{SchedSlice, SchedSource, SliceState};
use crate::timeline::Timeline;
use crate::topology::Topology;
use crate::workload::WorkloadKind;

const THREADS: usize = 4;
const BATCH: u64 = 256;

/// A synthetic run until Stop, and its drawing store.
pub struct LongRun {
    pub rec: Recording,
    pub timeline: Timeline,
    /// Switches ingested so far.
    pub switches: u64,
    /// ns between switches (all threads together).
    step_ns: u64,
}

impl LongRun {
    pub fn new(switches_per_s: u64) -> LongRun {
        let topo = Topology::get();
        let config = RunConfig {
            workload: WorkloadKind::Io,
            threads: THREADS,
            task_ms: 0.01,
            until_stop: true,
            ..RunConfig::defaults(topo)
        };
        let mut run = LongRun {
            rec: Recording::new(config),
            timeline: Timeline::default(),
            switches: 0,
            step_ns: 1_000_000_000 / switches_per_s.max(1),
        };
        let threads = (0..THREADS)
            .map(|index| ThreadRecord {
                index,
                name: format!("worker-{index}"),
                // Made-up thread ids (a session names threads by tid).
                tid: 1_000_000 + index as i32,
                ..ThreadRecord::default()
            })
            .collect();
        run.ingest(RunEvent::Started {
            origin_ns: 1,
            threads,
            sched_source: SchedSource::Perf,
            sched_note: None,
        });
        run
    }

    fn ingest(&mut self, event: RunEvent) {
        let (tasks, slices) = (self.rec.tasks_seen(), self.rec.slices_seen());
        self.timeline.ingest(&event, tasks, slices, 0);
        self.rec.ingest(event);
    }

    /// Ingests `n` more switches (a multiple of 256), in batches of 256 as
    /// the workers and the capture send them. Switch `i` at `i × step` is
    /// thread `i mod 4`'s (on core `thread mod 2`): a 10 µs task, running
    /// for half a step, then blocked until its next switch.
    pub fn ingest_switches(&mut self, n: u64) {
        let step = self.step_ns;
        let run_ns = step / 2;
        for _ in 0..n / BATCH {
            let first = self.switches;
            let tasks: Vec<TaskRecord> = (first..first + BATCH)
                .map(|i| {
                    let thread = (i % THREADS as u64) as u32;
                    TaskRecord {
                        id: i as u32,
                        thread,
                        start_ns: i * step,
                        end_ns: i * step + 10_000,
                        core_at_start: thread % 2,
                        core_at_end: thread % 2,
                        cpu_ns: run_ns,
                        ok: true,
                    }
                })
                .collect();
            let slices: Vec<SchedSlice> = (first..first + BATCH)
                .flat_map(|i| {
                    let thread = (i % THREADS as u64) as usize;
                    let t = i * step;
                    let slice = |state, start_ns, end_ns| {
                        SchedSlice::new(thread, thread % 2, state, start_ns, end_ns)
                    };
                    [
                        slice(SliceState::Running, t, t + run_ns),
                        slice(SliceState::Blocked, t + run_ns, t + THREADS as u64 * step),
                    ]
                })
                .collect();
            self.ingest(RunEvent::Tasks(tasks));
            self.ingest(RunEvent::Slices(slices));
            self.switches += BATCH;
        }
    }

    /// Simulated time covered so far.
    pub fn simulated_ns(&self) -> u64 {
        self.switches * self.step_ns
    }
}

/// Peak resident memory of this process (`VmHWM` in /proc/self/status), in bytes.
pub fn peak_resident_bytes() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Ingests an hour at `switches_per_s` and prints resident memory against
/// [`crate::retention::CAP_BYTES`].
pub fn print_long(switches_per_s: u64, seconds: u64) {
    use crate::metrics::human_ns;
    let before = crate::retention::resident_bytes().unwrap_or(0);
    let t0 = std::time::Instant::now();
    let mut run = LongRun::new(switches_per_s);
    let total = switches_per_s * seconds / BATCH * BATCH;
    let mut peak_rss = 0;
    while run.switches < total {
        run.ingest_switches((total - run.switches).min(BATCH * 4096));
        peak_rss = peak_rss.max(crate::retention::resident_bytes().unwrap_or(0));
    }
    let mib = |b: usize| b as f64 / f64::from(1 << 20);
    let kept = run.rec.summarised_before_ns().unwrap_or(0);
    println!(
        "long run, SYNTHETIC ingest (scale only): {} switches ({} s at {switches_per_s}/s, 4 threads, 2 cores) in {:.1} s; \
         resident {:.0} MiB at most during the ingest (process peak {:.0} MiB, {:.0} MiB before), cap {:.0} MiB; \
         kept raw: {} tasks, {} slices, {} spans (timeline {:.0} MiB), the last {} of {}; tasks counted {}",
        run.switches,
        seconds,
        t0.elapsed().as_secs_f64(),
        mib(peak_rss),
        mib(peak_resident_bytes().unwrap_or(0)),
        mib(before),
        mib(crate::retention::CAP_BYTES),
        run.rec.tasks.len(),
        run.rec.live_slices.len(),
        run.timeline.len(),
        mib(run.timeline.heap_bytes()),
        human_ns(run.simulated_ns().saturating_sub(kept)),
        human_ns(run.simulated_ns()),
        run.rec.task_totals.recorded,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retention::{SLICES_SHARE, TASKS_SHARE, WINDOW_NS};
    use crate::telemetry::sched::SchedSlice;

    #[test]
    fn a_long_run_keeps_the_window_raw_and_exact_totals_and_a_summary_before() {
        // 1000 switches a second for 30 simulated minutes: the window rules.
        let mut run = LongRun::new(1000);
        run.ingest_switches(1_800_000 / BATCH * BATCH);
        let now = run.simulated_ns();
        assert_eq!(
            run.rec.task_totals.recorded, run.switches,
            "every task counted"
        );
        let oldest = run.rec.tasks.first().unwrap().end_ns;
        // Trimmed once an eighth of what is kept is out of the window.
        assert!(
            oldest + WINDOW_NS <= now + WINDOW_NS / 7,
            "{oldest} at {now}"
        );
        assert!(
            oldest + WINDOW_NS >= now - WINDOW_NS / 7 * 2,
            "{oldest} at {now}"
        );
        let before = run.rec.summarised_before_ns().unwrap();
        assert!(before > 0 && before < now - WINDOW_NS + WINDOW_NS / 4);
        // The drawing store forgot its old spans and kept their summary: a
        // core lane's total over the whole run is still every running slice.
        let tl = &run.timeline;
        assert!(tl.summarised_before_ns() > 0);
        let core0 = &tl.cores[0];
        let mix = core0.mix(0, now + 1);
        let running_per_switch = run.step_ns / 2;
        assert_eq!(mix.covered_ns(), run.switches / 2 * running_per_switch);
        // Both threads of core 0 share it evenly, in the old part too.
        let old = core0.mix(0, tl.summarised_before_ns() / 2);
        let (a, b) = (old.ns_of(0), old.ns_of(2));
        assert!(a.abs_diff(b) * 50 <= a + b, "{a} vs {b}");
        assert!(run.rec.slice(0).is_none(), "the first slice was dropped");
    }

    #[test]
    fn a_saved_long_run_reopens_marked_summary_only_with_its_figures() {
        let mut run = LongRun::new(400);
        run.ingest_switches(480_000 / BATCH * BATCH);
        run.rec
            .ingest(RunEvent::Sched(crate::telemetry::sched::SchedReport {
                streamed: true,
                ..crate::telemetry::sched::SchedReport::of_slices(
                    SchedSource::Perf,
                    Vec::new(),
                    Vec::new(),
                )
            }));
        run.rec.ingest(RunEvent::Finished {
            wall_ns: run.simulated_ns(),
            cancelled: true,
        });
        let was = &run.rec;
        assert!(was.summarised_before_ns().is_some() && !was.slices().is_empty());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long.pftrace");
        let machine = crate::session::Machine::this();
        crate::session::save(&path, &[(was, &machine)]).unwrap();
        let back = crate::session::open(&path).unwrap().remove(0).recording;
        assert_eq!(back.summarised_before_ns(), was.summarised_before_ns());
        assert_eq!(back.task_totals, was.task_totals);
        assert_eq!(back.metrics().concurrency, was.metrics().concurrency);
        assert_eq!(back.tasks.len(), was.tasks.len());
        // Items keep their numbering past the dropped ones.
        assert_eq!(back.slices_seen(), was.slices_seen());
        assert!(back.slice(back.dropped_slices.items as u32).is_some());
    }

    #[test]
    fn at_80_000_switches_a_second_the_budget_rules() {
        let mut run = LongRun::new(80_000);
        run.ingest_switches(2_000_000 / BATCH * BATCH);
        let bytes = |cap: usize, size: usize| cap * size;
        let tasks = bytes(run.rec.tasks.capacity(), size_of::<TaskRecord>());
        let slices = bytes(run.rec.live_slices.capacity(), size_of::<SchedSlice>());
        // A Vec's capacity may double once past its share, never more.
        assert!(tasks <= 2 * TASKS_SHARE, "{tasks} B of tasks");
        assert!(slices <= 2 * SLICES_SHARE, "{slices} B of slices");
        assert!(run.rec.dropped_tasks.any() && run.rec.dropped_slices.any());
        assert_eq!(run.rec.task_totals.recorded, run.switches);
        assert_eq!(
            run.timeline.dropped(),
            0,
            "old spans are forgotten, new ones kept"
        );
    }
}
