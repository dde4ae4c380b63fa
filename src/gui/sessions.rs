//! Sessions in the window: save runs to a `.pftrace`, open one (a path, a
//! recent file, a file dropped onto the window), and the offer to reopen the
//! runs kept when the window last closed.
//!
//! Files are read and written on short-lived threads, so a large session
//! never freezes the window; a failure is said in one sentence and loses
//! nothing already open.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use eframe::egui;
use egui::{Context, RichText, Ui};

use super::export::shown_path;
use super::history::History;
use super::palette;
use crate::run::Recording;
use crate::session::{self, Machine, SavedRun};

/// How many recent sessions the view lists (and the app remembers).
pub const RECENT: usize = 6;

/// What a file thread reports.
enum Outcome {
    Opened(PathBuf, Result<Vec<SavedRun>, String>),
    Saved(PathBuf, usize, Result<(), String>),
}

/// Runs kept when the window last closed, offered (never reopened unasked).
pub struct Offer {
    pub path: PathBuf,
    pub runs: usize,
}

pub struct SessionsView {
    save_path: String,
    open_path: String,
    /// Most recent first.
    pub recent: Vec<PathBuf>,
    pub offer: Option<Offer>,
    /// Files being read or written, for the progress line.
    busy: Vec<String>,
    /// The last outcomes, newest last: (ok, sentence).
    messages: Vec<(bool, String)>,
    outcomes: (Sender<Outcome>, Receiver<Outcome>),
}

impl Default for SessionsView {
    fn default() -> Self {
        SessionsView {
            save_path: "./corelanes-session.pftrace".into(),
            open_path: String::new(),
            recent: Vec::new(),
            offer: None,
            busy: Vec::new(),
            messages: Vec::new(),
            outcomes: crossbeam_channel::unbounded(),
        }
    }
}

impl SessionsView {
    /// Reads `path` on a thread; its runs arrive through [`SessionsView::poll`].
    pub fn open(&mut self, ctx: &Context, path: PathBuf) {
        self.busy.push(format!("opening {}", shown_path(&path)));
        self.spawn(ctx, move || {
            let runs = session::open(&path).map_err(|e| e.to_string());
            Outcome::Opened(path, runs)
        });
    }

    /// Writes `runs` to `path` on a thread.
    pub fn save(
        &mut self,
        ctx: &Context,
        path: PathBuf,
        runs: Vec<(Arc<Recording>, Arc<Machine>)>,
    ) {
        self.busy.push(format!("saving {}", shown_path(&path)));
        self.spawn(ctx, move || {
            let refs: Vec<(&Recording, &Machine)> =
                runs.iter().map(|(r, m)| (&**r, &**m)).collect();
            let saved = session::save(&path, &refs).map_err(|e| e.to_string());
            Outcome::Saved(path, runs.len(), saved)
        });
    }

    fn spawn(&mut self, ctx: &Context, work: impl FnOnce() -> Outcome + Send + 'static) {
        let (tx, repaint) = (self.outcomes.0.clone(), ctx.clone());
        let spawned = std::thread::Builder::new()
            .name("corelanes-session".into())
            .spawn(move || {
                let _ = tx.send(work());
                repaint.request_repaint();
            });
        if let Err(e) = spawned {
            self.busy.pop();
            self.say(false, format!("cannot start the file thread: {e}"));
        }
    }

    fn say(&mut self, ok: bool, text: String) {
        self.messages.push((ok, text));
        // The last few say enough; older ones would push the view down.
        let excess = self.messages.len().saturating_sub(3);
        self.messages.drain(..excess);
    }

    /// Notes `path` as the most recent session.
    pub fn remember(&mut self, path: &Path) {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        self.recent.retain(|p| *p != path);
        self.recent.insert(0, path);
        self.recent.truncate(RECENT);
    }

    /// Takes in finished file work and files dropped onto the window;
    /// returns the sessions opened, each with its file.
    pub fn poll(&mut self, ctx: &Context) -> Vec<(PathBuf, Vec<SavedRun>)> {
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .collect()
        });
        for path in dropped {
            self.open(ctx, path);
        }
        let mut opened = Vec::new();
        while let Ok(outcome) = self.outcomes.1.try_recv() {
            self.busy.pop();
            match outcome {
                Outcome::Opened(path, Ok(runs)) => {
                    let n = runs.len();
                    self.say(
                        true,
                        format!("opened {} ({n} run{})", shown_path(&path), plural(n)),
                    );
                    self.remember(&path);
                    opened.push((path, runs));
                }
                Outcome::Saved(path, n, Ok(())) => {
                    self.say(
                        true,
                        format!("saved {n} run{} to {}", plural(n), shown_path(&path)),
                    );
                    self.remember(&path);
                }
                Outcome::Opened(_, Err(why)) | Outcome::Saved(_, _, Err(why)) => {
                    self.say(false, why);
                }
            }
        }
        opened
    }

    pub fn ui(&mut self, ui: &mut Ui, history: &History) {
        ui.heading("Session");
        let ctx = ui.ctx().clone();
        if ctx.input(|i| !i.raw.hovered_files.is_empty()) {
            ui.label(RichText::new("Drop the file to open it").strong());
        }
        if let Some(offer) = &self.offer {
            let mut answer = None;
            egui::Frame::group(ui.style()).show(ui, |ui| {
                ui.label(format!(
                    "Reopen the {} run{} kept when the window last closed?",
                    offer.runs,
                    plural(offer.runs)
                ));
                ui.horizontal(|ui| {
                    if ui.button("Reopen").clicked() {
                        answer = Some(true);
                    }
                    if ui
                        .button("Not now")
                        .on_hover_text(
                            "They stay kept until the window next closes with runs in it",
                        )
                        .clicked()
                    {
                        answer = Some(false);
                    }
                });
            });
            if let Some(reopen) = answer {
                let path = offer.path.clone();
                self.offer = None;
                if reopen {
                    self.open(&ctx, path);
                }
            }
        }
        let shown = history.shown();
        let all = history.finished(None);
        let some = history.finished(Some(&shown));
        let mut save = None;
        ui.horizontal(|ui| {
            let button = |ui: &mut Ui, text: &str, runs: &Vec<_>, what: &str| {
                ui.add_enabled(!runs.is_empty(), egui::Button::new(text))
                    .on_hover_text(what)
                    .on_disabled_hover_text("No finished run to save yet")
                    .clicked()
            };
            if button(ui, "Save all runs", &all, "Every finished run, in one .pftrace file: corelanes reopens it, ui.perfetto.dev shows it") {
                save = Some(all);
            }
            if button(ui, "Save shown", &some, "The shown run, and the compared one if any") {
                save = Some(some);
            }
        });
        let field =
            egui::TextEdit::singleline(&mut self.save_path).desired_width(ui.available_width());
        ui.add(field).accessible_name("Save session: path");
        if let Some(runs) = save {
            self.save(&ctx, PathBuf::from(&self.save_path), runs);
        }
        ui.horizontal(|ui| {
            let open = ui
                .add_enabled(!self.open_path.trim().is_empty(), egui::Button::new("Open"))
                .on_hover_text("Add the runs of a saved session (.pftrace) to the history")
                .on_disabled_hover_text(
                    "Type the path of a .pftrace file, or drop one onto the window",
                )
                .clicked();
            let field = egui::TextEdit::singleline(&mut self.open_path)
                .hint_text("path of a .pftrace, or drop one here")
                .desired_width(ui.available_width());
            let typed = ui.add(field).accessible_name("Open session: path");
            let entered = typed.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if (open || entered) && !self.open_path.trim().is_empty() {
                let path = PathBuf::from(self.open_path.trim());
                self.open(&ctx, path);
            }
        });
        if !self.recent.is_empty() {
            ui.label(RichText::new("Recent:").weak());
            let mut chosen = None;
            for path in &self.recent {
                let name = path
                    .file_name()
                    .unwrap_or(path.as_os_str())
                    .to_string_lossy();
                if ui
                    .link(name)
                    .on_hover_text(path.display().to_string())
                    .clicked()
                {
                    chosen = Some(path.clone());
                }
            }
            if let Some(path) = chosen {
                self.open(&ctx, path);
            }
        }
        for what in &self.busy {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(format!("{what}…"));
            });
        }
        for (ok, text) in &self.messages {
            let color = if *ok {
                palette::SUCCESS
            } else {
                palette::WARNING
            };
            ui.label(RichText::new(text).color(color));
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
