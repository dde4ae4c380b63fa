//! The experiment's controls: what to run, on how many threads, pinned where.
//! The view edits raw values; [`RunConfig::validate`] decides whether they can
//! run, and its sentence is shown beside a disabled Run button.

use eframe::egui;
use egui::{Button, ComboBox, DragValue, RichText, Ui};

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

/// What the user asked the controls to do.
#[derive(Debug)]
pub enum Action {
    Run(ValidConfig),
    /// The concurrency preset, then the parallelism preset, then compare them.
    RunBoth(Vec<ValidConfig>),
    Stop,
}

/// The controls' values, raw: they may be invalid until validated.
#[derive(Clone, Debug)]
pub struct Controls {
    pub workload: WorkloadKind,
    pub threads: usize,
    pub tasks: usize,
    pub task_ms: f64,
    pub choice: PlacementChoice,
    /// The core of [`PlacementChoice::OneCore`].
    pub core: usize,
    /// One core per thread for [`PlacementChoice::Custom`].
    pub custom: Vec<usize>,
    pub serial: f64,
    pub sched: SchedMode,
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
            threads: config.threads,
            tasks: config.tasks,
            task_ms: config.task_ms,
            choice,
            core,
            custom,
            serial: config.serial,
            sched: config.sched,
        };
        if controls.choice != PlacementChoice::Custom {
            controls.fit_custom_to_threads(topo);
        }
        controls
    }

    pub fn config(&self) -> RunConfig {
        let placement = match self.choice {
            PlacementChoice::OneCore => Placement::OneCore(self.core),
            PlacementChoice::Spread => Placement::Spread,
            PlacementChoice::Unpinned => Placement::Unpinned,
            PlacementChoice::Custom => Placement::List(self.custom.clone()),
        };
        RunConfig {
            workload: self.workload,
            threads: self.threads,
            tasks: self.tasks,
            task_ms: self.task_ms,
            placement,
            serial: self.serial,
            sched: self.sched,
        }
    }

    pub fn validate(&self, topo: &Topology) -> Result<ValidConfig, ConfigError> {
        self.config().validate(topo)
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
            threads: topo.allowed.len(),
            choice,
            core: topo.allowed[0],
            ..self.clone()
        };
        preset.fit_custom_to_threads(topo);
        preset
    }

    /// Keeps one custom core per thread, giving new threads the spread placement.
    fn fit_custom_to_threads(&mut self, topo: &Topology) {
        let n = self.threads.min(GRID_ROWS);
        let allowed = &topo.allowed;
        let len = self.custom.len();
        self.custom.truncate(n);
        self.custom
            .extend((len..n).map(|i| allowed[i % allowed.len()]));
    }

    /// Draws the controls; `busy` while a run is in progress.
    pub fn ui(&mut self, ui: &mut Ui, busy: bool, topo: &Topology) -> Option<Action> {
        ui.heading("Experiment");
        egui::Grid::new("controls")
            .num_columns(2)
            .spacing([8.0, 6.0])
            .show(ui, |ui| {
                self.numbers_ui(ui, topo);
            });
        ui.add_space(4.0);
        self.placement_ui(ui, topo);
        ui.add_space(6.0);
        let mut action = self.presets_ui(ui, busy, topo);
        ui.separator();
        let valid = self.validate(topo);
        ui.horizontal(|ui| {
            let run = ui
                .add_enabled(
                    valid.is_ok() && !busy,
                    Button::new(RichText::new("Run").strong()).min_size([70.0, 26.0].into()),
                )
                .on_hover_text("Run this experiment (Space or Enter)")
                .on_disabled_hover_text(if busy {
                    "A run is in progress: wait for it or press Stop".to_string()
                } else {
                    valid
                        .as_ref()
                        .err()
                        .map(ToString::to_string)
                        .unwrap_or_default()
                });
            if run.clicked()
                && let Ok(valid) = &valid
            {
                action = Some(Action::Run(valid.clone()));
            }
            let stop = ui
                .add_enabled(busy, Button::new("Stop").min_size([70.0, 26.0].into()))
                .on_hover_text("Stop the run after each thread's current step (Escape)");
            if stop.clicked() {
                action = Some(Action::Stop);
            }
        });
        if let Err(why) = &valid {
            ui.label(RichText::new(why.to_string()).color(palette::WARNING));
        }
        action
    }

    fn numbers_ui(&mut self, ui: &mut Ui, topo: &Topology) {
        choice_row(
            ui,
            "Workload",
            &mut self.workload,
            &WorkloadKind::ALL,
            |k| (k.name(), k.describe()),
        );

        // No limits here: an invalid value is explained by validation, not silently clamped.
        let threads = labelled(ui, "Threads", DragValue::new(&mut self.threads)).on_hover_text(
            "Worker threads; each takes tasks from a shared queue until none are left",
        );
        if threads.changed() {
            self.fit_custom_to_threads(topo);
        }
        labelled(ui, "Tasks", DragValue::new(&mut self.tasks))
            .on_hover_text("Tasks in total, shared by the threads");
        labelled(
            ui,
            "Task duration",
            DragValue::new(&mut self.task_ms).speed(1.0).suffix(" ms"),
        )
        .on_hover_text(
            "Nominal length of one task: computation, sleep or disk writes, by workload",
        );
        if self.workload == WorkloadKind::Amdahl {
            labelled(
                ui,
                "Serial fraction",
                DragValue::new(&mut self.serial).speed(0.01),
            )
            .on_hover_text("The part of all the work that runs alone before the parallel part");
        }
        choice_row(
            ui,
            "Scheduler capture",
            &mut self.sched,
            &SchedMode::ALL,
            |m| (m.as_str(), describe_sched(m)),
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
                        for (thread, pinned) in self.custom.iter_mut().enumerate() {
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
                .on_hover_text("Runs the concurrency preset, then the parallelism preset, and shows them stacked on one time scale");
            if run_both.clicked() {
                action = Some(Action::RunBoth(both.into_iter().filter_map(Result::ok).collect()));
            }
        });
        action
    }
}

/// A label and a widget on one grid row, the widget named by the label.
fn labelled(ui: &mut Ui, text: &str, widget: impl egui::Widget) -> egui::Response {
    let label = ui.label(text);
    let response = ui.add(widget).labelled_by(label.id);
    ui.end_row();
    response
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
