//! The desktop app: set up a workload, pin threads to cores, run it, watch it
//! unfold, compare runs, export pictures. A thin shell over the engine: every
//! run goes through [`crate::run::start`], and the UI only reads its events.
//!
//! - [`app`]: the app state and the deferred commands that change it.
//! - `controls`, `timeline`, `utilisation`, `figures`, `history`, `export`:
//!   one view each, owning its state and drawing itself with a `ui` method.
//! - `running`: a run from the click on Run to its end; `script`: the
//!   scripted mode (`--autorun --screenshot FILE --exit`); `palette`: colours.
//! - [`bench`](mod@bench): the cost of a frame, for `corelanes bench` and `benches/`.

use eframe::egui;
pub mod app;
pub mod bench;
mod controls;
mod export;
mod figures;
mod history;
pub mod palette;
mod running;
mod script;
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

/// Opens the window; with `--autorun --screenshot FILE --exit`, runs, saves
/// the timeline picture and closes, failing if any of it failed.
pub fn run(args: Option<crate::cli::GuiArgs>) -> anyhow::Result<ExitCode> {
    let mut app = App::from_args(args.as_ref())?;
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
            .with_inner_size(WINDOW_SIZE)
            .with_min_inner_size([900.0, 600.0]),
        ..Default::default()
    };
    eframe::run_native(
        "corelanes",
        options,
        Box::new(|cc| {
            // Light: the pictures are meant for slides and printed pages.
            cc.egui_ctx.set_theme(egui::Theme::Light);
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
    let report = report.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(file) = &report.saved {
        let picture = file.picture.unwrap_or(export::Picture {
            pixels: [0, 0],
            pixels_per_point: 1.0,
        });
        let [w, h] = picture.pixels;
        let what = if args.as_ref().is_some_and(|a| a.whole_window) {
            "window"
        } else {
            "timeline"
        };
        println!(
            "wrote {} (the {what}: {w}×{h} px at {} px per point)",
            export::shown_path(&file.path),
            picture.pixels_per_point
        );
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
