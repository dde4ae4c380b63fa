//! Scripted sessions, `corelanes gui [run flags] --autorun --screenshot FILE
//! [--screenshot-at SECONDS] [--json FILE] --exit`: open the window, run,
//! save the timeline once the finished run has been drawn (or at a moment
//! during the run), write the run's files when it ends, close; the report
//! says what failed.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use eframe::egui;
use egui::{Context, Rect};

use super::Launch;
use super::export::{ExportView, Job, Saved, SavedFile};
use crate::outputs::Outputs;
use crate::run::{Recording, RunStatus, ValidConfig};
use crate::sys;

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
    /// When the saved picture was drawn.
    pub taken: Option<Moment>,
    /// Sentences for stderr; any makes the exit status non-zero.
    pub errors: Vec<String>,
}

/// When a picture was drawn, on the run's own clock.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Moment {
    /// Nanoseconds after the run's origin.
    pub since_start_ns: u64,
    /// The run was still going.
    pub running: bool,
}

/// What a script starts once the window has settled.
pub enum Start {
    /// `--autorun`: one run; two, stacked, with `--run-both`; none without it.
    Runs(Vec<ValidConfig>),
    /// `--lesson NAME --autorun`: a lesson, which ends when its verdict comes.
    Lesson(crate::lesson::LessonId),
}

impl Start {
    fn is_empty(&self) -> bool {
        matches!(self, Start::Runs(runs) if runs.is_empty())
    }
}

pub struct Script {
    autorun: Start,
    /// A lesson is run: its runs' ends are not the end (see [`Script::lesson_ended`]).
    lesson: bool,
    screenshot: Option<PathBuf>,
    /// `--screenshot-at`: the picture is taken this long after the run's
    /// origin, while it runs, rather than once it has ended.
    at: Option<Duration>,
    /// Save the whole window, not only the timeline.
    whole_window: bool,
    /// The run's files, written when it ends.
    out: Outputs,
    exit: bool,
    step: Step,
    /// The run's origin (`CLOCK_MONOTONIC` ns), once it has started.
    origin_ns: Option<u64>,
    /// The run has ended and its files have been written.
    ended: bool,
    report: Arc<Mutex<ScriptReport>>,
}

enum Step {
    Warmup(u32),
    /// Until the moment of `--screenshot-at`.
    WaitForMoment,
    /// The moment has come: this frame is the picture.
    Shoot,
    WaitForRun,
    Settle(u32),
    Save(Job),
    Done,
}

impl Script {
    /// `autorun`: what `args` asks to start, validated.
    pub fn new(autorun: Start, args: &Launch) -> Script {
        Script {
            step: if !autorun.is_empty() {
                Step::Warmup(0)
            } else {
                Script::waiting(args.screenshot_at)
            },
            lesson: matches!(autorun, Start::Lesson(_)),
            autorun,
            screenshot: args.screenshot.clone(),
            at: args.screenshot_at,
            whole_window: args.whole_window,
            out: args.outputs.clone(),
            exit: args.exit,
            origin_ns: None,
            ended: false,
            report: Arc::default(),
        }
    }

    /// What to wait for once the run is under way.
    fn waiting(at: Option<Duration>) -> Step {
        match at {
            Some(_) => Step::WaitForMoment,
            None => Step::WaitForRun,
        }
    }

    /// Whether the run is pictured while it goes (`--screenshot-at`), so
    /// frames during it matter.
    pub fn watches_live(&self) -> bool {
        self.at.is_some()
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
    ) -> Option<Start> {
        let mut start = None;
        match self.step {
            Step::Warmup(n) if n < WARMUP_FRAMES => {
                self.step = Step::Warmup(n + 1);
                ctx.request_repaint_after(WARMUP_PAUSE);
                return None;
            }
            Step::Warmup(_) => {
                self.step = Script::waiting(self.at);
                let autorun = std::mem::replace(&mut self.autorun, Start::Runs(Vec::new()));
                start = Some(autorun).filter(|s| !s.is_empty());
            }
            Step::Settle(n) if n < SETTLE_FRAMES => self.step = Step::Settle(n + 1),
            Step::Shoot | Step::Settle(_) => self.shoot(ctx, timeline, export),
            Step::WaitForMoment | Step::WaitForRun | Step::Save(_) | Step::Done => return None,
        }
        ctx.request_repaint();
        start
    }

    /// Asks for the picture (the renderer takes the next frame), or ends if
    /// there is none to take.
    fn shoot(&mut self, ctx: &Context, timeline: Option<Rect>, export: &mut ExportView) {
        match (&self.screenshot, timeline) {
            (Some(path), Some(rect)) => {
                let crop = (!self.whole_window).then_some(rect);
                self.step = Step::Save(export.save_png(ctx, crop, path.clone()));
            }
            (Some(_), None) => {
                self.fail("the timeline was not drawn, so there is no picture to save".into());
                self.after_picture(ctx);
            }
            (None, _) => self.finish(ctx),
        }
    }

    /// Moves on once the moment of the picture has come, the run has ended
    /// (`last`: the newest run; `idle`: nothing is running or queued) or the
    /// picture has been saved.
    pub fn poll(&mut self, ctx: &Context, last: Option<&Recording>, idle: bool, saved: &[Saved]) {
        if let Some(rec) = last.filter(|r| r.origin_ns > 0) {
            self.origin_ns = Some(rec.origin_ns);
        }
        let ended = last.filter(|r| idle && !r.is_running());
        match self.step {
            Step::WaitForMoment => {
                if let Some(rec) = ended {
                    self.fail(format!(
                        "the run ended after {:.2} s, before --screenshot-at {} s",
                        rec.wall_ns as f64 / 1e9,
                        self.at.unwrap_or_default().as_secs_f64()
                    ));
                    self.run_ended(ctx, rec);
                    return;
                }
                let (Some(at), Some(origin)) = (self.at, self.origin_ns) else {
                    return;
                };
                let due = origin.saturating_add(at.as_nanos() as u64);
                match due.checked_sub(sys::monotonic_ns()) {
                    // Without a GPU the app redraws only once a second: ask for the frame due.
                    Some(wait) if wait > 0 => ctx.request_repaint_after(Duration::from_nanos(wait)),
                    _ => self.step = Step::Shoot,
                }
            }
            Step::WaitForRun if self.lesson => {}
            Step::WaitForRun => {
                if let Some(rec) = ended {
                    self.run_ended(ctx, rec);
                }
            }
            Step::Save(job) => {
                // The renderer pictures the frame after the request: this
                // poll took in the data that frame shows.
                if self.lock().taken.is_none() {
                    let now = self.origin_ns.zip(last).map(|(origin, rec)| Moment {
                        since_start_ns: sys::monotonic_ns().saturating_sub(origin),
                        running: rec.is_running(),
                    });
                    self.lock().taken = now;
                }
                let Some((_, result)) = saved.iter().find(|(j, _)| *j == job) else {
                    return;
                };
                match result {
                    Ok(file) => self.lock().saved = Some(file.clone()),
                    Err(why) => self.fail(why.clone()),
                }
                self.after_picture(ctx);
            }
            Step::Warmup(_) | Step::Shoot | Step::Settle(_) | Step::Done => {}
        }
    }

    /// Reports the run's failures and writes its files; then takes the
    /// picture of the finished run, unless it was due during the run.
    fn run_ended(&mut self, ctx: &Context, rec: &Recording) {
        for why in &rec.failures {
            self.fail(format!("the run reported: {why}"));
        }
        if rec.status == RunStatus::Cancelled {
            self.fail("the run was stopped before it finished".into());
        }
        if let Err(why) = self.out.write(rec) {
            self.fail(why.to_string());
        }
        self.ended = true;
        if self.at.is_some() {
            self.after_picture(ctx);
        } else {
            self.step = Step::Settle(0);
            ctx.request_repaint();
        }
    }

    /// The lesson has ended (`outcome`: its verdict, if it gave one): its
    /// slide is pictured once drawn. A lesson that could not judge its
    /// claim on this machine still has a slide that says why.
    pub fn lesson_ended(&mut self, ctx: &Context, outcome: Option<&crate::lesson::Outcome>) {
        match outcome {
            None => self.fail("the lesson ended without a verdict".into()),
            Some(o) if o.reason.as_deref() == Some(crate::lesson::STOPPED) => {
                self.fail("the lesson was stopped before it finished".into());
            }
            Some(_) => {}
        }
        self.ended = true;
        self.step = Step::Settle(0);
        ctx.request_repaint();
    }

    /// A picture taken during the run waits for its end (and its files).
    fn after_picture(&mut self, ctx: &Context) {
        if self.ended {
            self.finish(ctx);
        } else {
            self.step = Step::WaitForRun;
        }
    }

    /// Ctrl+C or SIGTERM, while the app stops the run as Stop does: that run
    /// ends as usual (its picture is saved), then the window closes. With no
    /// run in progress (`busy`), there is nothing to wait for.
    pub fn interrupt(&mut self, ctx: &Context, busy: bool) {
        self.exit = true;
        self.autorun = Start::Runs(Vec::new());
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
        self.report
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
