//! The Experiments view: every claim about concurrency and parallelism as a
//! lesson that runs on this machine in one click, and says, with its
//! numbers, whether the claim held. A lesson runs on its own thread through
//! [`crate::lesson::run`]; its runs land in the history like any other, its
//! charts are redrawn as each point arrives, and its page (claim, verdict,
//! charts, timelines) can be saved as a slide.

use std::collections::HashMap;
use std::path::PathBuf;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use eframe::egui;
use egui::{Color32, Context, Key, Modifiers, Rect, RichText, Ui, vec2};
use egui_plot::{Bar, BarChart, Corner, Legend, Line, Plot, Points};

use super::controls::Action;
use super::export::{Job, Saved};
use super::history::History;
use super::palette;
use super::timeline::TimelineView;
use crate::lesson::{self, Chart, LessonId, Outcome, Progress, SeriesStyle};
use crate::topology::Topology;

/// What a lesson's page holds: filled in as the lesson runs.
#[derive(Default)]
struct Page {
    /// What the lesson is doing now (while it runs).
    step: Option<String>,
    charts: Vec<Chart>,
    /// Its runs, as indices into the history.
    runs: Vec<usize>,
    /// The verdict, once it has one (its runs live in the history).
    outcome: Option<Outcome>,
}

/// A lesson running on its own thread.
struct InProgress {
    id: LessonId,
    events: Receiver<Message>,
    /// Dropped to stop the lesson: a closed channel stays ready, so every
    /// run the lesson would start after it stops at once too.
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

enum Message {
    Progress(Progress),
    Done(Box<Outcome>),
}

pub struct ExperimentsView {
    pub selected: LessonId,
    pages: HashMap<LessonId, Page>,
    running: Option<InProgress>,
    timeline: TimelineView,
    /// Where each lesson's slide is saved (its own name until edited).
    slide_paths: HashMap<LessonId, String>,
    /// The slide being saved, and what became of the last one.
    slide_job: Option<Job>,
    slide_message: Option<(bool, String)>,
    /// Where the slide (claim, verdict, charts, timelines) was drawn last frame.
    pub slide_rect: Option<Rect>,
    /// No hover tooltips in the slide's timeline (see [`TimelineView::quiet`]).
    pub quiet: bool,
}

impl Default for ExperimentsView {
    fn default() -> Self {
        ExperimentsView {
            selected: LessonId::ALL[0],
            pages: HashMap::new(),
            running: None,
            timeline: TimelineView::default(),
            slide_paths: HashMap::new(),
            slide_job: None,
            slide_message: None,
            slide_rect: None,
            quiet: false,
        }
    }
}

impl ExperimentsView {
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// The verdict of lesson `id`, once it has run.
    pub fn outcome(&self, id: LessonId) -> Option<&Outcome> {
        self.pages.get(&id)?.outcome.as_ref()
    }

    /// Starts lesson `id` on its own thread; its page starts afresh.
    pub fn start(&mut self, id: LessonId, ctx: &Context) {
        if self.running.is_some() {
            return;
        }
        self.selected = id;
        self.timeline.fit();
        let page = self.pages.entry(id).or_default();
        *page = Page {
            step: Some("starting…".into()),
            ..Page::default()
        };
        let (tx, events) = crossbeam_channel::unbounded();
        let (stop, stopped) = crossbeam_channel::bounded::<()>(1);
        let repaint = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("corelanes-lesson".into())
            .spawn(move || {
                let send = |message| {
                    let _ = tx.send(message);
                    repaint.request_repaint();
                };
                let outcome = lesson::run(id, Topology::get(), &stopped, &mut |p| {
                    send(Message::Progress(p));
                });
                send(Message::Done(Box::new(outcome)));
            });
        match spawned {
            Ok(thread) => {
                self.running = Some(InProgress {
                    id,
                    events,
                    stop: Some(stop),
                    thread: Some(thread),
                });
            }
            Err(e) => {
                page.step = None;
                page.outcome = Some(unfinished(
                    id,
                    format!("cannot start the lesson's thread: {e}"),
                ));
            }
        }
    }

    /// Stops the lesson in progress (its run stops as Stop stops a run).
    pub fn stop(&mut self) {
        if let Some(running) = &mut self.running {
            running.stop = None;
        }
    }

    /// Takes in what the lesson reported: its runs go to `history`. Returns
    /// the lesson's id once it has ended. `saved`: the files the export
    /// view finished writing this frame (the slide among them).
    pub fn poll(&mut self, history: &mut History, saved: &[Saved]) -> Option<LessonId> {
        if let Some(job) = self.slide_job
            && let Some((_, result)) = saved.iter().find(|(j, _)| *j == job)
        {
            self.slide_job = None;
            self.slide_message = Some(match result {
                Ok(file) => (true, format!("wrote {}", file.path.display())),
                Err(why) => (false, why.clone()),
            });
        }
        let running = self.running.as_mut()?;
        let page = self.pages.entry(running.id).or_default();
        let mut ended = false;
        loop {
            match running.events.try_recv() {
                Ok(Message::Progress(Progress::Step(step))) => page.step = Some(step),
                Ok(Message::Progress(Progress::Charts(charts))) => page.charts = charts,
                Ok(Message::Progress(Progress::Run(rec))) => {
                    page.runs.push(history.push(*rec));
                    history.compare = None;
                }
                Ok(Message::Done(mut outcome)) => {
                    // The runs are in the history already.
                    outcome.runs.clear();
                    page.charts.clone_from(&outcome.charts);
                    page.outcome = Some(*outcome);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    ended = true;
                    break;
                }
            }
        }
        if !ended {
            return None;
        }
        let id = running.id;
        page.step = None;
        let panicked = running.thread.take().map(JoinHandle::join);
        if page.outcome.is_none() {
            let why = match panicked {
                Some(Err(panic)) => {
                    format!("the lesson failed: {}", crate::run::panic_text(&panic))
                }
                _ => "the lesson ended without a verdict".into(),
            };
            page.outcome = Some(unfinished(id, why));
        }
        self.running = None;
        Some(id)
    }

    /// Up and Down choose a lesson; Space or Enter runs it (unless `busy`).
    pub fn keys(&mut self, ui: &Ui, busy: bool) -> Option<Action> {
        let (up, down, run) = ui.ctx().input_mut(|i| {
            (
                i.consume_key(Modifiers::NONE, Key::ArrowUp),
                i.consume_key(Modifiers::NONE, Key::ArrowDown),
                i.consume_key(Modifiers::NONE, Key::Space)
                    || i.consume_key(Modifiers::NONE, Key::Enter),
            )
        });
        let at = LessonId::ALL.iter().position(|&l| l == self.selected)?;
        if up && at > 0 {
            self.selected = LessonId::ALL[at - 1];
        }
        if down && at + 1 < LessonId::ALL.len() {
            self.selected = LessonId::ALL[at + 1];
        }
        (run && !busy).then_some(Action::Lesson(self.selected))
    }

    /// The list of lessons, each with its last verdict.
    pub fn list_ui(&mut self, ui: &mut Ui) {
        ui.heading("Lessons");
        ui.label(
            RichText::new("Each runs real threads on this machine and judges one claim. Up and Down choose, Space runs.")
                .weak(),
        );
        for id in LessonId::ALL {
            let (mark, colour) = match self.pages.get(&id) {
                _ if self.running.as_ref().is_some_and(|r| r.id == id) => ("…", None),
                Some(Page {
                    outcome: Some(outcome),
                    ..
                }) => verdict_mark(outcome.holds),
                _ => ("·", None),
            };
            ui.horizontal(|ui| {
                let mark = RichText::new(mark).strong();
                ui.label(match colour {
                    Some(c) => mark.color(c),
                    None => mark,
                });
                if ui
                    .selectable_label(self.selected == id, id.title())
                    .on_hover_text(format!("corelanes lesson {}", id.id()))
                    .clicked()
                {
                    self.selected = id;
                    self.timeline.fit();
                }
            });
        }
    }

    /// The selected lesson's page: its buttons, then the slide (claim,
    /// verdict, charts and the first and last of its runs' timelines).
    pub fn page_ui(&mut self, ui: &mut Ui, history: &History, busy: bool) -> Option<Action> {
        let id = self.selected;
        let mut action = None;
        let running_this = self.running.as_ref().is_some_and(|r| r.id == id);
        ui.horizontal(|ui| {
            if running_this {
                if ui.button("Stop (Esc)").clicked() {
                    action = Some(Action::Stop);
                }
            } else if ui
                .add_enabled(!busy, egui::Button::new("Run lesson (Space)"))
                .on_disabled_hover_text("Wait for the run or lesson in progress, or stop it.")
                .clicked()
            {
                action = Some(Action::Lesson(id));
            }
            ui.separator();
            let path = self
                .slide_paths
                .entry(id)
                .or_insert_with(|| format!("lesson-{}.png", id.id()));
            ui.add(egui::TextEdit::singleline(path).desired_width(180.0))
                .accessible_name("Save slide: path")
                .on_hover_text("Where the slide is saved (PNG)");
            let has_outcome = self.outcome(id).is_some();
            if ui
                .add_enabled(
                    has_outcome && !running_this,
                    egui::Button::new("Save slide"),
                )
                .on_hover_text("Saves the claim, the verdict and the pictures below as one PNG.")
                .on_disabled_hover_text("Run the lesson first.")
                .clicked()
            {
                action = Some(Action::SaveSlide(PathBuf::from(&self.slide_paths[&id])));
            }
            if let Some((ok, text)) = &self.slide_message {
                let text = RichText::new(text);
                ui.label(if *ok {
                    text.color(palette::SUCCESS)
                } else {
                    text.color(palette::WARNING)
                });
            }
        });
        ui.separator();
        let slide = ui.scope(|ui| self.slide_ui(ui, history, id)).response.rect;
        self.slide_rect = Some(slide);
        action
    }

    /// Remembers the slide being saved, so its outcome can be shown.
    pub fn saving(&mut self, job: Job) {
        self.slide_job = Some(job);
        self.slide_message = None;
    }

    /// The slide could not be saved (an unwritable path): says why.
    pub fn slide_failed(&mut self, why: String) {
        self.slide_message = Some((false, why));
    }

    fn slide_ui(&mut self, ui: &mut Ui, history: &History, id: LessonId) {
        let page = self.pages.get(&id);
        ui.label(RichText::new(id.title()).size(22.0).strong());
        let outcome = page.and_then(|p| p.outcome.as_ref());
        match outcome {
            Some(o) if !o.claim.is_empty() => {
                ui.label(RichText::new(&o.claim).size(16.0));
                ui.label(RichText::new(format!("Judged by: {}", o.criterion)).weak());
            }
            _ => {
                ui.label(RichText::new(id.claim()).size(16.0));
                ui.label(
                    RichText::new(format!(
                        "Run lesson measures it on this machine's {} allowed cores and says whether it held, by a criterion stated before measuring.",
                        Topology::get().allowed.len()
                    ))
                    .weak(),
                );
            }
        }
        ui.add_space(4.0);
        if let Some(step) = page.and_then(|p| p.step.as_ref()) {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(RichText::new(step).size(15.0));
            });
        } else if let Some(o) = outcome {
            verdict_ui(ui, o);
        }
        let Some(page) = page else {
            return;
        };
        charts_ui(ui, id, &page.charts);
        // The first and last runs are the lesson's contrast (1 thread
        // against N, 1 core against all…); the rest are in the history.
        let shown: Vec<usize> = match page.runs.as_slice() {
            [] => Vec::new(),
            [one] => vec![*one],
            [first, .., last] => vec![*first, *last],
        };
        if shown.is_empty() {
            return;
        }
        if page.runs.len() > 2 {
            ui.label(
                RichText::new(format!(
                    "The first and last of its {} runs; all of them are in Runs.",
                    page.runs.len()
                ))
                .weak(),
            );
        }
        let views = history.views(&shown);
        let height = ui.available_height().max(260.0);
        self.timeline.quiet = self.quiet;
        ui.allocate_ui(vec2(ui.available_width(), height), |ui| {
            self.timeline.ui(ui, &views);
        });
    }
}

/// An outcome for a lesson that could not give one.
fn unfinished(id: LessonId, why: String) -> Outcome {
    Outcome {
        id,
        claim: String::new(),
        criterion: String::new(),
        holds: None,
        reason: Some(why.clone()),
        verdict: why,
        figures: Default::default(),
        charts: Vec::new(),
        runs: Vec::new(),
        failed: true,
    }
}

fn verdict_mark(holds: Option<bool>) -> (&'static str, Option<Color32>) {
    match holds {
        // Marks the bundled fonts have (✔ and ✘ are not among them).
        Some(true) => ("+", Some(palette::SUCCESS)),
        Some(false) => ("×", Some(palette::FAILED)),
        None => ("–", None),
    }
}

fn verdict_ui(ui: &mut Ui, outcome: &Outcome) {
    let (mark, mut colour) = verdict_mark(outcome.holds);
    let word = match (outcome.holds, outcome.reason.as_deref()) {
        (Some(true), _) => "Holds".to_string(),
        (Some(false), _) => "Does not hold".to_string(),
        (None, Some(lesson::STOPPED)) => "Stopped: not judged".to_string(),
        (None, Some(reason)) if outcome.failed => {
            colour = Some(palette::FAILED);
            format!("Failed: {reason}")
        }
        (None, Some(reason)) => format!("Cannot run here: {reason}"),
        (None, None) => "No verdict".to_string(),
    };
    let colour = colour.unwrap_or(ui.visuals().weak_text_color());
    ui.label(
        RichText::new(format!("{mark} {word}"))
            .size(18.0)
            .strong()
            .color(colour),
    );
    if !outcome.verdict.is_empty() && outcome.reason.as_ref() != Some(&outcome.verdict) {
        ui.label(RichText::new(&outcome.verdict).size(16.0));
    }
}

/// The lesson's charts side by side (stacked where the page is narrow).
fn charts_ui(ui: &mut Ui, id: LessonId, charts: &[Chart]) {
    if charts.is_empty() {
        return;
    }
    let width = ui.available_width();
    let per_row = if width >= 700.0 {
        charts.len().min(2)
    } else {
        1
    };
    let spacing = ui.spacing().item_spacing.x;
    let chart_w = (width - spacing * (per_row as f32 - 1.0)) / per_row as f32;
    for (row, group) in charts.chunks(per_row).enumerate() {
        ui.horizontal_top(|ui| {
            for (col, chart) in group.iter().enumerate() {
                ui.vertical(|ui| {
                    ui.set_width(chart_w);
                    chart_ui(ui, (id, row, col), chart, chart_w);
                });
            }
        });
    }
}

fn chart_ui(ui: &mut Ui, salt: impl egui::AsIdSalt, chart: &Chart, width: f32) {
    ui.label(RichText::new(&chart.title).strong());
    let bars = chart
        .series
        .iter()
        .filter(|s| s.style == SeriesStyle::Bars)
        .count();
    let bar_width = bar_width(chart) / bars.max(1) as f64;
    Plot::new(("lesson-chart", salt))
        .legend(Legend::default().position(Corner::LeftTop))
        .width(width)
        .height(220.0)
        .allow_zoom(false)
        .allow_drag(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .allow_double_click_reset(false)
        .include_y(0.0)
        .x_axis_label(chart.x_label.as_str())
        .y_axis_label(chart.y_label.as_str())
        .show(ui, |plot| {
            let mut bar_index = 0.0;
            for (k, series) in chart.series.iter().enumerate() {
                let colour = palette::thread(k);
                let points = series.points.clone();
                match series.style {
                    SeriesStyle::Points => plot.points(
                        Points::new(series.name.as_str(), points)
                            .radius(4.5)
                            .color(colour),
                    ),
                    SeriesStyle::Line => plot.line(
                        Line::new(series.name.as_str(), points)
                            .width(2.0)
                            .color(colour),
                    ),
                    SeriesStyle::Bars => {
                        // Grouped: each bar series beside the others at the same x.
                        let offset = (bar_index - (bars as f64 - 1.0) / 2.0) * bar_width;
                        bar_index += 1.0;
                        let bars = series
                            .points
                            .iter()
                            .map(|[x, y]| Bar::new(x + offset, *y).width(bar_width))
                            .collect();
                        plot.bar_chart(BarChart::new(series.name.as_str(), bars).color(colour));
                    }
                }
            }
        });
}

/// The room one x value has for its bars: 80 % of the smallest step between xs.
fn bar_width(chart: &Chart) -> f64 {
    let mut xs: Vec<f64> = chart
        .series
        .iter()
        .filter(|s| s.style == SeriesStyle::Bars)
        .flat_map(|s| s.points.iter().map(|p| p[0]))
        .collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let step = xs
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|d| *d > 0.0)
        .fold(f64::INFINITY, f64::min);
    if step.is_finite() { step * 0.8 } else { 0.8 }
}
