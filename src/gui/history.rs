//! Every run of the session, kept whole; which one is shown, and which one it
//! is compared with.

use std::sync::Arc;

use eframe::egui;
use egui::{RichText, Ui};

use super::controls::estimated_ns;
use super::timeline::{Colours, RunView};
use crate::metrics::{Metrics, human_ns};
use crate::run::{Recording, RunConfig, RunStatus};
use crate::session::{Machine, SavedRun};
use crate::telemetry::events::{InFlight, RunEvent};
use crate::telemetry::utilisation::Busy;
use crate::timeline::Timeline;
use crate::topology::Topology;
use crate::workload::WorkloadKind;

/// One run, its drawing store and its figures. Finished runs are shared
/// (`Arc`) so that an export can write one on another thread without copying it.
pub struct Entry {
    pub rec: Arc<Recording>,
    /// The lanes the timeline draws, kept in step with `rec`.
    pub timeline: Timeline,
    pub metrics: Metrics,
    /// The machine the run was made on: this one, or a saved session's.
    pub machine: Arc<Machine>,
    /// The session file a reopened run came from.
    pub file: Option<String>,
    /// Which threads have a colour of their own, kept in step with `rec`.
    pub colours: Colours,
    /// The machine the run was made on, where that is not this one: a
    /// reopened run's, from its session (which may come from a machine of
    /// 256 CPUs), or the one a synthetic recording pretends to be.
    pub topo: Option<Arc<Topology>>,
    /// Made by a generator to show scale, not measured: labelled so.
    pub synthetic: bool,
    /// This machine's busy cores among the run's, sampled while it ran (ns
    /// since its origin): the summary lane's other work where the capture
    /// did not see other programs. Empty for reopened and synthetic runs.
    pub machine_busy: Vec<Busy>,
}

impl Entry {
    /// A run made here (about to start, usually).
    pub fn new(rec: Recording) -> Entry {
        Entry::on(rec, Machine::this(), None)
    }

    /// What the timeline draws of this run, as run `index` of the history.
    pub fn view(&self, index: usize) -> RunView<'_> {
        RunView {
            index,
            rec: &self.rec,
            timeline: &self.timeline,
            colours: &self.colours,
            topo: self.topo(),
            machine_busy: &self.machine_busy,
            caption: self.caption(index),
        }
    }

    /// The machine the run was made on, as its lanes and figures need it.
    pub fn topo(&self) -> &Topology {
        self.topo.as_deref().unwrap_or(Topology::get())
    }

    /// Whether this machine's utilisation samples can still add to
    /// [`Entry::machine_busy`]: a run made here and started, while it runs
    /// and until a sample covers its end (which comes up to a sampling
    /// period later; a window redrawn seldom may look much later), giving
    /// up `give_up_ns` after the end (a sampler that never started).
    pub fn samples_machine(&self, now_ns: u64, give_up_ns: u64) -> bool {
        let rec = &self.rec;
        let covered = self
            .machine_busy
            .last()
            .is_some_and(|b| b.to_ns >= rec.wall_ns);
        self.file.is_none()
            && !self.synthetic
            && rec.origin_ns > 0
            && (rec.is_running() || (!covered && now_ns < rec.origin_ns + rec.wall_ns + give_up_ns))
    }

    /// A run read back from the session file `file`.
    pub fn saved(run: SavedRun, file: &std::path::Path) -> Entry {
        let name = file.file_name().unwrap_or(file.as_os_str());
        let file = Some(name.to_string_lossy().into_owned());
        let topo = Arc::new(run.machine.topology());
        Entry {
            topo: Some(topo),
            ..Entry::on(run.recording, run.machine, file)
        }
    }

    fn on(rec: Recording, machine: Machine, file: Option<String>) -> Entry {
        let mut timeline = Timeline::default();
        // Rebuilt from what the recording holds (nothing, for a run about to start).
        timeline.reset(rec.threads.len());
        let (tasks, slices) = (rec.dropped_tasks.items, rec.dropped_slices.items);
        timeline.add_tasks(tasks as usize, &rec.tasks);
        match &rec.sched {
            Some(report) => {
                timeline.set_slices(slices as usize, &report.slices);
                timeline.set_others(&report.others);
            }
            None => timeline.add_slices(slices as usize, &rec.live_slices),
        }
        Entry {
            metrics: rec.metrics(),
            colours: Colours::of(&rec),
            topo: None,
            synthetic: false,
            machine_busy: Vec::new(),
            rec: Arc::new(rec),
            timeline,
            machine: Arc::new(machine),
            file,
        }
    }

    /// Takes in a run's new events: the drawing store first, then the recording.
    pub fn ingest(&mut self, events: impl IntoIterator<Item = RunEvent>) {
        let mut events = events.into_iter().peekable();
        if events.peek().is_none() {
            return;
        }
        // Copies only if an export still holds this (running) recording.
        let rec = Arc::make_mut(&mut self.rec);
        for event in events {
            let (tasks, slices) = (rec.tasks_seen(), rec.slices_seen());
            self.timeline
                .ingest(&event, tasks, slices, rec.config.planned_tasks());
            if let Some(moved) = rec.ingest_reordering(event) {
                self.timeline
                    .reorder_slices(rec.dropped_slices.items, &moved);
            }
        }
        self.metrics = rec.metrics();
        self.colours = Colours::of(rec);
    }

    /// Notes what the running run looks like now (its unfinished tasks, the
    /// time), so the timeline and figures move on between events.
    pub fn observe(&mut self, now_ns: u64, in_flight: Vec<Option<InFlight>>) {
        let rec = Arc::make_mut(&mut self.rec);
        rec.observe(now_ns, in_flight);
        self.metrics = rec.metrics();
    }

    /// The line above the run's lanes: its name, wall, parallelism,
    /// concurrency, and how far it has got while it runs.
    pub fn caption(&self, index: usize) -> String {
        let m = &self.metrics;
        let status = match self.rec.status {
            RunStatus::Running => format!(" · {}", progress(&self.rec)),
            RunStatus::Cancelled => " · stopped".into(),
            RunStatus::Finished => String::new(),
        };
        let synthetic = if self.synthetic {
            format!(
                "SYNTHETIC, generated to show scale, not measured ({} cpus): ",
                self.topo().allowed.len()
            )
        } else {
            String::new()
        };
        format!(
            "{synthetic}{} — wall {} · parallelism {:.2} · concurrency {:.2}{status}{}",
            self.name(index),
            human_ns(m.wall_ns),
            m.parallelism,
            m.concurrency,
            self.summary_only()
        )
    }

    /// Where a long run kept only the summary: " · before 1.2 min only the
    /// summary is kept (…)", or nothing when every raw span is kept.
    fn summary_only(&self) -> String {
        let before = self
            .rec
            .summarised_before_ns()
            .unwrap_or(0)
            .max(self.timeline.summarised_before_ns());
        if before == 0 {
            return String::new();
        }
        format!(
            " · before {} only the summary is kept (raw: the last 10 min or {} MiB)",
            human_ns(before),
            crate::retention::BUDGET_BYTES >> 20
        )
    }

    /// "#3 cpu · 2 threads · one core (0)": what lists, legends and captions call a run.
    pub fn name(&self, index: usize) -> String {
        format!("#{} {}", index + 1, self.rec.title())
    }
}

/// What a run has that its speedup's baseline lacked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gain {
    /// More cores (the baseline used fewer, usually one).
    Parallelism,
    /// More threads on the same cores, e.g. more waits overlapped on one core.
    Concurrency,
}

impl Gain {
    pub fn name(self) -> &'static str {
        match self {
            Gain::Parallelism => "parallelism",
            Gain::Concurrency => "concurrency",
        }
    }
}

/// The run a speedup is measured against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Baseline {
    pub index: usize,
    pub gain: Gain,
    /// The cores the baseline used.
    pub cores: usize,
}

/// Why a run has no speedup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoSpeedup {
    Running,
    Stopped,
    Failed,
    NoBaseline,
}

impl NoSpeedup {
    /// The reason, as a tooltip tells it.
    pub fn why(self) -> &'static str {
        match self {
            NoSpeedup::Running => "run in progress: its wall time is not known yet",
            NoSpeedup::Stopped => "stopped before it finished: it did not do all its work",
            NoSpeedup::Failed => {
                "the run reported failures (listed below): it did not run as configured"
            }
            NoSpeedup::NoBaseline => {
                "no finished run of the same work with fewer threads or fewer cores on the same machine yet"
            }
        }
    }
}

#[derive(Default)]
pub struct History {
    runs: Vec<Entry>,
    /// The run shown in the timeline and the figures.
    pub selected: Option<usize>,
    /// A second run stacked under the selected one, on the same time scale.
    pub compare: Option<usize>,
}

impl History {
    /// Adds a run that is about to start and shows it.
    pub fn push(&mut self, rec: Recording) -> usize {
        self.runs.push(Entry::new(rec));
        let index = self.runs.len() - 1;
        self.selected = Some(index);
        index
    }

    /// Adds a finished entry (a synthetic recording) and shows it.
    pub fn push_entry(&mut self, entry: Entry) -> usize {
        self.runs.push(entry);
        self.selected = Some(self.runs.len() - 1);
        self.runs.len() - 1
    }

    /// Adds runs read back from the session `file` and shows the first.
    pub fn push_saved(&mut self, runs: Vec<SavedRun>, file: &std::path::Path) {
        let first = self.runs.len();
        self.runs
            .extend(runs.into_iter().map(|run| Entry::saved(run, file)));
        if self.runs.len() > first {
            self.selected = Some(first);
            self.compare = None;
        }
    }

    /// The finished runs among `indices` (all runs for `None`), as a session
    /// saves them: shared, so a save thread copies nothing.
    pub fn finished(&self, indices: Option<&[usize]>) -> Vec<(Arc<Recording>, Arc<Machine>)> {
        let all: Vec<usize> = (0..self.runs.len()).collect();
        indices
            .unwrap_or(&all)
            .iter()
            .filter_map(|&i| self.runs.get(i))
            .filter(|e| !e.rec.is_running())
            .map(|e| (e.rec.clone(), e.machine.clone()))
            .collect()
    }

    /// Feeds a run's new events into its recording.
    pub fn ingest(&mut self, index: usize, events: impl IntoIterator<Item = RunEvent>) {
        if let Some(entry) = self.runs.get_mut(index) {
            entry.ingest(events);
        }
    }

    /// Notes what the running run looks like now (its unfinished tasks, the
    /// time), so the timeline and figures move on between events.
    pub fn observe(&mut self, index: usize, in_flight: Vec<Option<InFlight>>) {
        if let Some(entry) = self.runs.get_mut(index) {
            entry.observe(crate::sys::monotonic_ns(), in_flight);
        }
    }

    /// Each run whose [`Entry::machine_busy`] may still grow, with `busy`'s
    /// stretches for it: busy cores among `cpus` over its time, from this
    /// machine's utilisation samples. Samples only arrive, so each run asks
    /// only for those after its last stretch (none, most frames).
    pub fn sample_machine(
        &mut self,
        now_ns: u64,
        give_up_ns: u64,
        busy: impl Fn(u64, u64) -> Vec<Busy>,
    ) {
        for entry in &mut self.runs {
            if entry.samples_machine(now_ns, give_up_ns) {
                let origin = entry.rec.origin_ns;
                let after = entry
                    .machine_busy
                    .last()
                    .map_or(origin, |b| origin + b.to_ns);
                let new = busy(after, now_ns)
                    .into_iter()
                    .filter_map(|b| b.since(origin));
                entry.machine_busy.extend(new);
            }
        }
    }

    pub fn get(&self, index: usize) -> Option<&Entry> {
        self.runs.get(index)
    }

    /// The recording of the selected run.
    pub fn selected_rec(&self) -> Option<&Recording> {
        self.selected.and_then(|i| self.get(i)).map(|e| &*e.rec)
    }

    pub fn len(&self) -> usize {
        self.runs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// The timeline's view of runs `indices` (those that exist).
    pub fn views(&self, indices: &[usize]) -> Vec<RunView<'_>> {
        indices
            .iter()
            .filter_map(|&index| Some(self.get(index)?.view(index)))
            .collect()
    }

    /// The runs to draw: the selected one, then the compared one if any.
    pub fn shown(&self) -> Vec<usize> {
        let mut shown: Vec<usize> = self.selected.into_iter().collect();
        shown.extend(self.compare.filter(|&c| Some(c) != self.selected));
        shown
    }

    /// The run a speedup of run `index` is measured against, or why it has none.
    ///
    /// Only a run that did all its work is compared, and only with another
    /// such run of the same work on fewer cores, or on the same cores with
    /// fewer threads (never more of either), made on the same machine (a
    /// reopened session's may not be this one). A one-core baseline is
    /// preferred, then the latest. `topo`: that machine's cores.
    pub fn baseline_for(&self, index: usize, topo: &Topology) -> Result<Baseline, NoSpeedup> {
        let run = self.runs.get(index).ok_or(NoSpeedup::NoBaseline)?;
        let this = &run.rec;
        if let Some(why) = unfinished(this) {
            return Err(why);
        }
        let same_machine =
            |other: &Entry| other.synthetic == run.synthetic && other.machine.same_as(&run.machine);
        let (threads, cores) = (this.config.threads, this.config.cores_used(topo));
        self.runs
            .iter()
            .enumerate()
            .filter(|&(i, entry)| {
                i != index
                    && unfinished(&entry.rec).is_none()
                    && same_work(&entry.rec.config, &this.config)
                    && same_machine(entry)
            })
            .filter_map(|(i, entry)| {
                let c = &entry.rec.config;
                let base_cores = c.cores_used(topo);
                let gain = if base_cores < cores && c.threads <= threads {
                    Gain::Parallelism
                } else if base_cores == cores && c.threads < threads {
                    Gain::Concurrency
                } else {
                    return None;
                };
                Some(Baseline {
                    index: i,
                    gain,
                    cores: base_cores,
                })
            })
            .min_by_key(|b| (b.cores, std::cmp::Reverse(b.index)))
            .ok_or(NoSpeedup::NoBaseline)
    }

    pub fn ui(&mut self, ui: &mut Ui) {
        ui.heading("Runs");
        if self.runs.is_empty() {
            ui.label("No runs yet.");
            return;
        }
        if self.runs.len() > 1 {
            ui.label(
                RichText::new("Click a run to show it; \"compare\" stacks a second one under it.")
                    .weak(),
            );
        }
        egui::ScrollArea::vertical()
            .id_salt("history")
            .max_height(200.0)
            .show(ui, |ui| {
                for i in (0..self.runs.len()).rev() {
                    let entry = &self.runs[i];
                    let status = match entry.rec.status {
                        RunStatus::Running => "running".to_string(),
                        RunStatus::Finished => human_ns(entry.metrics.wall_ns),
                        RunStatus::Cancelled => "stopped".to_string(),
                    };
                    let from = entry
                        .file
                        .as_ref()
                        .map(|f| format!(" · from {f}"))
                        .unwrap_or_default();
                    let text = format!("{} — {status}{from}", entry.name(i));
                    ui.horizontal(|ui| {
                        if ui
                            .selectable_label(self.selected == Some(i), text)
                            .clicked()
                        {
                            self.selected = Some(i);
                        }
                        let comparing = self.compare == Some(i);
                        let compare = ui
                            .selectable_label(comparing, "compare")
                            .on_hover_text(format!("Stack run #{} under the shown run", i + 1));
                        if compare.clicked() {
                            self.compare = if comparing { None } else { Some(i) };
                        }
                    });
                }
            });
    }
}

/// Why a run did not do all its configured work, if it did not: such a run's
/// wall is no measure of that work, so it neither gets nor serves as a speedup.
fn unfinished(rec: &Recording) -> Option<NoSpeedup> {
    match rec.status {
        RunStatus::Running => Some(NoSpeedup::Running),
        RunStatus::Cancelled => Some(NoSpeedup::Stopped),
        RunStatus::Finished if !rec.failures.is_empty() => Some(NoSpeedup::Failed),
        RunStatus::Finished => None,
    }
}

/// Whether two runs did the same work: the same workload, tasks and task
/// duration or iterations (and, for Amdahl, the same serial fraction).
fn same_work(a: &RunConfig, b: &RunConfig) -> bool {
    a.workload == b.workload
        && a.tasks == b.tasks
        && a.task_ms == b.task_ms
        && a.task_iters == b.task_iters
        && (a.workload != WorkloadKind::Amdahl || a.serial == b.serial)
}

/// "running: 12 of 40 tasks done · 1.2 s elapsed · about 3.4 s left".
fn progress(rec: &Recording) -> String {
    if rec.program.is_some() {
        let n = rec.threads.len();
        return format!(
            "recording: {n} thread{} seen · {} elapsed",
            if n == 1 { "" } else { "s" },
            human_ns(rec.elapsed_ns())
        );
    }
    // Counted as they arrived: the raw tasks of a long run are not all kept.
    let done = rec.task_totals.recorded as usize;
    let elapsed = rec.elapsed_ns();
    if rec.config.until_stop {
        return format!(
            "running until Stop: {done} tasks done · {} elapsed",
            human_ns(elapsed)
        );
    }
    let planned = rec.config.tasks;
    // At the rate so far; before any task ended, from the estimate.
    let left = if done > 0 {
        elapsed as f64 / done as f64 * planned.saturating_sub(done) as f64
    } else {
        (estimated_ns(&rec.config, Topology::get()) - elapsed as f64).max(0.0)
    };
    format!(
        "running: {done} of {planned} tasks done · {} elapsed · about {} left",
        human_ns(elapsed),
        human_ns(left as u64)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::Placement;
    use crate::workload::WorkloadKind::{Amdahl, Cpu, Io};

    #[test]
    fn a_running_run_takes_each_utilisation_sample_once() {
        let mut history = History::default();
        let index = history.push(Recording::new(RunConfig::defaults(Topology::get())));
        history.ingest(
            index,
            [RunEvent::Started {
                origin_ns: 1_000,
                threads: Vec::new(),
                sched_source: crate::telemetry::sched::SchedSource::Off,
                sched_note: None,
            }],
        );
        // Samples every 100 ns from 900, as a sampler's history holds them.
        let samples: Vec<Busy> = (0..10)
            .map(|k| Busy {
                from_ns: 900 + k * 100,
                to_ns: 1_000 + k * 100,
                cores: k as f64,
            })
            .collect();
        let samples = &samples;
        let sampler = |upto: u64| {
            move |from: u64, to: u64| -> Vec<Busy> {
                samples
                    .iter()
                    .copied()
                    .filter(|b| b.to_ns <= upto && b.to_ns > from && b.from_ns < to)
                    .collect()
            }
        };
        for upto in [1_000, 1_350, 1_350, 1_900] {
            history.sample_machine(upto, 0, sampler(upto));
        }
        let got: Vec<(u64, u64)> = history.runs[index]
            .machine_busy
            .iter()
            .map(|b| (b.from_ns, b.to_ns))
            .collect();
        // Run-relative, the one before the origin left out, none twice.
        let want: Vec<(u64, u64)> = (0..9).map(|k| (k * 100, (k + 1) * 100)).collect();
        assert_eq!(got, want);
    }

    /// A lane's spans and the recording's slices they name stay paired once
    /// a streamed capture ends and its slices are put in a report's order.
    #[test]
    fn streamed_slices_keep_their_lanes_items_when_the_report_regroups_them() {
        use crate::telemetry::sched::{SchedReport, SchedSlice, SchedSource, SliceState};
        let slice = |thread, core, start_ns| {
            SchedSlice::new(thread, core, SliceState::Running, start_ns, start_ns + 10)
        };
        let mut entry = Entry::new(Recording::new(work(Cpu, 2, Placement::Spread)));
        entry.ingest([
            RunEvent::Started {
                origin_ns: 1,
                threads: vec![Default::default(); 2],
                sched_source: SchedSource::Perf,
                sched_note: None,
            },
            // Threads interleaved, as a live capture streams them.
            RunEvent::Slices(vec![slice(0, 0, 0), slice(1, 1, 0), slice(0, 0, 20)]),
            RunEvent::Slices(vec![slice(1, 1, 20), slice(0, 1, 40)]),
        ]);
        let mut report = SchedReport::of_slices(SchedSource::Perf, Vec::new(), Vec::new());
        report.streamed = true;
        entry.ingest([
            RunEvent::Sched(report),
            RunEvent::Finished {
                wall_ns: 60,
                cancelled: false,
            },
        ]);
        let regrouped: Vec<usize> = entry
            .rec
            .slices()
            .iter()
            .map(crate::telemetry::sched::SchedSlice::thread)
            .collect();
        assert_eq!(regrouped, [0, 0, 0, 1, 1], "a report's order");
        let tl = &entry.timeline;
        let mut checked = 0;
        for (core, lane) in tl.cores.iter().enumerate() {
            for i in 0..lane.len() {
                let span = lane.get(i);
                let named = entry.rec.slice(span.item).expect("a kept slice");
                assert_eq!(
                    (named.core(), named.thread(), named.start_ns, named.end_ns),
                    (core, usize::from(span.class), span.start_ns, span.end_ns),
                    "core {core}, span {i}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 5);
    }

    #[test]
    fn a_reopened_run_is_drawn_on_the_machine_it_ran_on() {
        let layout = crate::topology::Layout::synthetic(2, 4, 2, 4);
        let machine = Machine {
            allowed_cores: (0..16).collect(),
            cpu_iters_per_ms: 1.0,
            layout: layout.clone(),
        };
        let run = SavedRun {
            recording: Recording::new(RunConfig::defaults(Topology::get())),
            machine,
        };
        let entry = Entry::saved(run, std::path::Path::new("/x/there.pftrace"));
        let topo = entry.view(0).topo;
        assert_eq!(topo.allowed, (0..16).collect::<Vec<_>>());
        assert_eq!(topo.layout, layout);
        assert_eq!(entry.file.as_deref(), Some("there.pftrace"));
        assert!(!entry.synthetic, "measured, elsewhere");
        // A run made here is drawn on this machine.
        let here = Entry::new(Recording::new(RunConfig::defaults(Topology::get())));
        assert!(std::ptr::eq(here.view(0).topo, Topology::get()));
    }

    /// A fixed two-core machine, whatever this one has.
    fn two_cores() -> Topology {
        Topology::with_layout(vec![0, 1], 2, crate::topology::Layout::default())
    }

    /// Eight tasks of `workload`, the defaults otherwise.
    fn work(workload: WorkloadKind, threads: usize, placement: Placement) -> RunConfig {
        RunConfig {
            workload,
            threads,
            placement,
            tasks: 8,
            ..RunConfig::defaults(&two_cores())
        }
    }

    fn ended(config: RunConfig, status: RunStatus) -> Recording {
        Recording {
            status,
            ..Recording::new(config)
        }
    }

    fn finished(workload: WorkloadKind, threads: usize, placement: Placement) -> Recording {
        ended(work(workload, threads, placement), RunStatus::Finished)
    }

    /// The baselines of `runs`, pushed in order, on two cores.
    fn baselines(runs: Vec<Recording>) -> Vec<Result<Baseline, NoSpeedup>> {
        let mut history = History::default();
        for rec in runs {
            history.push(rec);
        }
        (0..history.len())
            .map(|i| history.baseline_for(i, &two_cores()))
            .collect()
    }

    /// A one-core baseline.
    fn vs(index: usize, gain: Gain) -> Result<Baseline, NoSpeedup> {
        Ok(Baseline {
            index,
            gain,
            cores: 1,
        })
    }

    const NONE: Result<Baseline, NoSpeedup> = Err(NoSpeedup::NoBaseline);

    #[test]
    fn a_run_until_stop_tells_no_time_left() {
        let config = |until_stop| RunConfig {
            until_stop,
            ..work(Io, 2, Placement::Spread)
        };
        let caption = |until_stop| {
            let mut rec = Recording::new(config(until_stop));
            rec.task_totals.recorded = 3;
            rec.seen_ns = 2_000_000_000;
            Entry::new(rec).caption(0)
        };
        let endless = caption(true);
        assert!(
            endless.contains("running until Stop: 3 tasks done") && !endless.contains("left"),
            "{endless}"
        );
        let planned = caption(false);
        assert!(
            planned.contains("3 of 8 tasks done · 2.00 s elapsed · about"),
            "{planned}"
        );
    }

    #[test]
    fn speedup_baseline_is_the_same_work_on_fewer_cores_preferring_one_core() {
        let other_work = RunConfig {
            tasks: 16,
            ..work(Cpu, 1, Placement::OneCore(0))
        };
        let found = baselines(vec![
            finished(Cpu, 2, Placement::OneCore(0)),
            ended(other_work, RunStatus::Finished),
            finished(Cpu, 2, Placement::Spread),
            // The same thread count on one core again: nothing changed.
            finished(Cpu, 2, Placement::OneCore(1)),
            finished(Cpu, 2, Placement::List(vec![1, 1])),
            // More threads on one core: no baseline for the two-thread runs.
            finished(Cpu, 4, Placement::OneCore(0)),
            finished(Cpu, 2, Placement::Spread),
            // The two-core runs would do too, and are later, but one core is preferred.
            finished(Cpu, 4, Placement::Unpinned),
        ]);
        assert_eq!(
            found,
            [
                NONE,
                NONE,
                vs(4, Gain::Parallelism),
                NONE,
                NONE,
                vs(4, Gain::Concurrency),
                vs(4, Gain::Parallelism),
                vs(5, Gain::Parallelism),
            ],
        );
    }

    #[test]
    fn a_speedup_is_never_taken_from_a_run_on_another_machine() {
        let saved = |rec: Recording, machine: Machine| SavedRun {
            recording: rec,
            machine,
        };
        let elsewhere = Machine {
            allowed_cores: (0..16).collect(),
            ..Machine::this()
        };
        // From before layouts were kept: known only by its allowed cores.
        let here_long_ago = Machine {
            layout: crate::topology::Layout::default(),
            ..Machine::this()
        };
        let mut history = History::default();
        history.push(finished(Cpu, 2, Placement::Spread));
        history.push_saved(
            vec![
                saved(finished(Cpu, 1, Placement::OneCore(0)), elsewhere.clone()),
                saved(finished(Cpu, 2, Placement::Spread), elsewhere),
            ],
            std::path::Path::new("there.pftrace"),
        );
        let found = |h: &History| -> Vec<_> {
            (0..h.len())
                .map(|i| h.baseline_for(i, &two_cores()))
                .collect()
        };
        assert_eq!(
            found(&history),
            [NONE, NONE, vs(1, Gain::Parallelism)],
            "the two-core run here has no baseline; the saved pair has its own"
        );
        history.push_saved(
            vec![saved(
                finished(Cpu, 1, Placement::OneCore(0)),
                here_long_ago,
            )],
            std::path::Path::new("here.pftrace"),
        );
        assert_eq!(found(&history)[0], vs(3, Gain::Parallelism));
    }

    #[test]
    fn more_threads_on_the_same_cores_is_a_speedup_from_concurrency() {
        let one_core = baselines(vec![
            finished(Io, 1, Placement::OneCore(0)),
            finished(Io, 2, Placement::OneCore(0)),
        ]);
        assert_eq!(one_core, [NONE, vs(0, Gain::Concurrency)]);
        let two_cores = baselines(vec![
            finished(Io, 2, Placement::Spread),
            finished(Io, 4, Placement::Unpinned),
        ]);
        let gain = Gain::Concurrency;
        assert_eq!(
            two_cores[1],
            Ok(Baseline {
                index: 0,
                gain,
                cores: 2
            })
        );
    }

    #[test]
    fn unfinished_runs_get_no_speedup_and_are_no_baseline() {
        use NoSpeedup::*;
        let one_core = || work(Cpu, 1, Placement::OneCore(0));
        let found = baselines(vec![
            finished(Cpu, 1, Placement::OneCore(0)),
            // Each would be a later, so preferred, baseline if it counted.
            ended(one_core(), RunStatus::Cancelled),
            ended(one_core(), RunStatus::Running),
            Recording {
                failures: vec!["worker-0 could not be pinned to core 0".into()],
                ..finished(Cpu, 1, Placement::OneCore(0))
            },
            finished(Cpu, 2, Placement::Spread),
            ended(work(Cpu, 2, Placement::Spread), RunStatus::Cancelled),
            ended(work(Cpu, 2, Placement::Spread), RunStatus::Running),
        ]);
        assert_eq!(
            found,
            [
                NONE,
                Err(Stopped),
                Err(Running),
                Err(Failed),
                vs(0, Gain::Parallelism),
                Err(Stopped),
                Err(Running),
            ]
        );
    }

    #[test]
    fn amdahl_runs_compare_only_at_the_same_serial_fraction() {
        let other_serial = RunConfig {
            serial: 0.5,
            ..work(Amdahl, 1, Placement::OneCore(0))
        };
        let found = baselines(vec![
            finished(Amdahl, 1, Placement::OneCore(0)),
            ended(other_serial, RunStatus::Finished),
            finished(Amdahl, 2, Placement::Spread),
        ]);
        assert_eq!(found[2], vs(0, Gain::Parallelism), "not the later run, 1");
    }

    #[test]
    fn shown_is_the_selected_run_then_the_compared_one() {
        let mut history = History::default();
        let first = history.push(finished(Cpu, 1, Placement::Spread));
        let second = history.push(finished(Cpu, 2, Placement::Spread));
        assert_eq!(history.shown(), vec![second]);
        history.compare = Some(first);
        assert_eq!(history.shown(), vec![second, first]);
        history.compare = Some(second);
        assert_eq!(history.shown(), vec![second]);
    }
}
