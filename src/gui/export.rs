//! Saving what is shown: PNG pictures of the timeline or the whole window,
//! and the run's data as Chrome trace, CSV and summary JSON.
//!
//! Pictures come from the renderer a frame later (a screenshot callback);
//! encoding and writing happen on a short-lived thread so the UI never waits.
//! A failure is reported with its sentence and loses nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use eframe::egui;
use egui::{ColorImage, Context, Rect, RichText, Ui};

use super::history::History;
use super::palette;
use crate::export;
use crate::run::Recording;

/// Identifies one save request, so a caller can wait for its own result.
pub type Job = u64;

/// A file written: where, and for a picture its size.
#[derive(Clone, Debug, PartialEq)]
pub struct SavedFile {
    pub path: PathBuf,
    pub picture: Option<Picture>,
}

/// A picture's size in pixels, and the scale it was rendered at.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Picture {
    pub pixels: [usize; 2],
    pub pixels_per_point: f32,
}

/// The outcome of a save: the file written, or the sentence saying why not.
pub type Saved = (Job, Result<SavedFile, String>);

/// A picture requested from the renderer and not yet received.
struct PendingShot {
    job: Job,
    /// The region to keep, in points; `None`: the whole window.
    crop: Option<Rect>,
    pixels_per_point: f32,
    path: PathBuf,
}

type Channel<T> = (Sender<T>, Receiver<T>);

/// What one row of the view saves.
#[derive(Clone, Copy)]
enum Kind {
    /// The timeline, cropped from the window.
    Timeline,
    Window,
    /// The run's data, written once it has finished.
    Data(export::Render),
}

/// A row of the view: its button, what it saves, and its default file's ending.
struct Row {
    button: &'static str,
    what: &'static str,
    ending: &'static str,
    kind: Kind,
}

const ROWS: [Row; 5] = [
    Row {
        button: "Save PNG",
        what: "The timeline as a picture, cropped to it",
        ending: ".png",
        kind: Kind::Timeline,
    },
    Row {
        button: "Save window PNG",
        what: "The whole window as a picture",
        ending: "-window.png",
        kind: Kind::Window,
    },
    Row {
        button: "Save trace",
        what: "Chrome trace JSON: opens in ui.perfetto.dev",
        ending: ".trace.json",
        kind: Kind::Data(export::write_chrome_trace),
    },
    Row {
        button: "Save CSV",
        what: "One line per task",
        ending: ".csv",
        kind: Kind::Data(export::write_tasks_csv),
    },
    Row {
        button: "Save JSON",
        what: "Configuration, figures, threads, tasks and slices",
        ending: ".json",
        kind: Kind::Data(export::write_summary_json),
    },
];

/// An outcome as the view shows it, under the run it was saved from.
struct Message {
    run: Option<usize>,
    ok: bool,
    text: String,
}

pub struct ExportView {
    /// Editable destinations, one per row, reset to defaults when another run is shown.
    paths: [String; ROWS.len()],
    /// The run shown: the paths are its defaults, and saves requested belong to it.
    shown: Option<usize>,
    /// Every outcome, oldest first; each run shows its own.
    messages: Vec<Message>,
    /// The run each save in progress belongs to.
    job_runs: HashMap<Job, usize>,
    pending: Vec<PendingShot>,
    /// Pictures from the renderer's screenshot callbacks.
    shots: Channel<(Job, Arc<ColorImage>)>,
    /// Outcomes from the writer threads.
    results: Channel<Saved>,
    next_job: Job,
}

impl Default for ExportView {
    fn default() -> Self {
        ExportView {
            paths: Default::default(),
            shown: None,
            messages: Vec::new(),
            job_runs: HashMap::new(),
            pending: Vec::new(),
            shots: crossbeam_channel::unbounded(),
            results: crossbeam_channel::unbounded(),
            next_job: 0,
        }
    }
}

impl ExportView {
    /// Asks for a screenshot of the next rendered frame, cropped to `crop`
    /// (points) if given, to be saved as PNG at `path`.
    pub fn save_png(&mut self, ctx: &Context, crop: Option<Rect>, path: PathBuf) -> Job {
        let job = self.job();
        self.pending.push(PendingShot {
            job,
            crop,
            pixels_per_point: ctx.pixels_per_point(),
            path,
        });
        let (tx, repaint) = (self.shots.0.clone(), ctx.clone());
        ctx.request_screenshot(move |image| {
            let _ = tx.send((job, image));
            repaint.request_repaint();
        });
        job
    }

    /// Writes `render`'s export of `rec` to `path` on a worker thread.
    fn save_data(
        &mut self,
        ctx: &Context,
        rec: Arc<Recording>,
        render: export::Render,
        path: PathBuf,
    ) -> Job {
        let job = self.job();
        self.spawn(ctx, job, move || {
            export::write_run(&path, &rec, render).map_err(|e| e.to_string())?;
            Ok(SavedFile {
                path,
                picture: None,
            })
        });
        job
    }

    /// A new save, belonging to the run shown.
    fn job(&mut self) -> Job {
        self.next_job += 1;
        if let Some(run) = self.shown {
            self.job_runs.insert(self.next_job, run);
        }
        self.next_job
    }

    fn say(&mut self, run: Option<usize>, ok: bool, text: String) {
        self.messages.push(Message { run, ok, text });
    }

    fn spawn(
        &self,
        ctx: &Context,
        job: Job,
        work: impl FnOnce() -> Result<SavedFile, String> + Send + 'static,
    ) {
        let (tx, repaint) = (self.results.0.clone(), ctx.clone());
        let spawned = std::thread::Builder::new()
            .name("corelanes-export".into())
            .spawn(move || {
                let _ = tx.send((job, work()));
                repaint.request_repaint();
            });
        if let Err(e) = spawned {
            let _ = self
                .results
                .0
                .send((job, Err(format!("cannot start the export thread: {e}"))));
        }
    }

    /// Handles pictures that arrived and saves that finished; returns the latter.
    pub fn poll(&mut self, ctx: &Context) -> Vec<Saved> {
        while let Ok((job, image)) = self.shots.1.try_recv() {
            let Some(at) = self.pending.iter().position(|p| p.job == job) else {
                continue;
            };
            let shot = self.pending.remove(at);
            self.spawn(ctx, job, move || {
                let image = match shot.crop {
                    Some(rect) => crop(&image, rect, shot.pixels_per_point),
                    None => (*image).clone(),
                };
                let bytes = png_bytes(&image)
                    .map_err(|e| format!("cannot encode {}: {e}", shot.path.display()))?;
                export::write_atomically(&shot.path, &bytes).map_err(|e| e.to_string())?;
                Ok(SavedFile {
                    path: shot.path,
                    picture: Some(Picture {
                        pixels: image.size,
                        pixels_per_point: shot.pixels_per_point,
                    }),
                })
            });
        }
        let saved: Vec<Saved> = self.results.1.try_iter().collect();
        for (job, result) in &saved {
            let run = self.job_runs.remove(job);
            match result {
                Ok(file) => self.say(run, true, format!("wrote {}", shown_path(&file.path))),
                Err(why) => self.say(run, false, why.clone()),
            }
        }
        saved
    }

    pub fn ui(&mut self, ui: &mut Ui, history: &History, timeline: Option<Rect>) {
        ui.heading("Export");
        let Some((index, entry)) = history
            .selected
            .and_then(|i| history.get(i).map(|e| (i, e)))
        else {
            ui.label("Run an experiment to export it.");
            return;
        };
        let stem = format!("./corelanes-{}-{}", entry.rec.config.workload, index + 1);
        if self.shown != Some(index) {
            self.paths = ROWS.map(|row| format!("{stem}{}", row.ending));
            self.shown = Some(index);
        }
        ui.label(format!("run #{}", index + 1));
        let ctx = ui.ctx().clone();
        let finished = !entry.rec.is_running();
        let mut clicked = Vec::new();
        ui.vertical(|ui| {
            for (row, path) in ROWS.iter().zip(&mut self.paths) {
                let ready = finished || !matches!(row.kind, Kind::Data(_));
                if path_row(ui, path, row.button, ready, row.what) {
                    clicked.push((row, PathBuf::from(path.as_str())));
                }
            }
        });
        for (row, path) in clicked {
            let example = PathBuf::from(format!("{stem}{}", row.ending));
            if let Some(why) = advice(&path, &example) {
                self.say(Some(index), false, why);
                continue;
            }
            match row.kind {
                Kind::Timeline => _ = self.save_png(&ctx, timeline, path),
                Kind::Window => _ = self.save_png(&ctx, None, path),
                Kind::Data(render) => _ = self.save_data(&ctx, entry.rec.clone(), render, path),
            }
        }
        for message in self.messages.iter().filter(|m| m.run == Some(index)) {
            let color = if message.ok {
                palette::SUCCESS
            } else {
                palette::WARNING
            };
            ui.label(RichText::new(&message.text).color(color));
        }
    }
}

/// Advice for a destination that cannot be a file, given before trying to
/// write it: what to type, with `example` (the row's default) to show how.
fn advice(path: &Path, example: &Path) -> Option<String> {
    if path.as_os_str().is_empty() {
        return Some(format!(
            "No file name: type one, such as {}",
            example.display()
        ));
    }
    let name = example.file_name()?;
    path.is_dir().then(|| {
        format!(
            "{} is a folder: add a file name, such as {}",
            shown_path(path),
            shown_path(&path.join(name))
        )
    })
}

/// A path field and its button; true when the button was clicked.
fn path_row(ui: &mut Ui, path: &mut String, button: &str, enabled: bool, what: &str) -> bool {
    ui.horizontal(|ui| {
        let clicked = ui
            .add_enabled(
                enabled,
                egui::Button::new(button).min_size(egui::vec2(125.0, 0.0)),
            )
            .on_hover_text(what)
            .on_disabled_hover_text("Wait for the run to finish")
            .clicked();
        let field = egui::TextEdit::singleline(path).desired_width(ui.available_width());
        ui.add(field).accessible_name(format!("{button}: path"));
        clicked
    })
    .inner
}

/// The part of `image` under `rect` (points), clamped to the image.
fn crop(image: &ColorImage, rect: Rect, pixels_per_point: f32) -> ColorImage {
    let whole = Rect::from_min_size(
        egui::Pos2::ZERO,
        egui::vec2(image.width() as f32, image.height() as f32) / pixels_per_point,
    );
    image.region(&rect.intersect(whole), Some(pixels_per_point))
}

fn png_bytes(image: &ColorImage) -> image::ImageResult<Vec<u8>> {
    use image::ImageEncoder;
    let rgba: Vec<u8> = image
        .pixels
        .iter()
        .flat_map(eframe::egui::Color32::to_srgba_unmultiplied)
        .collect();
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out).write_image(
        &rgba,
        image.width() as u32,
        image.height() as u32,
        image::ExtendedColorType::Rgba8,
    )?;
    Ok(out)
}

/// The path as the user will find it (absolute where it can be).
pub fn shown_path(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_in_pixels_and_clamps_to_the_image() {
        let image = ColorImage::new([200, 100], vec![egui::Color32::RED; 200 * 100]);
        let r = Rect::from_min_max(egui::pos2(10.0, 10.0), egui::pos2(60.0, 40.0));
        assert_eq!(crop(&image, r, 2.0).size, [100, 60]);
        let past = Rect::from_min_max(egui::pos2(50.0, 0.0), egui::pos2(500.0, 500.0));
        assert_eq!(crop(&image, past, 1.0).size, [150, 100]);
        let png = png_bytes(&crop(&image, r, 1.0)).unwrap();
        let back = image::load_from_memory(&png).unwrap();
        assert_eq!((back.width(), back.height()), (50, 30));
    }
}
