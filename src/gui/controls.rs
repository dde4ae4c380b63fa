//! The experiment's controls: what to run, on how many threads, pinned where.
//! Number fields keep their text as typed; text that is not a number, or a
//! value [`RunConfig::validate`] refuses, is marked with its sentence, which
//! is also shown beside a disabled Run button. A run estimated over a minute
//! asks before it starts.

use eframe::egui;
use egui::{Button, ComboBox, RichText, Stroke, StrokeKind, TextEdit, Ui};

use super::palette;
use crate::run::{ConfigError, Placement, RunConfig, ValidConfig};
use crate::telemetry::sched::SchedMode;
use crate::topology::Topology;
use crate::workload::WorkloadKind;

/// Most rows the custom grid keeps: beyond the engine's thread limit the count is invalid anyway.
const GRID_ROWS: usize = crate::run::MAX_THREADS;

/// How the threads are placed, as the radio buttons offer it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlacementChoice {
    OneCore,
    Spread,
    Unpinned,
    Custom,
}

/// Runs estimated to take longer than this ask before they start.
const ASK_ABOVE_NS: f64 = 60e9;

/// What the user asked the controls to do.
#[derive(Clone, Debug)]
pub enum Action {
    Run(ValidConfig),
    /// The concurrency preset, then the parallelism preset, then compare them.
    RunBoth(Vec<ValidConfig>),
    /// Record a program instead of running a workload.
    Record(crate::record::RecordConfig),
    /// Run a lesson of the Experiments view.
    Lesson(crate::lesson::LessonId),
    /// Save the lesson's page (claim, verdict, pictures) as PNG here.
    SaveSlide(std::path::PathBuf),
    Stop,
}

/// Why the controls cannot run, in one sentence.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Invalid {
    /// A number field: its text is not a number, or the engine refuses its value.
    #[error("{0}")]
    Field(String),
    /// The engine refuses the configuration as a whole (the placement).
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// A kind of number a field holds.
pub trait Number: Copy + std::fmt::Display {
    /// What to type, as in "type a number".
    const KIND: &'static str;
    /// Reads trimmed, non-empty text, or says what is wrong with it.
    fn read(text: &str) -> Result<Self, String>;
}

impl Number for usize {
    const KIND: &'static str = "a positive whole number";
    fn read(text: &str) -> Result<usize, String> {
        text.parse().map_err(|e: std::num::ParseIntError| {
            let negative = text
                .strip_prefix('-')
                .is_some_and(|digits| digits.parse::<u128>().is_ok());
            match e.kind() {
                std::num::IntErrorKind::PosOverflow => format!("{text} is too large"),
                _ if negative => format!("{text} is negative: type {}", Self::KIND),
                _ => format!("'{text}' is not a whole number"),
            }
        })
    }
}

impl Number for f64 {
    const KIND: &'static str = "a number";
    fn read(text: &str) -> Result<f64, String> {
        // Rust also reads "inf" and "NaN": not values anyone means to run.
        text.parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| format!("'{text}' is not a number"))
    }
}

/// A number field: the text exactly as typed, kept when it is not a valid
/// number, so that a mistake stays visible until the user corrects it.
#[derive(Clone, Debug)]
pub struct Field<T> {
    text: String,
    /// The value of the latest text that could be read, for what must be
    /// laid out while the user is still typing (the custom grid's rows).
    last: T,
}

impl<T: Number> Field<T> {
    pub fn new(value: T) -> Field<T> {
        Field {
            text: value.to_string(),
            last: value,
        }
    }

    /// Replaces the text, as typing would.
    pub fn set(&mut self, text: impl Into<String>) {
        self.text = text.into();
        self.edited();
    }

    fn edited(&mut self) {
        if let Ok(value) = self.read("") {
            self.last = value;
        }
    }

    /// The value typed; `noun` names it in the sentence saying why there is none.
    fn read(&self, noun: &str) -> Result<T, String> {
        let text = self.text.trim();
        if text.is_empty() {
            return Err(format!("{noun} is empty: type {}", T::KIND));
        }
        T::read(text).map_err(|why| format!("{noun} {why}"))
    }
}

/// The number fields' values, each checked alone, or the sentence saying why not.
struct Values {
    threads: Result<usize, String>,
    tasks: Result<usize, String>,
    task_ms: Result<f64, String>,
    serial: Result<f64, String>,
}

/// The controls' values, raw: they may be invalid until validated.
#[derive(Clone, Debug)]
pub struct Controls {
    pub workload: WorkloadKind,
    pub threads: Field<usize>,
    pub tasks: Field<usize>,
    pub task_ms: Field<f64>,
    pub choice: PlacementChoice,
    /// The core of [`PlacementChoice::OneCore`].
    pub core: usize,
    /// One core per thread for [`PlacementChoice::Custom`]; it keeps the
    /// cores of threads beyond the current count, for when it is raised again.
    pub custom: Vec<usize>,
    pub serial: Field<f64>,
    pub sched: SchedMode,
    /// Also capture what else ran on the cores (privileged, opt-in).
    pub system_wide: bool,
    /// `--task-iters` as given on the command line: kept, shown, and
    /// dropped by one click (no field to type it: it is for scripted runs).
    pub task_iters: Option<u64>,
    /// Run until Stop: the task queue never runs dry.
    pub until_stop: bool,
    /// A run estimated over [`ASK_ABOVE_NS`], waiting for the user to confirm it.
    confirm: Option<Action>,
}

impl Controls {
    pub fn from_config(config: &RunConfig, topo: &Topology) -> Controls {
        let (choice, core, custom) = match &config.placement {
            Placement::OneCore(core) => (PlacementChoice::OneCore, *core, Vec::new()),
            Placement::Spread => (PlacementChoice::Spread, topo.allowed[0], Vec::new()),
            Placement::Unpinned => (PlacementChoice::Unpinned, topo.allowed[0], Vec::new()),
            Placement::List(list) => (PlacementChoice::Custom, topo.allowed[0], list.clone()),
        };
        let mut controls = Controls {
            workload: config.workload,
            threads: Field::new(config.threads),
            tasks: Field::new(config.tasks),
            task_ms: Field::new(config.task_ms),
            choice,
            core,
            custom,
            serial: Field::new(config.serial),
            sched: config.sched,
            system_wide: config.system_wide,
            task_iters: config.task_iters,
            until_stop: config.until_stop,
            confirm: None,
        };
        if controls.choice != PlacementChoice::Custom {
            controls.fit_custom_to_threads(topo);
        }
        controls
    }

    /// Reads each number field, and asks the engine about its value alone
    /// (the other fields at their defaults), so that every wrong field is
    /// named at once, in the engine's own words.
    fn values(&self, topo: &Topology) -> Values {
        fn check<T: Number>(
            field: &Field<T>,
            noun: &str,
            topo: &Topology,
            set: impl FnOnce(&mut RunConfig, T),
        ) -> Result<T, String> {
            let value = field.read(noun)?;
            let mut alone = RunConfig::defaults(topo);
            set(&mut alone, value);
            alone.validate(topo).map_err(|e| e.to_string())?;
            Ok(value)
        }
        Values {
            threads: check(&self.threads, "thread count", topo, |c, v| c.threads = v),
            tasks: check(&self.tasks, "task count", topo, |c, v| c.tasks = v),
            task_ms: check(&self.task_ms, "task duration", topo, |c, v| c.task_ms = v),
            serial: check(&self.serial, "serial fraction", topo, |c, v| c.serial = v),
        }
    }

    /// Why each field in use cannot run, in the order they are laid out.
    fn problems<'a>(&self, values: &'a Values) -> impl Iterator<Item = &'a String> {
        let amdahl = self.workload == WorkloadKind::Amdahl;
        [
            values.threads.as_ref().err(),
            values.tasks.as_ref().err(),
            values.task_ms.as_ref().err(),
            values.serial.as_ref().err().filter(|_| amdahl),
        ]
        .into_iter()
        .flatten()
    }

    pub fn validate(&self, topo: &Topology) -> Result<ValidConfig, Invalid> {
        let values = self.values(topo);
        if let Some(why) = self.problems(&values).next() {
            return Err(Invalid::Field(why.clone()));
        }
        let placement = match self.choice {
            PlacementChoice::OneCore => Placement::OneCore(self.core),
            PlacementChoice::Spread => Placement::Spread,
            PlacementChoice::Unpinned => Placement::Unpinned,
            PlacementChoice::Custom => Placement::List(self.custom[..self.custom_rows()].to_vec()),
        };
        let config = RunConfig {
            workload: self.workload,
            // problems() returned any error of these three.
            threads: values.threads.unwrap_or_default(),
            tasks: values.tasks.unwrap_or_default(),
            task_ms: values.task_ms.unwrap_or_default(),
            // Other workloads ignore a wrong one: the run records the default.
            serial: values
                .serial
                .unwrap_or_else(|_| RunConfig::defaults(topo).serial),
            placement,
            sched: self.sched,
            system_wide: self.system_wide,
            task_iters: self.task_iters,
            until_stop: self.until_stop,
        };
        Ok(config.validate(topo)?)
    }

    /// The concurrency preset: as many CPU-bound threads as allowed cores, all on one core.
    pub fn concurrency_preset(&self, topo: &Topology) -> Controls {
        self.preset(topo, PlacementChoice::OneCore)
    }

    /// The parallelism preset: one CPU-bound thread on each allowed core.
    pub fn parallelism_preset(&self, topo: &Topology) -> Controls {
        self.preset(topo, PlacementChoice::Spread)
    }

    /// These controls with CPU-bound work on one thread per allowed core, placed by `choice`.
    fn preset(&self, topo: &Topology, choice: PlacementChoice) -> Controls {
        let mut preset = Controls {
            workload: WorkloadKind::Cpu,
            threads: Field::new(topo.allowed.len()),
            confirm: None,
            choice,
            core: topo.allowed[0],
            ..self.clone()
        };
        preset.fit_custom_to_threads(topo);
        preset
    }

    /// Gives each thread a custom core, new threads the spread placement's.
    /// Never forgets one: a thread count lowered (even to 0) and raised again
    /// brings back the cores chosen before.
    fn fit_custom_to_threads(&mut self, topo: &Topology) {
        let n = self.threads.last.min(GRID_ROWS);
        let allowed = &topo.allowed;
        let len = self.custom.len();
        self.custom
            .extend((len..n).map(|i| allowed[i % allowed.len()]));
    }

    /// The custom grid's rows: one per thread, as far as there are cores chosen.
    fn custom_rows(&self) -> usize {
        self.threads.last.min(self.custom.len())
    }

    /// Draws the controls; `busy` while a run is in progress.
    pub fn ui(&mut self, ui: &mut Ui, busy: bool, topo: &Topology) -> Option<Action> {
        ui.heading("Experiment");
        let values = self.values(topo);
        egui::Grid::new("controls")
            .num_columns(2)
            .spacing([8.0, 6.0])
            .show(ui, |ui| {
                self.numbers_ui(ui, &values, topo);
            });
        ui.add_space(4.0);
        self.placement_ui(ui, topo);
        ui.add_space(6.0);
        let mut action = self.presets_ui(ui, busy, topo);
        ui.separator();
        // Read again: the fields may have been edited in this frame.
        let values = self.values(topo);
        let valid = self.validate(topo);
        ui.horizontal(|ui| {
            let run = ui
                .add_enabled(
                    valid.is_ok() && !busy,
                    Button::new(RichText::new("Run").strong()).min_size([70.0, 26.0].into()),
                )
                .on_hover_text("Run this experiment (Space or Enter)")
                .on_disabled_hover_text(why_not_run(busy, [&valid]));
            if run.clicked()
                && let Ok(valid) = &valid
            {
                action = self.ask_if_long(Action::Run(valid.clone()), topo);
            }
            let stop = ui
                .add_enabled(busy, Button::new("Stop").min_size([70.0, 26.0].into()))
                .on_hover_text("Stop the run after each thread's current step (Escape)")
                .on_disabled_hover_text("No run is in progress");
            if stop.clicked() {
                action = Some(Action::Stop);
            }
        });
        // Every field's problem, not only the first: the user sees all there is to fix.
        let problems: Vec<String> = match &valid {
            Err(Invalid::Field(_)) => self.problems(&values).cloned().collect(),
            Err(why) => vec![why.to_string()],
            Ok(_) => Vec::new(),
        };
        for why in problems {
            ui.label(RichText::new(why).color(palette::WARNING));
        }
        action.or_else(|| self.confirm_ui(ui.ctx(), topo))
    }

    /// Run, as the keyboard asks for it: `None` if the controls cannot run
    /// or the run waits for the user to confirm it.
    pub fn run_requested(&mut self, topo: &Topology) -> Option<Action> {
        let valid = self.validate(topo).ok()?;
        self.ask_if_long(Action::Run(valid), topo)
    }

    /// True while a long run waits for the user's answer.
    pub fn confirming(&self) -> bool {
        self.confirm.is_some()
    }

    /// `action` itself if it is estimated to take a minute or less; else
    /// `None`, and the user is asked first.
    fn ask_if_long(&mut self, action: Action, topo: &Topology) -> Option<Action> {
        if action_estimated_ns(&action, topo) <= ASK_ABOVE_NS {
            return Some(action);
        }
        self.confirm = Some(action);
        None
    }

    /// The question before a long run, over the whole window; the run if
    /// the user confirms it.
    fn confirm_ui(&mut self, ctx: &egui::Context, topo: &Topology) -> Option<Action> {
        let action = self.confirm.as_ref()?;
        let what = match action {
            Action::RunBoth(_) => "The two runs are",
            _ => "This run is",
        };
        let about = long_duration(action_estimated_ns(action, topo));
        let modal = egui::Modal::new(egui::Id::unique("confirm-long-run")).show(ctx, |ui| {
            ui.set_max_width(380.0);
            ui.heading("A long run");
            ui.label(format!("{what} estimated to take about {about}."));
            ui.label(
                RichText::new(
                    "An estimate from the tasks, their duration, and the cores (for waiting tasks, the threads) the run can use.",
                )
                .weak(),
            );
            ui.label("Run anyway?");
            ui.horizontal(|ui| {
                let run = ui.button("Run anyway").clicked();
                let cancel = ui.button("Cancel").clicked();
                (run, cancel)
            })
            .inner
        });
        let (run, cancel) = modal.inner;
        if run {
            return self.confirm.take();
        }
        if cancel || modal.should_close() {
            self.confirm = None;
        }
        None
    }

    fn numbers_ui(&mut self, ui: &mut Ui, values: &Values, topo: &Topology) {
        choice_row(
            ui,
            "Workload",
            &mut self.workload,
            &WorkloadKind::ALL,
            |k| (k.name(), k.describe()),
        );
        let threads = number_row(
            ui,
            "Threads",
            &mut self.threads,
            &values.threads,
            "",
            "Worker threads; each takes tasks from a shared queue until none are left",
            None,
        );
        if threads {
            self.fit_custom_to_threads(topo);
        }
        let endless = self.until_stop && self.workload != WorkloadKind::Amdahl;
        number_row(
            ui,
            "Tasks",
            &mut self.tasks,
            &values.tasks,
            "",
            "Tasks in total, shared by the threads",
            endless.then_some("Run until Stop: the threads take tasks until you press Stop"),
        );
        number_row(
            ui,
            "Task duration",
            &mut self.task_ms,
            &values.task_ms,
            "ms",
            "Nominal length of one task: computation, sleep or disk writes, by workload",
            None,
        );
        if let Some(iters) = self.task_iters {
            ui.horizontal(|ui| {
                ui.label(format!("Computation per task: {iters} iterations"))
                    .on_hover_text(
                        "Set by --task-iters: cpu, lock and amdahl tasks compute exactly this many \
                         loop iterations instead of the calibrated duration (mixed: its computing half). \
                         io and disk refuse it.",
                    );
                if ui
                    .small_button("use the duration")
                    .on_hover_text("Drop --task-iters: tasks compute for the task duration again")
                    .clicked()
                {
                    self.task_iters = None;
                }
            });
        }
        // Always laid out, so that choosing amdahl moves nothing below it.
        let amdahl = self.workload == WorkloadKind::Amdahl;
        number_row(
            ui,
            "Serial fraction",
            &mut self.serial,
            &values.serial,
            "",
            "The part of all the work that runs alone before the parallel part, from 0 to 1",
            (!amdahl).then_some("Only the amdahl workload has a serial part: choose it above"),
        );
        choice_row(
            ui,
            "Scheduler capture",
            &mut self.sched,
            &SchedMode::ALL,
            |m| (m.as_str(), describe_sched(m)),
        );
        ui.checkbox(&mut self.system_wide, "Name other programs on the cores")
            .on_hover_text(
                "System-wide capture: the figures name the programs that took the run's cores. \
                 It needs root, CAP_PERFMON or kernel.perf_event_paranoid ≤ 0; without, the run fails with the reason and nothing else is lost. \
                 Off, the capture sees only the run's own threads, as any user may.",
            );
        ui.end_row();
        ui.checkbox(&mut self.until_stop, "Run until Stop")
            .on_hover_text(
                "A steady workload to watch live: the task queue never runs dry, each thread takes task after task \
                 until you press Stop (amdahl runs its serial task once, first). Raw spans are kept for the last \
                 10 minutes or up to the memory budget; older ones as the per-pixel summary only.",
            );
    }

    fn placement_ui(&mut self, ui: &mut Ui, topo: &Topology) {
        ui.label("Placement");
        ui.indent("placement", |ui| {
            ui.horizontal(|ui| {
                ui.radio_value(&mut self.choice, PlacementChoice::OneCore, "one core:")
                    .on_hover_text(
                        "Every thread pinned to the chosen core: concurrency without parallelism",
                    );
                core_picker(ui, "one-core", &mut self.core, topo);
            });
            ui.radio_value(
                &mut self.choice,
                PlacementChoice::Spread,
                "one thread per core (spread)",
            )
            .on_hover_text("Thread i pinned to the i-th allowed core, wrapping around");
            ui.radio_value(&mut self.choice, PlacementChoice::Unpinned, "unpinned")
                .on_hover_text("No pinning: the kernel places and moves the threads");
            ui.radio_value(&mut self.choice, PlacementChoice::Custom, "custom")
                .on_hover_text("Choose each thread's core in a grid");
            if self.choice == PlacementChoice::Custom {
                self.custom_grid_ui(ui, topo);
            }
        });
    }

    /// A grid of threads × cores; a cell pins that thread to that core.
    fn custom_grid_ui(&mut self, ui: &mut Ui, topo: &Topology) {
        egui::ScrollArea::both()
            .max_height(220.0)
            .id_salt("custom-grid")
            .show(ui, |ui| {
                egui::Grid::new("custom")
                    .spacing([2.0, 2.0])
                    .show(ui, |ui| {
                        ui.label("");
                        for core in 0..topo.system_cpus {
                            let text = ui.label(format!("{core}"));
                            if let Some(why) = topo.why_not_allowed(core) {
                                text.on_hover_text(why);
                            }
                        }
                        ui.end_row();
                        let rows = self.custom_rows();
                        for (thread, pinned) in self.custom[..rows].iter_mut().enumerate() {
                            ui.label(format!("worker-{thread}"));
                            for core in 0..topo.system_cpus {
                                let why = topo.why_not_allowed(core);
                                let cell = ui
                                    .add_enabled(
                                        why.is_none(),
                                        egui::RadioButton::new(*pinned == core, ""),
                                    )
                                    .accessible_name(format!("worker-{thread} on core {core}"));
                                let cell = match why {
                                    Some(why) => cell.on_disabled_hover_text(why),
                                    None => cell.on_hover_text(format!(
                                        "Pin worker-{thread} to core {core}"
                                    )),
                                };
                                if cell.clicked() {
                                    *pinned = core;
                                }
                            }
                            ui.end_row();
                        }
                    });
            });
    }

    fn presets_ui(&mut self, ui: &mut Ui, busy: bool, topo: &Topology) -> Option<Action> {
        let n = topo.allowed.len();
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        ui.label("Presets");
        let concurrency = self.concurrency_preset(topo);
        let parallelism = self.parallelism_preset(topo);
        let mut action = None;
        ui.horizontal_wrapped(|ui| {
            let label = format!("Concurrency: {} on one core", plural(n, "thread"));
            if ui
                .button(label)
                .on_hover_text("CPU-bound threads pinned to one core: their tasks overlap in time but run in turns. Sets the controls; press Run.")
                .clicked()
            {
                *self = concurrency.clone();
            }
            let label = format!("Parallelism: {} on {}", plural(n, "thread"), plural(n, "core"));
            if ui
                .button(label)
                .on_hover_text("One CPU-bound thread per core: their tasks run at the same instant. Sets the controls; press Run.")
                .clicked()
            {
                *self = parallelism.clone();
            }
            let both = [concurrency, parallelism].map(|c| c.validate(topo));
            let ready = !busy && both.iter().all(Result::is_ok);
            let run_both = ui
                .add_enabled(ready, Button::new("Run both"))
                .on_hover_text("Runs the concurrency preset, then the parallelism preset, and shows them stacked on one time scale")
                .on_disabled_hover_text(why_not_run(busy, &both));
            if run_both.clicked() {
                let runs = both.into_iter().filter_map(Result::ok).collect();
                action = self.ask_if_long(Action::RunBoth(runs), topo);
            }
        });
        action
    }
}

/// About how long `config` takes, in nanoseconds, from its nominal work:
/// computation shares the cores the run can use, waiting needs no core (as
/// many tasks wait at once as there are threads), a lock lets one task run
/// at a time.
pub fn estimated_ns(config: &RunConfig, topo: &Topology) -> f64 {
    let work = config.tasks as f64 * config.nominal_task_ms() * 1e6;
    let cores = config.cores_used(topo).max(1) as f64;
    let threads = config.threads.max(1) as f64;
    match config.workload {
        WorkloadKind::Cpu => work / cores,
        WorkloadKind::Io | WorkloadKind::Disk => work / threads,
        // Half computing, half waiting: whichever takes longer bounds the run.
        WorkloadKind::Mixed => (work / threads).max(work / 2.0 / cores),
        // Each thread serves its requests one after another; their computing shares the cores.
        WorkloadKind::Server => {
            (work / threads).max(work * crate::workload::SERVER_COMPUTE_SHARE / cores)
        }
        WorkloadKind::Lock => work,
        // The serial part alone, then the rest over the cores.
        WorkloadKind::Amdahl => work * config.serial + work * (1.0 - config.serial) / cores,
    }
}

fn action_estimated_ns(action: &Action, topo: &Topology) -> f64 {
    match action {
        // It lasts until Stop: nothing to estimate, nothing to ask.
        Action::Run(valid) if valid.config.until_stop => 0.0,
        Action::Run(valid) => estimated_ns(&valid.config, topo),
        Action::RunBoth(runs) => runs.iter().map(|v| estimated_ns(&v.config, topo)).sum(),
        // A program's length is its own; nothing to ask.
        Action::Record(_) | Action::Lesson(_) | Action::SaveSlide(_) | Action::Stop => 0.0,
    }
}

/// A long duration in the largest unit it fills: "9.5 years", "1.3 minutes".
fn long_duration(ns: f64) -> String {
    const UNITS: [(f64, &str); 5] = [
        (365.25 * 86_400.0, "years"),
        (86_400.0, "days"),
        (3_600.0, "hours"),
        (60.0, "minutes"),
        (1.0, "seconds"),
    ];
    let s = ns / 1e9;
    let (size, name) = UNITS
        .into_iter()
        .find(|&(size, _)| s >= size)
        .unwrap_or(UNITS[4]);
    format!("{:.1} {name}", s / size)
}

/// Why a run button is disabled: a run in progress, or the first reason
/// one of its configurations cannot run.
fn why_not_run<'a>(
    busy: bool,
    configs: impl IntoIterator<Item = &'a Result<ValidConfig, Invalid>>,
) -> String {
    if busy {
        return "A run is in progress: wait for it or press Stop".into();
    }
    configs
        .into_iter()
        .find_map(|c| c.as_ref().err())
        .map(ToString::to_string)
        .unwrap_or_default()
}

/// A number field on one grid row: its label, the text as typed, its unit.
/// Text that cannot run is framed and written in the warning colour, its
/// reason is the field's tooltip, and screen readers hear it as invalid, with
/// that reason. `disabled`: why the field is not in use, if it is not.
/// Returns whether the text was edited.
fn number_row<T: Number>(
    ui: &mut Ui,
    label: &str,
    field: &mut Field<T>,
    value: &Result<T, String>,
    unit: &str,
    hint: &str,
    disabled: Option<&str>,
) -> bool {
    let label = ui.label(label);
    // A field not in use is not checked: the run ignores it.
    let problem = value.as_ref().err().filter(|_| disabled.is_none());
    let edit = ui
        .horizontal(|ui| {
            let edit = TextEdit::singleline(&mut field.text)
                .desired_width(90.0)
                .text_color_opt(problem.map(|_| palette::WARNING));
            let edit = ui
                .add_enabled(disabled.is_none(), edit)
                .labelled_by(label.id);
            if !unit.is_empty() {
                ui.label(unit);
            }
            edit
        })
        .inner;
    if let Some(why) = problem {
        ui.painter().rect_stroke(
            edit.rect,
            2.0,
            Stroke::new(1.5, palette::WARNING),
            StrokeKind::Outside,
        );
        ui.ctx().accesskit_node_builder(edit.id, |node| {
            node.set_invalid(egui::accesskit::Invalid::True);
            node.set_description(why.as_str());
        });
    }
    let edit = edit
        .on_hover_text(problem.map_or(hint, String::as_str))
        .on_disabled_hover_text(disabled.unwrap_or_default());
    ui.end_row();
    if edit.changed() {
        field.edited();
    }
    edit.changed()
}

/// A labelled drop-down over `options` on one grid row; `text` gives each
/// option's name and its one-sentence tooltip.
fn choice_row<T: Copy + PartialEq>(
    ui: &mut Ui,
    label: &str,
    value: &mut T,
    options: &[T],
    text: impl Fn(T) -> (&'static str, &'static str),
) {
    let salt = label;
    let label = ui.label(label);
    let (name, tip) = text(*value);
    ComboBox::from_id_salt(salt)
        .selected_text(name)
        .show_ui(ui, |ui| {
            for &option in options {
                let (name, tip) = text(option);
                ui.selectable_value(value, option, name).on_hover_text(tip);
            }
        })
        .response
        .labelled_by(label.id)
        .on_hover_text(tip);
    ui.end_row();
}

/// A core chooser listing every core the system has; cores this process may
/// not use are shown disabled, with the reason.
fn core_picker(ui: &mut Ui, id: &str, core: &mut usize, topo: &Topology) {
    ComboBox::from_id_salt(id)
        .selected_text(format!("core {core}"))
        .show_ui(ui, |ui| {
            for c in 0..topo.system_cpus {
                let why = topo.why_not_allowed(c);
                let option = ui.add_enabled(
                    why.is_none(),
                    Button::selectable(*core == c, format!("core {c}")),
                );
                if let Some(why) = why {
                    option.on_disabled_hover_text(why);
                } else if option.clicked() {
                    *core = c;
                }
            }
        })
        .response
        .accessible_name("core for one-core placement")
        .on_hover_text(format!(
            "Cores this process may use: {}",
            topo.allowed_text()
        ));
}

fn describe_sched(mode: SchedMode) -> &'static str {
    match mode {
        SchedMode::Auto => {
            "Exact capture with perf if the kernel allows it, else sampling of /proc"
        }
        SchedMode::Perf => {
            "Exact: every context switch from perf_event_open (needs kernel.perf_event_paranoid ≤ 2)"
        }
        SchedMode::Procfs => {
            "Coarse: samples each thread's /proc schedstat about every millisecond"
        }
        SchedMode::Off => {
            "No kernel data: core lanes show task lifetimes by the core each task started on"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_follow_what_bounds_each_workload() {
        // A fixed two-core machine, whatever this one has.
        let topo = Topology::with_layout(vec![0, 1], 2, crate::topology::Layout::default());
        // 8 tasks of 1 s on 4 threads spread over the two cores: 8 s of work.
        let seconds = |workload| {
            let config = RunConfig {
                workload,
                threads: 4,
                tasks: 8,
                task_ms: 1000.0,
                placement: Placement::Spread,
                serial: 0.5,
                sched: SchedMode::Off,
                system_wide: false,
                task_iters: None,
                until_stop: false,
            };
            estimated_ns(&config, &topo) / 1e9
        };
        assert_eq!(seconds(WorkloadKind::Cpu), 4.0, "two cores compute");
        assert_eq!(seconds(WorkloadKind::Io), 2.0, "four threads wait");
        assert_eq!(
            seconds(WorkloadKind::Mixed),
            2.0,
            "4 s of computing on 2 cores"
        );
        assert_eq!(seconds(WorkloadKind::Lock), 8.0, "one at a time");
        assert_eq!(
            seconds(WorkloadKind::Amdahl),
            4.0 + 2.0,
            "half alone, half on two cores"
        );
        // The example: 1 000 000 tasks × 600 000 ms on two cores.
        assert_eq!(long_duration(1e6 * 600_000.0 * 1e6 / 2.0), "9.5 years");
        assert_eq!(long_duration(80e9), "1.3 minutes");
    }
}
