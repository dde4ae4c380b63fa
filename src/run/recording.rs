//! Everything one run produced, built by ingesting its events in order.

use crate::environment::Environment;
use crate::metrics::{Inputs, Metrics, TaskTotals};
use crate::record::ProgramInfo;
use crate::retention::{self, Dropped};
use crate::telemetry::events::{Handoff, InFlight, RunEvent, TaskCpu, TaskRecord, ThreadRecord};
use crate::telemetry::sched::slices::{self, Totals};
use crate::telemetry::sched::{SchedReport, SchedSlice, SchedSource};

use super::RunConfig;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Finished,
    Cancelled,
}

/// A run's records: the collector side of the channel. Ingesting is cheap
/// (appends), so a GUI frame can drain whatever arrived since the last frame.
#[derive(Clone, Debug)]
pub struct Recording {
    pub config: RunConfig,
    pub status: RunStatus,
    /// `CLOCK_MONOTONIC` ns at the run's origin; every other time is relative to it.
    pub origin_ns: u64,
    /// Final once `status` is not `Running`; until then the last task end seen.
    pub wall_ns: u64,
    /// This process's CPU time from the run's start until its report was
    /// built (workers, capture, controller), before any output is written:
    /// what the run and its measuring cost. Runs made by [`crate::run::run_until`] only.
    pub run_cpu_ns: Option<u64>,
    pub threads: Vec<ThreadRecord>,
    pub tasks: Vec<TaskRecord>,
    /// The lock workload's hand-offs: each release that unblocked a waiting
    /// worker, and when that worker got the lock (empty for other workloads,
    /// and for runs reopened from a session, which does not keep them).
    pub handoffs: Vec<Handoff>,
    pub sched_source: SchedSource,
    pub sched_note: Option<String>,
    pub sched: Option<SchedReport>,
    /// Sentences telling the user what went wrong (panics, failed pins).
    pub failures: Vec<String>,
    /// The machine at the run's start; `None` until the run says (and for
    /// sessions saved before it was recorded).
    pub environment: Option<Environment>,
    /// While running: the slices streamed so far (until `sched` holds them all)…
    pub live_slices: Vec<SchedSlice>,
    /// …and their per-thread totals.
    pub live_sched: Totals,
    /// While running: each worker's unfinished task, as last observed.
    pub in_flight: Vec<Option<InFlight>>,
    /// While running: ns since the origin when the run was last observed.
    pub seen_ns: u64,
    /// Sums over `tasks`, kept as they arrive so figures cost nothing per frame.
    pub task_totals: TaskTotals,
    /// Another program's recording (`corelanes record`): which one; `None` for a workload run.
    pub program: Option<ProgramInfo>,
    /// Where the tasks' CPU times come from.
    pub task_cpu: TaskCpu,
    /// With [`TaskCpu::KernelSlices`]: the tasks' CPU times are still to be
    /// summed from the kernel's report when it arrives.
    pub cpu_from_report: bool,
    /// Tasks dropped from the front of `tasks` (a long run keeps the last
    /// ones only, see [`crate::retention`]); `task_totals` still count them.
    pub dropped_tasks: Dropped,
    /// Slices dropped from the front of the live slices (and so of the
    /// final report's, which continue them); the totals still count them.
    pub dropped_slices: Dropped,
}

impl Recording {
    pub fn new(config: RunConfig) -> Recording {
        Recording {
            config,
            status: RunStatus::Running,
            origin_ns: 0,
            wall_ns: 0,
            run_cpu_ns: None,
            threads: Vec::new(),
            tasks: Vec::new(),
            handoffs: Vec::new(),
            sched_source: SchedSource::Off,
            sched_note: None,
            sched: None,
            failures: Vec::new(),
            environment: None,
            live_slices: Vec::new(),
            live_sched: Totals::default(),
            in_flight: Vec::new(),
            seen_ns: 0,
            task_totals: TaskTotals::default(),
            program: None,
            task_cpu: TaskCpu::ThreadClock,
            cpu_from_report: false,
            dropped_tasks: Dropped::default(),
            dropped_slices: Dropped::default(),
        }
    }

    /// For a run read back from a file: its tasks already hold their CPU
    /// times, found by `task_cpu`; the report ingested next must not redo them.
    pub fn tasks_saved_with(&mut self, task_cpu: TaskCpu) {
        self.task_cpu = task_cpu;
        self.cpu_from_report = false;
    }

    pub fn ingest(&mut self, event: RunEvent) {
        self.ingest_reordering(event);
    }

    /// As [`Recording::ingest`], and where a streamed report put the slices
    /// streamed so far in its order (by thread, then start), where each went:
    /// the slice kept at `i` is now at `moved[i]`. A drawing store that named
    /// them as they came renames them with it.
    pub fn ingest_reordering(&mut self, event: RunEvent) -> Option<Vec<u32>> {
        let mut reordered = None;
        match event {
            RunEvent::Started {
                origin_ns,
                threads,
                sched_source,
                sched_note,
            } => {
                self.origin_ns = origin_ns;
                // The task count is known: reserve once instead of growing
                // (and copying) as batches arrive, no more than the budget keeps.
                let tasks = self
                    .config
                    .planned_tasks()
                    .min(retention::most_items::<TaskRecord>(retention::TASKS_SHARE));
                crate::timeline::reserve_resident(&mut self.tasks, tasks);
                self.threads = threads;
                self.sched_source = sched_source;
                self.sched_note = sched_note;
                // The workers decide the same way (see `run::worker`).
                self.task_cpu = TaskCpu::for_source(sched_source);
                self.cpu_from_report = self.task_cpu == TaskCpu::KernelSlices;
            }
            RunEvent::Environment(environment) => self.environment = Some(*environment),
            RunEvent::ThreadStarted { index, tid } => {
                if let Some(thread) = self.threads.get_mut(index) {
                    thread.tid = tid;
                }
            }
            RunEvent::Tasks(batch) => {
                for task in &batch {
                    self.wall_ns = self.wall_ns.max(task.end_ns);
                    self.task_totals.add(task);
                }
                retention::trim(
                    &mut self.tasks,
                    batch.len(),
                    self.wall_ns,
                    retention::TASKS_SHARE,
                    |t| t.end_ns,
                    &mut self.dropped_tasks,
                );
                self.tasks.extend_from_slice(&batch);
            }
            RunEvent::Handoffs(batch) => self.handoffs.extend(batch),
            // A recorded program's threads appear as it runs, and all of
            // them end with `ThreadDone`, the last seen ones included.
            RunEvent::ThreadDone(thread) | RunEvent::ThreadSeen(thread) => {
                let index = thread.index;
                if index >= self.threads.len() && self.program.is_some() {
                    self.threads.resize_with(index + 1, ThreadRecord::default);
                }
                if let Some(slot) = self.threads.get_mut(index) {
                    *slot = thread;
                }
            }
            RunEvent::Program(info) => self.program = Some(info),
            RunEvent::Failure(why) => self.failures.push(why),
            RunEvent::Slices(batch) => {
                let mut latest = 0;
                for slice in &batch {
                    self.live_sched.add(slice, true);
                    latest = latest.max(slice.end_ns);
                }
                retention::trim(
                    &mut self.live_slices,
                    batch.len(),
                    latest,
                    retention::SLICES_SHARE,
                    |s| s.end_ns,
                    &mut self.dropped_slices,
                );
                self.live_slices.extend(batch);
            }
            RunEvent::Sched(mut report) => {
                if report.streamed {
                    // Its slices are those streamed (the last ones were sent
                    // just before), put in a report's order.
                    report.slices = std::mem::take(&mut self.live_slices);
                    reordered = slices::group_by_thread(&mut report.slices);
                } else {
                    // The complete set replaces the streamed ones, whatever they lost.
                    self.dropped_slices = Dropped::default();
                }
                self.live_slices = Vec::new();
                self.live_sched = Totals::default();
                if report.note.is_some() {
                    self.sched_note = report.note.clone();
                }
                if std::mem::take(&mut self.cpu_from_report) {
                    TaskCpu::fill_from_slices(&mut self.tasks, &report.slices);
                    self.task_totals.cpu_ns = self.tasks.iter().map(|t| t.cpu_ns).sum();
                }
                self.sched = Some(report);
            }
            RunEvent::Finished { wall_ns, cancelled } => {
                self.wall_ns = wall_ns.max(self.wall_ns);
                if self.program.is_some() {
                    // The config's thread count, for what reads only the
                    // config (a reopened session's title).
                    self.config.threads = self.threads.len();
                }
                self.status = if cancelled {
                    RunStatus::Cancelled
                } else {
                    RunStatus::Finished
                };
                self.in_flight.clear();
            }
        }
        reordered
    }

    pub fn is_running(&self) -> bool {
        self.status == RunStatus::Running
    }

    /// Notes what a running run looks like now: `now_ns` (absolute
    /// `CLOCK_MONOTONIC`) and each worker's unfinished task.
    pub fn observe(&mut self, now_ns: u64, in_flight: Vec<Option<InFlight>>) {
        if self.is_running() && self.origin_ns > 0 {
            self.seen_ns = now_ns.saturating_sub(self.origin_ns);
            self.in_flight = in_flight;
        }
    }

    /// The scheduler slices: all of them once the run has ended, those
    /// streamed so far while it runs (what the timeline's items index).
    pub fn slices(&self) -> &[SchedSlice] {
        match &self.sched {
            Some(report) => &report.slices,
            None => &self.live_slices,
        }
    }

    /// Task `item` (its index among all the run's tasks, dropped ones
    /// included: what the drawing store's task lanes hold), if still kept.
    pub fn task(&self, item: u32) -> Option<&TaskRecord> {
        let i = u64::from(item).checked_sub(self.dropped_tasks.items)?;
        self.tasks.get(usize::try_from(i).ok()?)
    }

    /// Slice `item` (its index among all the slices, dropped ones included), if still kept.
    pub fn slice(&self, item: u32) -> Option<&SchedSlice> {
        let i = u64::from(item).checked_sub(self.dropped_slices.items)?;
        self.slices().get(usize::try_from(i).ok()?)
    }

    /// Tasks recorded so far, dropped ones included (the next task's item).
    pub fn tasks_seen(&self) -> usize {
        self.tasks.len() + self.dropped_tasks.items as usize
    }

    /// Slices recorded so far, dropped ones included (the next slice's item).
    pub fn slices_seen(&self) -> usize {
        self.slices().len() + self.dropped_slices.items as usize
    }

    /// Before this time (ns since the origin) not all raw tasks and slices
    /// are kept, only their totals (and, in the drawing store, the
    /// summary); `None` when every record is kept.
    pub fn summarised_before_ns(&self) -> Option<u64> {
        let slices = self.slices_dropped();
        let t = self.dropped_tasks.before_ns.max(slices.before_ns);
        (self.dropped_tasks.any() || slices.any()).then_some(t)
    }

    /// The slices no longer kept: by the recording, or by the capture
    /// before it reported (the /proc sampler's oldest, see `SchedReport::dropped`).
    fn slices_dropped(&self) -> Dropped {
        let by_capture = self.sched.as_ref().map(|s| s.dropped).unwrap_or_default();
        Dropped {
            items: self.dropped_slices.items + by_capture.items,
            before_ns: self.dropped_slices.before_ns.max(by_capture.before_ns),
        }
    }

    /// Figures from the kernel's slices alone. Once slices were dropped,
    /// parallelism and concurrency come from the exact per-thread totals
    /// and the profile (which needs every slice) is left empty.
    pub fn kernel_figures(&self) -> crate::metrics::KernelFigures {
        let wall = self.elapsed_ns();
        match &self.sched {
            Some(report) if self.slices_dropped().any() => {
                let sum = |f: fn(&crate::telemetry::sched::ThreadSched) -> u64| {
                    report.per_thread.iter().map(f).sum::<u64>()
                };
                let ratio = |ns: u64| {
                    if wall == 0 {
                        0.0
                    } else {
                        ns as f64 / wall as f64
                    }
                };
                crate::metrics::KernelFigures {
                    parallelism: ratio(sum(|t| t.running_ns)),
                    concurrency: ratio(sum(|t| t.running_ns + t.runnable_ns)),
                    profile_ns: Vec::new(),
                }
            }
            _ => crate::metrics::KernelFigures::of(self.slices(), wall),
        }
    }

    /// How far the run has got: its wall time once ended, else the time observed.
    pub fn elapsed_ns(&self) -> u64 {
        if self.is_running() {
            self.wall_ns.max(self.seen_ns)
        } else {
            self.wall_ns
        }
    }

    pub fn metrics(&self) -> Metrics {
        let unfinished_ns = self
            .in_flight
            .iter()
            .flatten()
            .map(|t| self.seen_ns.saturating_sub(t.start_ns))
            .sum();
        let mut m = Metrics::of(&Inputs {
            wall_ns: self.elapsed_ns(),
            threads_ended: !self.is_running() && !self.threads.is_empty(),
            threads: &self.threads,
            tasks: self.task_totals,
            unfinished_ns,
            live_sched: (self.is_running() && !self.live_slices.is_empty())
                .then_some(&self.live_sched),
        });
        if self.program.is_some() {
            // No task stamps in another program: its threads running or
            // waiting for a CPU are what is in flight.
            m.concurrency = self.kernel_figures().concurrency;
        }
        m
    }

    /// A one-line name for lists and legends, e.g. "cpu · 2 threads · one core (0)".
    /// With `--system-wide`: "other programs on the run's cores (0-1): sh
    /// 468.1 ms, …", the programs that took the cores its threads ran on,
    /// most time first.
    pub fn others_line(&self) -> Option<String> {
        const SHOWN: usize = 5;
        let report = self.sched.as_ref().filter(|s| s.system_wide)?;
        let mut cores: Vec<usize> = report
            .slices
            .iter()
            .filter(|s| s.state == crate::telemetry::sched::SliceState::Running)
            .map(SchedSlice::core)
            .collect();
        cores.sort_unstable();
        cores.dedup();
        let top = report.others_on(&cores);
        let mut line = format!(
            "other programs on the run's cores ({}):",
            crate::topology::compact_ranges(&cores)
        );
        if top.is_empty() {
            line += " none";
        }
        for (i, (name, ns)) in top.iter().take(SHOWN).enumerate() {
            let sep = if i == 0 { "" } else { "," };
            line += &format!("{sep} {name} {}", crate::metrics::human_ns(*ns));
        }
        if top.len() > SHOWN {
            line += &format!(", {} more", top.len() - SHOWN);
        }
        Some(line)
    }

    pub fn title(&self) -> String {
        if let Some(program) = &self.program {
            let n = self.threads.len();
            return format!(
                "{} · pid {} · {n} thread{}",
                program.command,
                program.pid,
                if n == 1 { "" } else { "s" }
            );
        }
        let c = &self.config;
        format!(
            "{} · {} thread{} · {}",
            c.workload,
            c.threads,
            if c.threads == 1 { "" } else { "s" },
            c.placement.label()
        )
    }
}
