//! The desktop app: set up a workload, pin threads to cores, run it, watch it
//! unfold, compare runs, export pictures. A thin shell over the engine: every
//! run goes through [`crate::run::start`], and the UI only reads its events.
//!
//! - [`app`]: the app state and the deferred commands that change it.
//! - `controls`, `timeline`, `utilisation`, `figures`, `history`, `export`:
//!   one view each, owning its state and drawing itself with a `ui` method.
//! - `running`: a run from the click on Run to its end; `script`: the
//!   scripted mode (`--autorun --screenshot FILE [--screenshot-at S] --exit`); `palette`: colours.
//! - [`bench`](mod@bench): the cost of a frame, for `corelanes bench` and `benches/`.

use eframe::egui;
pub mod app;
pub mod bench;
mod controls;
mod experiments;
mod export;
mod figures;
mod history;
pub mod palette;
mod program;
mod running;
mod script;
mod sessions;
mod timeline;
mod utilisation;

use std::process::ExitCode;

use crate::interrupt::Interrupts;

pub use app::App;
pub use controls::{Controls, PlacementChoice};
pub use export::{Picture, SavedFile};
pub use history::{Entry, History};

/// The window's size in points: fits a 1600 × 1000 screen with its panels.
pub const WINDOW_SIZE: [f32; 2] = [1500.0, 940.0];

/// How the window is opened: what `corelanes gui [flags]` asked for, as
/// plain values (parsing the command line is the CLI's business).
#[derive(Clone, Debug)]
pub struct Launch {
    /// What the controls start with (and what `autorun` runs).
    pub config: crate::run::RunConfig,
    /// Whether `config` came from flags given (then it replaces the saved
    /// settings) rather than from the defaults.
    pub config_given: bool,
    /// A session file to open in the window.
    pub open: Option<std::path::PathBuf>,
    /// Start the run as soon as the window has settled.
    pub autorun: bool,
    /// With `autorun`: the concurrency preset, then the parallelism one, stacked.
    pub run_both: bool,
    /// Open the Experiments view on this lesson (and, with `autorun`, run it).
    pub lesson: Option<crate::lesson::LessonId>,
    /// Show a synthetic 256-CPU, 1 000-thread recording (labelled as such).
    pub synthetic_many_core: bool,
    /// Save the timeline (or the window) as PNG here.
    pub screenshot: Option<std::path::PathBuf>,
    /// Take the picture this long after the run started, while it runs.
    pub screenshot_at: Option<std::time::Duration>,
    pub whole_window: bool,
    /// Close once the picture (or the run) is done.
    pub exit: bool,
    /// The run's files, written when it ends.
    pub outputs: crate::outputs::Outputs,
    /// The window's size in points.
    pub window_size: Option<[f32; 2]>,
}

impl Launch {
    /// The window as a person opens it: nothing scripted.
    pub fn interactive(config: crate::run::RunConfig) -> Launch {
        Launch {
            config,
            config_given: false,
            open: None,
            autorun: false,
            run_both: false,
            lesson: None,
            synthetic_many_core: false,
            screenshot: None,
            screenshot_at: None,
            whole_window: false,
            exit: false,
            outputs: Default::default(),
            window_size: None,
        }
    }

    /// Whether anything is scripted (then the session reports and may close by itself).
    pub fn is_scripted(&self) -> bool {
        self.autorun
            || self.lesson.is_some()
            || self.screenshot.is_some()
            || self.exit
            || self.outputs.any()
    }
}

/// Opens the window; with `--autorun --screenshot FILE --exit`, runs, saves
/// the timeline picture (and the run's files, with `--json` etc.) and
/// closes, failing if any of it failed.
pub fn run(launch: Launch) -> anyhow::Result<ExitCode> {
    let mut app = App::from_launch(&launch)?;
    let report = app.script_report();
    // A scripted session is a measurement, like `corelanes run`: Ctrl+C stops
    // it and keeps what was drawn. An interactive window has its Stop button.
    let interrupts = report.is_some().then(Interrupts::install).transpose()?;
    if let Some(interrupts) = &interrupts {
        app.stop_on(interrupts.stop().clone());
    }
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("corelanes")
            .with_app_id("corelanes")
            .with_inner_size(launch.window_size.unwrap_or(WINDOW_SIZE))
            .with_min_inner_size([900.0, 600.0]),
        // A scripted picture must not depend on (or change) a saved window.
        persist_window: !launch.is_scripted(),
        ..Default::default()
    };
    eframe::run_native(
        "corelanes",
        options,
        Box::new(|cc| {
            // Light: the pictures are meant for slides and printed pages.
            cc.egui_ctx.set_theme(egui::Theme::Light);
            app.restore(cc.storage, launch.config_given);
            let adapter = cc.wgpu_render_state.as_ref().map(|r| r.adapter.get_info());
            app.set_software_rendering(
                adapter.is_some_and(|a| a.device_type == eframe::wgpu::DeviceType::Cpu),
            );
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the window: {e}"))?;

    let Some(report) = report else {
        return Ok(ExitCode::SUCCESS);
    };
    let report = report
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(file) = &report.saved {
        let picture = file.picture.unwrap_or(export::Picture {
            pixels: [0, 0],
            pixels_per_point: 1.0,
        });
        let [w, h] = picture.pixels;
        let what = if launch.whole_window {
            "window"
        } else {
            "timeline"
        };
        let when = match report.taken {
            Some(m) if m.running => format!(
                ", {:.2} s after the run started, while it ran",
                m.since_start_ns as f64 / 1e9
            ),
            Some(_) => ", after the run ended".into(),
            None => String::new(),
        };
        let line = format!(
            "wrote {} (the {what}: {w}×{h} px at {} px per point){when}",
            export::shown_path(&file.path),
            picture.pixels_per_point
        );
        // With `--json -` stdout carries the summary alone.
        if launch.outputs.json_to_stdout() {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
    let mut errors = report.errors.clone();
    if !report.done {
        errors.push("the window was closed before the scripted run was done".into());
    }
    for why in &errors {
        eprintln!("error: {why}");
    }
    if let Some(code) = interrupts.and_then(|i| i.exit_code()) {
        return Ok(code);
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
