//! The app: the run history, the run in progress, the views, and the
//! deferred commands that connect them.
//!
//! [`App::poll`] drains what arrived (run events, saved files) and may run
//! when the window is hidden; [`App::show`] draws and only records commands,
//! which are applied after the frame is drawn. Tests drive both without
//! eframe (no window, no GPU).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{Receiver, TryRecvError};
use eframe::egui;
use egui::{Context, Key, Modifiers, RichText, Ui};

use super::controls::{Action, Controls};
use super::experiments::ExperimentsView;
use super::export::ExportView;
use super::figures;
use super::history::History;
use super::program::ProgramView;
use super::running::Running;
use super::script::{Script, ScriptReport, Start};
use super::sessions::{Offer, SessionsView};
use super::timeline::TimelineView;
use super::utilisation::UtilisationView;
use crate::export;
use crate::run::{Recording, RunConfig, ValidConfig};
use crate::topology::Topology;

/// How often the window is redrawn unasked, during a run and between runs
/// (when only the utilisation plot changes).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Cadence {
    live: Duration,
    idle: Duration,
    /// How long after Run the run starts: the frames that show the new
    /// state (buttons, history row) are drawn before, not during, the run.
    start_after: Duration,
}

/// With a GPU: smooth live growth; the plot as often as it gets samples.
const GPU: Cadence = Cadence {
    live: Duration::from_millis(33),
    idle: Duration::from_millis(250),
    start_after: Duration::ZERO,
};
/// Without a GPU a frame costs the CPU about 0.1 s, taken from the very cores
/// a run is measuring: redraw once a second, and not while a run starts.
const SOFTWARE: Cadence = Cadence {
    live: Duration::from_secs(1),
    idle: Duration::from_secs(1),
    start_after: Duration::from_millis(600),
};

/// How often a scripted session that pictures the finished run redraws during it.
const SCRIPTED_LIVE: Duration = Duration::from_secs(5);

/// What the central area shows: the workbench (one's own runs) or the lessons.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    #[default]
    Workbench,
    Experiments,
}

pub struct App {
    pub mode: Mode,
    pub controls: Controls,
    pub history: History,
    pub timeline: TimelineView,
    utilisation: UtilisationView,
    export: ExportView,
    sessions: SessionsView,
    program: ProgramView,
    pub experiments: ExperimentsView,
    /// Whether settings and runs are kept across launches: not for scripted
    /// sessions, whose pictures must not depend on what was saved before.
    remember: bool,
    /// The folder where finished runs are kept between launches: beside
    /// eframe's own storage.
    keep_dir: Option<PathBuf>,
    /// How many finished runs the kept session holds (see [`App::keep`]).
    kept: usize,
    /// The thread writing the kept session, joined before the app exits.
    keeping: Option<std::thread::JoinHandle<()>>,
    running: Option<Running>,
    /// Runs waiting for the current one ("Run both").
    queue: VecDeque<ValidConfig>,
    /// While a "Run both" is in progress: its runs so far, compared once it is done.
    batch: Option<Vec<usize>>,
    commands: Vec<Action>,
    script: Option<Script>,
    /// How often to redraw (see [`App::set_software_rendering`]).
    cadence: Cadence,
    /// Ready when Ctrl+C or SIGTERM asks a scripted session to stop.
    interrupt: Option<Receiver<()>>,
}

impl App {
    pub fn new(config: &RunConfig) -> App {
        App {
            controls: Controls::from_config(config, Topology::get()),
            history: History::default(),
            timeline: TimelineView::default(),
            utilisation: UtilisationView::default(),
            export: ExportView::default(),
            sessions: SessionsView::default(),
            program: ProgramView::default(),
            experiments: ExperimentsView::default(),
            mode: Mode::default(),
            remember: false,
            keep_dir: None,
            kept: 0,
            keeping: None,
            running: None,
            queue: VecDeque::new(),
            batch: None,
            commands: Vec::new(),
            script: None,
            cadence: GPU,
            interrupt: None,
        }
    }

    /// Tells the app that frames are drawn by the CPU (no GPU): it then
    /// redraws rarely during a run, so that drawing does not perturb it.
    pub fn set_software_rendering(&mut self, software: bool) {
        self.cadence = if software { SOFTWARE } else { GPU };
    }

    /// The app as `corelanes gui [flags]` asks for it. Flags are validated
    /// like `corelanes run`'s when the session is scripted, so a bad flag
    /// fails before any window opens.
    pub fn from_launch(args: &super::Launch) -> anyhow::Result<App> {
        let topo = Topology::get();
        let config = args.config.clone();
        let mut app = App::new(&config);
        if let Some(path) = &args.open {
            // Read before the window opens: a bad file fails like a bad flag.
            let runs = crate::session::open(path)?;
            app.history.push_saved(runs, path);
        }
        if args.synthetic_many_core {
            app.history.push_entry(super::bench::many_core(3_000_000));
        }
        if !args.is_scripted() {
            app.remember = true;
            app.keep_dir = eframe::storage_dir("corelanes");
            return Ok(app);
        }
        if let Some(path) = &args.screenshot {
            export::check_writable(path)?;
        }
        args.outputs.check_writable()?;
        if let Some(id) = args.lesson {
            app.mode = Mode::Experiments;
            app.experiments.selected = id;
        }
        let autorun = match (args.autorun, args.run_both, args.lesson) {
            (false, _, _) => Start::Runs(Vec::new()),
            (true, _, Some(id)) => Start::Lesson(id),
            (true, false, None) => Start::Runs(vec![config.validate(topo)?]),
            (true, true, None) => Start::Runs(vec![
                app.controls.concurrency_preset(topo).validate(topo)?,
                app.controls.parallelism_preset(topo).validate(topo)?,
            ]),
        };
        app.script = Some(Script::new(autorun, args));
        Ok(app)
    }

    /// Stops the session once `interrupt` is ready (its sender dropped):
    /// the run as Stop does, then the script saves what was drawn and closes.
    pub fn stop_on(&mut self, interrupt: Receiver<()>) {
        self.interrupt = Some(interrupt);
    }

    /// The scripted session's report, if this session is scripted.
    pub fn script_report(&self) -> Option<Arc<Mutex<ScriptReport>>> {
        self.script.as_ref().map(Script::report)
    }

    /// True while a run is in progress or waiting to start.
    pub fn is_busy(&self) -> bool {
        self.running.is_some()
            || self.experiments.is_running()
            || !self.queue.is_empty()
            || self.commands.iter().any(|c| !matches!(c, Action::Stop))
    }

    /// The recording shown in the timeline and figures.
    pub fn shown(&self) -> Option<&Recording> {
        self.history.selected_rec()
    }

    /// The shown run with its drawing store.
    pub fn shown_entry(&self) -> Option<&super::Entry> {
        self.history.selected.and_then(|i| self.history.get(i))
    }

    /// Takes in what arrived since the last frame: run events, saved files.
    pub fn poll(&mut self, ctx: &Context) {
        if let Some(interrupt) = &self.interrupt
            && !matches!(interrupt.try_recv(), Err(TryRecvError::Empty))
        {
            self.interrupt = None;
            let busy = self.is_busy();
            self.commands.push(Action::Stop);
            match &mut self.script {
                Some(script) => script.interrupt(ctx, busy),
                None => ctx.send_viewport_cmd(egui::ViewportCommand::Close),
            }
        }
        if let Some(running) = &mut self.running {
            let index = running.index;
            self.history.ingest(index, running.events());
            self.history.observe(index, running.in_flight());
            let finished = self.history.get(index).is_some_and(|e| !e.rec.is_running());
            if finished {
                if let Some(done) = self.running.take() {
                    done.join();
                }
                self.start_next();
            }
        }
        let utilisation = &self.utilisation;
        self.history.sample_machine(
            crate::sys::monotonic_ns(),
            // Samples are kept for minutes; a run's last one comes within a second.
            10_000_000_000,
            |from, to| utilisation.busy(from, to),
        );
        ctx.request_repaint_after(if self.running.is_some() {
            self.live_cadence()
        } else {
            self.cadence.idle
        });
        for (path, runs) in self.sessions.poll(ctx) {
            self.history.push_saved(runs, &path);
            self.timeline.fit();
            self.timeline.selected = None;
        }
        let saved = self.export.poll(ctx);
        let lesson_ended = self.experiments.poll(&mut self.history, &saved);
        let idle = self.running.is_none()
            && !self.experiments.is_running()
            && self.queue.is_empty()
            && self.commands.is_empty();
        let last = self
            .history
            .len()
            .checked_sub(1)
            .and_then(|i| self.history.get(i));
        if let Some(script) = &mut self.script {
            script.poll(ctx, last.map(|e| &*e.rec), idle, &saved);
            if let Some(id) = lesson_ended {
                script.lesson_ended(ctx, self.experiments.outcome(id));
            }
        }
    }

    /// Draws the whole window into `ui`, then applies what the user asked for.
    pub fn show(&mut self, ui: &mut Ui) {
        self.keys(ui);
        let busy = self.is_busy();
        let topo = Topology::get();
        egui::Panel::top("mode").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.selectable_value(&mut self.mode, Mode::Workbench, "Workbench")
                    .on_hover_text("Set up your own runs, watch them, compare them (Ctrl+1)");
                ui.selectable_value(&mut self.mode, Mode::Experiments, "Experiments")
                    .on_hover_text(
                        "Lessons: each claim measured on this machine, with a verdict (Ctrl+2)",
                    );
            });
        });
        if self.mode == Mode::Experiments {
            self.experiments_ui(ui, busy);
            return;
        }
        egui::Panel::left("controls")
            .resizable(true)
            .default_size(330.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().id_salt("left").show(ui, |ui| {
                    if let Some(action) = self.controls.ui(ui, busy, topo) {
                        self.commands.push(action);
                    }
                    egui::CollapsingHeader::new("Record a program").show(ui, |ui| {
                        if let Some(action) = self.program.ui(ui, busy) {
                            self.commands.push(action);
                        }
                    });
                    ui.separator();
                    self.history.ui(ui);
                });
            });
        egui::Panel::right("figures")
            .resizable(true)
            .default_size(340.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical()
                    .id_salt("right")
                    .show(ui, |ui| {
                        figures::ui(ui, &self.history);
                        ui.separator();
                        self.timeline.selection_ui(ui, &self.history);
                        self.export.ui(ui, &self.history, self.timeline.rect);
                        ui.separator();
                        self.sessions.ui(ui, &self.history);
                    });
            });
        egui::Panel::bottom("utilisation")
            .resizable(true)
            .default_size(190.0)
            .show(ui, |ui| {
                let entry = self.history.selected.and_then(|i| self.history.get(i));
                // The sampler's history is this process's: a reopened run's
                // time never lines up with it.
                if let Some(file) = entry.and_then(|e| e.file.as_ref()) {
                    ui.label(
                        RichText::new(format!("The shown run was reopened from {file}: utilisation is sampled live and not kept in sessions, so this is the machine now.")).weak(),
                    );
                }
                if entry.is_some_and(|e| e.synthetic) {
                    ui.label(RichText::new("The shown run is synthetic: this is this machine's utilisation now, not its.").weak());
                }
                let live = entry.filter(|e| e.file.is_none() && !e.synthetic);
                self.utilisation.ui(ui, live.map(|e| &*e.rec));
            });
        self.timeline.quiet = self.script.as_ref().is_some_and(Script::is_active);
        egui::CentralPanel::default().show(ui, |ui| self.timeline_ui(ui));
        self.after_frame(ui, self.timeline.rect);
    }

    /// The Experiments mode: the lessons and the runs on the left, the
    /// selected lesson's page in the middle.
    fn experiments_ui(&mut self, ui: &mut Ui, busy: bool) {
        egui::Panel::left("lessons")
            .resizable(true)
            .default_size(300.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical()
                    .id_salt("lessons")
                    .show(ui, |ui| {
                        self.experiments.list_ui(ui);
                        ui.separator();
                        self.history.ui(ui);
                    });
            });
        self.experiments.quiet = self.script.as_ref().is_some_and(Script::is_active);
        egui::CentralPanel::default().show(ui, |ui| {
            egui::ScrollArea::vertical()
                .id_salt("lesson")
                .show(ui, |ui| {
                    if let Some(action) = self.experiments.page_ui(ui, &self.history, busy) {
                        self.commands.push(action);
                    }
                });
        });
        self.after_frame(ui, self.experiments.slide_rect);
    }

    /// Applies the frame's commands; a script may then start its runs or
    /// take its picture (of `picture`: where the timeline or slide was drawn).
    fn after_frame(&mut self, ui: &Ui, picture: Option<egui::Rect>) {
        let ctx = ui.ctx().clone();
        self.apply(&ctx);
        if let Some(script) = &mut self.script
            && let Some(start) = script.after_frame(&ctx, picture, &mut self.export)
        {
            self.commands.push(match start {
                Start::Lesson(id) => Action::Lesson(id),
                Start::Runs(mut runs) if runs.len() == 1 => Action::Run(runs.remove(0)),
                Start::Runs(runs) => Action::RunBoth(runs),
            });
        }
    }

    fn timeline_ui(&mut self, ui: &mut Ui) {
        let shown = self.history.shown();
        if shown.is_empty() {
            ui.add_space(20.0);
            ui.heading("Choose a workload and press Run (or Space).");
            ui.label("Try the presets: the same CPU-bound threads on one core (concurrency) and on several cores (parallelism), then compare them.");
            return;
        }
        ui.label(
            RichText::new("Ctrl+scroll or scroll over the axis: zoom · drag: pan · double-click: fit · click a task: details").weak(),
        );
        if self.running.is_some() && self.cadence == SOFTWARE {
            ui.label(
                RichText::new("No GPU: a run starts 0.6 s after Run and the window is redrawn once a second during it, so that drawing takes little CPU from the run.").weak(),
            );
        }
        let views = self.history.views(&shown);
        egui::ScrollArea::vertical()
            .id_salt("timeline")
            .show(ui, |ui| self.timeline.ui(ui, &views));
    }

    /// Space or Enter runs, Escape stops — unless the keys are being typed into a field.
    fn keys(&mut self, ui: &Ui) {
        let ctx = ui.ctx();
        // The question before a long run takes the keys while it is open.
        if ctx.text_edit_focused() || self.controls.confirming() {
            return;
        }
        let (workbench, experiments) = ctx.input_mut(|i| {
            (
                i.consume_key(Modifiers::COMMAND, Key::Num1),
                i.consume_key(Modifiers::COMMAND, Key::Num2),
            )
        });
        if workbench {
            self.mode = Mode::Workbench;
        }
        if experiments {
            self.mode = Mode::Experiments;
        }
        if self.mode == Mode::Experiments {
            if ctx.input_mut(|i| i.consume_key(Modifiers::NONE, Key::Escape)) && self.is_busy() {
                self.commands.push(Action::Stop);
            }
            let busy = self.is_busy();
            self.commands.extend(self.experiments.keys(ui, busy));
            return;
        }
        let (run, stop) = ctx.input_mut(|i| {
            let run = i.consume_key(Modifiers::NONE, Key::Space)
                || i.consume_key(Modifiers::NONE, Key::Enter);
            (run, i.consume_key(Modifiers::NONE, Key::Escape))
        });
        if stop && self.is_busy() {
            self.commands.push(Action::Stop);
        } else if run
            && !self.is_busy()
            && let Some(action) = self.controls.run_requested(Topology::get())
        {
            self.commands.push(action);
        }
    }

    /// Whether nothing runs (no run, no recording, no lesson), so something may start.
    fn can_start(&self) -> bool {
        self.running.is_none() && !self.experiments.is_running()
    }

    /// Applies the commands recorded while drawing.
    fn apply(&mut self, ctx: &Context) {
        for command in std::mem::take(&mut self.commands) {
            match command {
                Action::Run(valid) if self.can_start() => {
                    self.batch = None;
                    self.queue.push_back(valid);
                    self.start_next();
                }
                Action::RunBoth(configs) if self.can_start() => {
                    self.batch = Some(Vec::new());
                    self.queue.extend(configs);
                    self.start_next();
                }
                Action::Record(mut config) if self.can_start() => {
                    self.batch = None;
                    config.system_wide = self.controls.system_wide;
                    let config_of = crate::record::program_config(config.sched, config.system_wide);
                    let rec = Recording::new(config_of);
                    let index = self.history.push(rec);
                    self.history.compare = None;
                    self.timeline.fit();
                    self.timeline.selected = None;
                    self.running = Some(Running::record(index, config));
                }
                Action::Lesson(id) if self.can_start() => {
                    self.batch = None;
                    self.experiments.start(id, ctx);
                }
                Action::SaveSlide(path) => match export::check_writable(&path) {
                    Ok(()) => {
                        let job = self.export.save_png(ctx, self.experiments.slide_rect, path);
                        self.experiments.saving(job);
                    }
                    Err(why) => self.experiments.slide_failed(why.to_string()),
                },
                Action::Run(_) | Action::RunBoth(_) | Action::Record(_) | Action::Lesson(_) => {}
                Action::Stop => {
                    self.queue.clear();
                    self.batch = None;
                    self.experiments.stop();
                    if let Some(running) = &mut self.running {
                        running.cancel();
                    }
                }
            }
        }
        if self.running.is_some() {
            ctx.request_repaint_after(self.live_cadence());
        }
    }

    /// How often to redraw during a run. A scripted picture of the finished
    /// run has no one watching the run unfold: drawing rarely then keeps the
    /// renderer (the CPU itself, without a GPU) off the cores being measured.
    fn live_cadence(&self) -> Duration {
        match &self.script {
            Some(script) if !script.watches_live() => SCRIPTED_LIVE.max(self.cadence.live),
            _ => self.cadence.live,
        }
    }

    /// Starts the next queued run; once a batch is done, compares its runs.
    fn start_next(&mut self) {
        let Some(valid) = self.queue.pop_front() else {
            if let Some([first, second]) = self.batch.take().as_deref() {
                self.history.selected = Some(*first);
                self.history.compare = Some(*second);
                self.timeline.fit();
            }
            return;
        };
        let index = self.history.push(Recording::new(valid.config.clone()));
        if let Some(batch) = &mut self.batch {
            batch.push(index);
        }
        self.history.compare = None;
        self.timeline.fit();
        self.timeline.selected = None;
        self.running = Some(Running::start(index, valid, self.cadence.start_after));
    }
}

/// What the window remembers across launches, in eframe's storage.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Settings {
    /// The controls' run, when it was valid.
    config: Option<RunConfig>,
    recent: Vec<PathBuf>,
    /// How many runs the kept session holds.
    kept: usize,
}

const SETTINGS_KEY: &str = "corelanes";

impl App {
    /// Keeps runs between launches in `dir` rather than beside eframe's storage.
    pub fn keep_in(&mut self, dir: PathBuf) {
        self.keep_dir = Some(dir);
    }

    /// The kept session's file.
    fn kept_path(&self) -> Option<PathBuf> {
        Some(self.keep_dir.as_ref()?.join("kept.pftrace"))
    }

    /// Takes the saved settings, unless this session is scripted. Run flags
    /// given on the command line win over the saved run. The runs kept at
    /// the last close are offered, never reopened unasked.
    pub fn restore(&mut self, storage: Option<&dyn eframe::Storage>, config_given: bool) {
        if !self.remember {
            return;
        }
        let Some(settings) = storage.and_then(|s| eframe::get_value::<Settings>(s, SETTINGS_KEY))
        else {
            return;
        };
        if !config_given && let Some(config) = &settings.config {
            self.controls = Controls::from_config(config, Topology::get());
        }
        self.sessions.recent = settings.recent;
        self.kept = settings.kept;
        if settings.kept > 0
            && self.history.is_empty()
            && let Some(path) = self.kept_path().filter(|p| p.is_file())
        {
            self.sessions.offer = Some(Offer {
                path,
                runs: settings.kept,
            });
        }
    }

    /// The settings to save, and the finished runs kept (on a thread) when
    /// they changed since they were last kept.
    fn settings(&mut self) -> Settings {
        self.keep();
        Settings {
            config: self
                .controls
                .validate(Topology::get())
                .ok()
                .map(|v| v.config),
            recent: self.sessions.recent.clone(),
            kept: self.kept,
        }
    }

    fn keep(&mut self) {
        let runs = self.history.finished(None);
        let Some(path) = self.kept_path() else {
            return;
        };
        if runs.len() == self.kept || self.running.is_some() {
            return;
        }
        if let Some(previous) = self.keeping.take() {
            let _ = previous.join();
        }
        // Runs kept last time and not yet reopened move aside, still offered
        // and listed as recent, rather than being overwritten.
        if let Some(offer) = self.sessions.offer.as_mut().filter(|o| o.path == path) {
            let aside = path.with_file_name("kept-before.pftrace");
            if std::fs::rename(&path, &aside).is_ok() {
                offer.path = aside.clone();
                self.sessions.remember(&aside);
            }
        }
        self.kept = runs.len();
        self.keeping = std::thread::Builder::new()
            .name("corelanes-keep".into())
            .spawn(move || {
                let refs: Vec<_> = runs.iter().map(|(r, m)| (&**r, &**m)).collect();
                let kept = path
                    .parent()
                    .map_or(Ok(()), std::fs::create_dir_all)
                    .map_err(|e| e.to_string())
                    .and_then(|()| crate::session::save(&path, &refs).map_err(|e| e.to_string()));
                if let Err(why) = kept {
                    eprintln!("corelanes: could not keep the runs for next time: {why}");
                }
            })
            .ok();
    }
}

impl eframe::App for App {
    fn logic(&mut self, ctx: &Context, _frame: &mut eframe::Frame) {
        self.poll(ctx);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        if self.remember {
            let settings = self.settings();
            eframe::set_value(storage, SETTINGS_KEY, &settings);
        }
    }

    fn persist_egui_memory(&self) -> bool {
        self.remember
    }

    fn on_exit(&mut self) {
        if let Some(keeping) = self.keeping.take() {
            let _ = keeping.join();
        }
    }

    fn ui(&mut self, ui: &mut Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }
}
