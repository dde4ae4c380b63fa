//! Scripted sessions, `corelanes gui [run flags] --autorun --screenshot FILE
//! --exit`: open the window, run, save the timeline once the finished run has
//! been drawn, close; the report says what failed.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use eframe::egui;
use egui::{Context, Rect};

use super::export::{ExportView, Job, Saved, SavedFile};
use crate::run::{Recording, RunStatus, ValidConfig};

/// Frames drawn, a pause apart, before the run starts, so that opening the
/// window (shaders, fonts, first layouts) does not compete with the run.
const WARMUP_FRAMES: u32 = 4;
const WARMUP_PAUSE: Duration = Duration::from_millis(250);

/// Frames drawn after the run finished before its picture is taken, so that
/// the picture shows the finished run, fully laid out.
const SETTLE_FRAMES: u32 = 3;

/// What a scripted session achieved, read after the window has closed.
#[derive(Debug, Default)]
pub struct ScriptReport {
    pub done: bool,
    pub saved: Option<SavedFile>,
    /// Sentences for stderr; any makes the exit status non-zero.
    pub errors: Vec<String>,
}

pub struct Script {
    /// The runs to start once the window has settled (`--autorun`; two,
    /// stacked, with `--run-both`); empty when nothing is to be started.
    autorun: Vec<ValidConfig>,
    screenshot: Option<PathBuf>,
    /// Save the whole window, not only the timeline.
    whole_window: bool,
    exit: bool,
    step: Step,
    report: Arc<Mutex<ScriptReport>>,
}

enum Step {
    Warmup(u32),
    WaitForRun,
    Settle(u32),
    Save(Job),
    Done,
}

impl Script {
    pub fn new(
        autorun: Vec<ValidConfig>,
        screenshot: Option<PathBuf>,
        whole_window: bool,
        exit: bool,
    ) -> Script {
        Script {
            step: if !autorun.is_empty() {
                Step::Warmup(0)
            } else {
                Step::WaitForRun
            },
            autorun,
            screenshot,
            whole_window,
            exit,
            report: Arc::default(),
        }
    }

    /// Until the picture is saved (or the script has ended).
    pub fn is_active(&self) -> bool {
        !matches!(self.step, Step::Done)
    }

    pub fn report(&self) -> Arc<Mutex<ScriptReport>> {
        self.report.clone()
    }

    /// Called after each frame is drawn, with where the timeline was drawn;
    /// returns the runs to start, once the window has settled.
    pub fn after_frame(
        &mut self,
        ctx: &Context,
        timeline: Option<Rect>,
        export: &mut ExportView,
    ) -> Option<Vec<ValidConfig>> {
        let mut start = None;
        match self.step {
            Step::Warmup(n) if n < WARMUP_FRAMES => {
                self.step = Step::Warmup(n + 1);
                ctx.request_repaint_after(WARMUP_PAUSE);
                return None;
            }
            Step::Warmup(_) => {
                self.step = Step::WaitForRun;
                start = Some(std::mem::take(&mut self.autorun)).filter(|runs| !runs.is_empty());
            }
            Step::Settle(n) if n < SETTLE_FRAMES => self.step = Step::Settle(n + 1),
            Step::Settle(_) => match (&self.screenshot, timeline) {
                (Some(path), Some(rect)) => {
                    let crop = (!self.whole_window).then_some(rect);
                    self.step = Step::Save(export.save_png(ctx, crop, path.clone()))
                }
                (Some(_), None) => {
                    self.fail("the timeline was not drawn, so there is no picture to save".into());
                    self.finish(ctx);
                }
                (None, _) => self.finish(ctx),
            },
            Step::WaitForRun | Step::Save(_) | Step::Done => return None,
        }
        ctx.request_repaint();
        start
    }

    /// Moves on once the run has ended (`ended`: the last run, when nothing
    /// is running or queued) or the picture has been saved.
    pub fn poll(&mut self, ctx: &Context, ended: Option<&Recording>, saved: &[Saved]) {
        match self.step {
            Step::WaitForRun => {
                let Some(rec) = ended else { return };
                for why in &rec.failures {
                    self.fail(format!("the run reported: {why}"));
                }
                if rec.status == RunStatus::Cancelled {
                    self.fail("the run was stopped before it finished".into());
                }
                self.step = Step::Settle(0);
                ctx.request_repaint();
            }
            Step::Save(job) => {
                let Some((_, result)) = saved.iter().find(|(j, _)| *j == job) else {
                    return;
                };
                match result {
                    Ok(file) => self.lock().saved = Some(file.clone()),
                    Err(why) => self.fail(why.clone()),
                }
                self.finish(ctx);
            }
            Step::Warmup(_) | Step::Settle(_) | Step::Done => {}
        }
    }

    /// Ctrl+C or SIGTERM, while the app stops the run as Stop does: that run
    /// ends as usual (its picture is saved), then the window closes. With no
    /// run in progress (`busy`), there is nothing to wait for.
    pub fn interrupt(&mut self, ctx: &Context, busy: bool) {
        self.exit = true;
        self.autorun.clear();
        match self.step {
            Step::Warmup(_) | Step::WaitForRun if !busy => {
                self.fail("stopped before a run had started".into());
                self.finish(ctx);
            }
            Step::Done => ctx.send_viewport_cmd(egui::ViewportCommand::Close),
            _ => {}
        }
    }

    fn lock(&self) -> MutexGuard<'_, ScriptReport> {
        self.report.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fail(&self, why: String) {
        self.lock().errors.push(why);
    }

    fn finish(&mut self, ctx: &Context) {
        self.step = Step::Done;
        self.lock().done = true;
        if self.exit {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
    }
}
