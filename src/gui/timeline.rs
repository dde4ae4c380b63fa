//! The timeline: one lane per core and one per thread on a shared time axis,
//! painted by hand so that only the visible range is drawn and spans too
//! narrow to see are folded into marked blocks (smooth with a million spans).
//!
//! Core lanes show what each core ran; thread lanes show task lifetimes; a
//! thin strip under a thread lane shows the kernel's view of that thread. On
//! one core two threads' tasks overlap in time (concurrency) while the core
//! lane shows them taking turns; on two cores both run at once (parallelism).

use std::sync::Arc;

use eframe::egui;
use egui::{
    Align2, Color32, CornerRadius, FontId, Galley, Painter, Pos2, Rect, Response, Sense, Stroke,
    StrokeKind, Ui, Vec2, pos2, vec2,
};

use super::history::History;
use super::palette;
use crate::metrics::human_ns;
use crate::run::Recording;
use crate::telemetry::sched::SchedSource;
use crate::telemetry::sched::{SchedSlice, SliceState};
use crate::timeline::{Drawn, Lane};
use crate::topology::Topology;

/// Spans narrower than this many pixels are folded together.
const MIN_PX: f64 = 2.0;
const GUTTER: f32 = 100.0;
const LEGEND_ROW: f32 = 22.0;
const CAPTION_H: f32 = 24.0;
const SECTION_H: f32 = 18.0;
const GAP_H: f32 = 10.0;
const AXIS_H: f32 = 34.0;
const LANE_MIN: f32 = 12.0;
const LANE_MAX: f32 = 56.0;
/// Core lanes are listed for every allowed core up to this many (idle ones
/// included: an idle core is part of the picture); beyond it, busy ones only.
const ALL_CORES_UP_TO: usize = 16;

/// The lane of a core that ran nothing.
static EMPTY_LANE: std::sync::LazyLock<Lane> = std::sync::LazyLock::new(Lane::default);

/// One run as the timeline draws it.
pub struct RunView<'a> {
    /// The run's index in the history (what a selection refers to).
    pub index: usize,
    pub rec: &'a Recording,
    /// The line above the run's lanes.
    pub caption: String,
}

/// A task the user clicked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selection {
    pub run: usize,
    pub task: u32,
}

/// The timeline's view state: what time range is visible, what is selected.
#[derive(Default)]
pub struct TimelineView {
    /// Visible ns since the runs' origins; `None` fits everything (and follows a live run).
    range: Option<[f64; 2]>,
    pub selected: Option<Selection>,
    /// Where the timeline was drawn in the last frame (to crop a PNG to it).
    pub rect: Option<Rect>,
    scratch: Vec<Drawn>,
    /// Whether this frame folded any spans (the legend then explains the marker).
    folds: bool,
    /// No hover tooltips (a scripted picture must not show one where the pointer happens to be).
    pub quiet: bool,
}

/// Maps time to x inside the data area (right of the lane labels).
struct PaintCtx {
    painter: Painter,
    data: Rect,
    t0: f64,
    t1: f64,
    text: Color32,
    weak: Color32,
}

impl PaintCtx {
    fn x(&self, t_ns: f64) -> f32 {
        self.data.left() + ((t_ns - self.t0) / (self.t1 - self.t0)) as f32 * self.data.width()
    }

    fn t(&self, x: f32) -> f64 {
        self.t0
            + f64::from(x - self.data.left()) / f64::from(self.data.width()) * (self.t1 - self.t0)
    }

    fn ns_per_px(&self) -> f64 {
        (self.t1 - self.t0) / f64::from(self.data.width().max(1.0))
    }

    fn label(
        &self,
        pos: Pos2,
        anchor: Align2,
        text: impl ToString,
        size: f32,
        color: Color32,
    ) -> Rect {
        self.painter
            .text(pos, anchor, text, FontId::proportional(size), color)
    }
}

/// What a lane's items index and how to colour them.
#[derive(Clone, Copy, PartialEq)]
enum Items {
    /// Task lifetimes of one thread.
    ThreadTasks,
    /// Task lifetimes on this core (no kernel data): the lifetimes of threads
    /// sharing the core overlap, so each of them gets its own band of the lane.
    CoreTasks(usize),
    /// The kernel's running slices on a core.
    CoreSlices,
    /// The kernel's state slices of one thread.
    States,
}

enum Row<'a> {
    Caption(&'a RunView<'a>),
    Section(String),
    Lane {
        run: &'a RunView<'a>,
        label: String,
        swatch: Option<Color32>,
        lane: &'a Lane,
        items: Items,
        strip: Option<&'a Lane>,
    },
    Gap,
}

/// The span under the pointer.
struct Hit {
    run: usize,
    items: Items,
    drawn: Drawn,
}

impl TimelineView {
    /// Shows everything again (and follows a live run).
    pub fn fit(&mut self) {
        self.range = None;
    }

    /// The visible ns range once the user zoomed or panned; `None` while fitted.
    pub fn visible_range(&self) -> Option<[f64; 2]> {
        self.range
    }

    /// Draws the runs stacked on one time scale, filling the available space.
    pub fn ui(&mut self, ui: &mut Ui, runs: &[RunView<'_>]) {
        let rows = rows(runs);
        let lanes = rows
            .iter()
            .filter(|r| matches!(r, Row::Lane { .. }))
            .count()
            .max(1);
        let strips = rows
            .iter()
            .filter(|r| matches!(r, Row::Lane { strip: Some(_), .. }))
            .count();
        let avail = ui.available_size();
        let legend = Legend::new(ui, runs, avail.x);
        let fixed: f32 = legend.height + AXIS_H + rows.iter().map(fixed_height).sum::<f32>();
        // Strips are a third of a lane: solve lanes·h + strips·h/3 = the room left.
        let per_lane = lanes as f32 + strips as f32 / 3.0;
        let lane_h = ((avail.y - fixed) / per_lane)
            .clamp(LANE_MIN, LANE_MAX)
            .floor();
        let strip_h = (lane_h / 3.0).round().max(4.0);
        let height = fixed + lanes as f32 * lane_h + strips as f32 * strip_h;
        let (response, painter) = ui.allocate_painter(
            vec2(avail.x.max(GUTTER + 100.0), height),
            Sense::click_and_drag(),
        );
        let rect = response.rect;
        self.rect = Some(rect.intersect(ui.clip_rect()));
        let visuals = ui.visuals();
        painter.rect_filled(rect, 0.0, visuals.extreme_bg_color);

        let fit = fit_range(runs);
        let [t0, t1] = self.range.unwrap_or(fit);
        let mut pc = PaintCtx {
            painter,
            data: Rect::from_x_y_ranges(rect.left() + GUTTER..=rect.right() - 12.0, rect.y_range()),
            t0,
            t1,
            text: visuals.strong_text_color(),
            weak: visuals.weak_text_color(),
        };
        let axis = Rect::from_x_y_ranges(rect.x_range(), rect.bottom() - AXIS_H..=rect.bottom());
        self.interact(ui, &response, &pc, axis, fit);
        // Draw this frame with what the input just asked for, not a frame late.
        [pc.t0, pc.t1] = self.range.unwrap_or(fit);

        let hover = response.hover_pos();
        let mut hit = None;
        self.folds = false;
        let mut y = rect.top() + legend.height;
        let lanes_top = y;
        for row in &rows {
            y += self.row(&pc, row, y, lane_h, strip_h, hover, &mut hit);
        }
        grid_and_axis(&pc, lanes_top..=y, axis);
        legend.paint(&pc, rect.min, self.folds);

        if let Some(hit) = hit {
            let run = runs
                .iter()
                .find(|r| r.index == hit.run)
                .expect("hits come from the shown runs");
            if response.clicked() {
                self.selected = (hit.items != Items::States
                    && hit.items != Items::CoreSlices
                    && hit.drawn.count == 1)
                    .then_some(Selection {
                        run: hit.run,
                        task: hit.drawn.item,
                    });
            }
            if !self.quiet {
                response.on_hover_ui_at_pointer(|ui| tooltip(ui, run.rec, &hit));
            }
        } else if response.clicked() {
            self.selected = None;
        }
    }

    /// Zoom (Ctrl+scroll, or scroll over the axis), pan (drag, sideways scroll), fit (double-click).
    fn interact(&mut self, ui: &Ui, response: &Response, pc: &PaintCtx, axis: Rect, fit: [f64; 2]) {
        if response.double_clicked() {
            self.range = None;
            return;
        }
        let Some(pointer) = response.hover_pos() else {
            return;
        };
        let (zoom, scroll) = ui.input(|i| (i.zoom_delta(), i.smooth_scroll_delta()));
        let mut factor = f64::from(zoom);
        if axis.contains(pointer) && scroll.y != 0.0 {
            factor *= f64::from((scroll.y * 0.01).exp());
        }
        let pan_px = -response.drag_delta().x - if factor == 1.0 { scroll.x } else { 0.0 };
        if factor == 1.0 && pan_px == 0.0 {
            return;
        }
        if axis.contains(pointer) {
            // The axis used the wheel: do not let an enclosing scroll area use it too.
            ui.input_mut(|i| i.smooth_scroll_delta = Vec2::ZERO);
        }
        let [t0, t1] = [pc.t0, pc.t1];
        let at = pc.t(pointer.x.clamp(pc.data.left(), pc.data.right()));
        let span = ((t1 - t0) / factor).clamp(1_000.0, (fit[1] - fit[0]) * 20.0);
        let left = at - (at - t0) * span / (t1 - t0) + f64::from(pan_px) * pc.ns_per_px();
        self.range = Some([left, left + span]);
    }

    /// Paints one row at `y`; returns its height.
    #[allow(clippy::too_many_arguments)]
    fn row(
        &mut self,
        pc: &PaintCtx,
        row: &Row,
        y: f32,
        lane_h: f32,
        strip_h: f32,
        hover: Option<Pos2>,
        hit: &mut Option<Hit>,
    ) -> f32 {
        let left = pc.data.left() - GUTTER + 6.0;
        match row {
            Row::Caption(run) => {
                pc.label(
                    pos2(left, y + CAPTION_H / 2.0),
                    Align2::LEFT_CENTER,
                    &run.caption,
                    15.0,
                    pc.text,
                );
                CAPTION_H
            }
            Row::Section(text) => {
                pc.label(
                    pos2(left, y + SECTION_H / 2.0),
                    Align2::LEFT_CENTER,
                    text,
                    12.5,
                    palette::faded(pc.text, 0.75),
                );
                SECTION_H
            }
            Row::Gap => GAP_H,
            Row::Lane {
                run,
                label,
                swatch,
                lane,
                items,
                strip,
            } => {
                let lane_rect =
                    Rect::from_x_y_ranges(pc.data.x_range(), y + 1.0..=y + lane_h - 1.0);
                pc.painter
                    .rect_filled(lane_rect, 2.0, palette::faded(pc.weak, 0.08));
                let mut text_x = left;
                if let Some(color) = swatch {
                    let sw = Rect::from_center_size(
                        pos2(left + 5.0, lane_rect.center().y),
                        vec2(10.0, 10.0),
                    );
                    pc.painter.rect_filled(sw, 2.0, *color);
                    text_x += 14.0;
                }
                pc.label(
                    pos2(text_x, lane_rect.center().y),
                    Align2::LEFT_CENTER,
                    label,
                    13.0,
                    pc.text,
                );
                self.spans(pc, run, lane, *items, lane_rect, hover, hit);
                match strip {
                    Some(strip) => {
                        let strip_rect = Rect::from_x_y_ranges(
                            pc.data.x_range(),
                            y + lane_h..=y + lane_h + strip_h - 1.0,
                        );
                        self.spans(pc, run, strip, Items::States, strip_rect, hover, hit);
                        lane_h + strip_h
                    }
                    None => lane_h,
                }
            }
        }
    }

    /// Paints the visible spans of one lane, folded below [`MIN_PX`].
    #[allow(clippy::too_many_arguments)]
    fn spans(
        &mut self,
        pc: &PaintCtx,
        run: &RunView,
        lane: &Lane,
        items: Items,
        rect: Rect,
        hover: Option<Pos2>,
        hit: &mut Option<Hit>,
    ) {
        let rec = run.rec;
        let slices: &[SchedSlice] = rec.sched.as_ref().map_or(&[], |s| &s.slices);
        let ns_per_px = pc.ns_per_px();
        let t0 = pc.t0.max(0.0) as u64;
        let t1 = pc.t1.max(0.0) as u64;
        self.scratch.clear();
        lane.fold(t0, t1, ns_per_px, MIN_PX, &mut self.scratch);
        let hover = hover.filter(|p| rect.y_range().contains(p.y));
        // The threads that may run on this core, in order: one band each.
        let sharing: Vec<usize> = match items {
            Items::CoreTasks(core) => rec
                .threads
                .iter()
                .filter(|t| t.pinned_core.is_none_or(|c| c == core))
                .map(|t| t.index)
                .collect(),
            _ => Vec::new(),
        };
        let bands = sharing.len().clamp(1, 8);
        for drawn in &self.scratch {
            let item = drawn.item as usize;
            let (thread, color, task) = match items {
                Items::ThreadTasks | Items::CoreTasks(_) => {
                    let Some(task) = rec.tasks.get(item) else {
                        continue;
                    };
                    (
                        task.thread as usize,
                        palette::thread(task.thread as usize),
                        Some(task),
                    )
                }
                Items::CoreSlices | Items::States => {
                    let Some(slice) = slices.get(item) else {
                        continue;
                    };
                    let color = match items {
                        Items::States => palette::state(slice.state),
                        _ => palette::thread(slice.thread),
                    };
                    (slice.thread, color, None)
                }
            };
            let x0 = pc.x(drawn.start_ns as f64).max(rect.left() - 1.0);
            let x1 = pc
                .x(drawn.end_ns as f64)
                .min(rect.right() + 1.0)
                .max(x0 + 1.0);
            let (y0, y1) = match sharing.iter().position(|&t| t == thread) {
                Some(rank) if bands > 1 => {
                    let band = rect.height() / bands as f32;
                    let top = rect.top() + (rank % bands) as f32 * band;
                    (top, top + band)
                }
                _ => (rect.top(), rect.bottom()),
            };
            let r = Rect::from_x_y_ranges(x0..=x1, y0..=y1);
            if drawn.count > 1 {
                self.folds = true;
                folded(&pc.painter, r, color);
            } else {
                pc.painter.rect_filled(r, 0.0, color);
                if let Some(task) = task {
                    outline_task(
                        pc,
                        r,
                        task.ok,
                        self.selected
                            == Some(Selection {
                                run: run.index,
                                task: drawn.item,
                            }),
                    );
                    if items == Items::ThreadTasks && r.width() > 52.0 && r.height() > 14.0 {
                        let name = format!("task {}", task.id);
                        pc.painter.with_clip_rect(r).text(
                            r.center(),
                            Align2::CENTER_CENTER,
                            name,
                            FontId::proportional(11.5),
                            palette::text_on(color),
                        );
                    }
                }
            }
            if let Some(p) = hover
                && (x0 - 1.0..=x1 + 1.0).contains(&p.x)
                && (y0..=y1).contains(&p.y)
            {
                *hit = Some(Hit {
                    run: run.index,
                    items,
                    drawn: *drawn,
                });
            }
        }
    }

    /// Details of the selected task, for a side panel.
    pub fn selection_ui(&self, ui: &mut Ui, history: &History) {
        let Some(sel) = self.selected else { return };
        let Some(rec) = history.get(sel.run).map(|e| &*e.rec) else {
            return;
        };
        let Some(task) = rec.tasks.get(sel.task as usize) else {
            return;
        };
        ui.heading("Selected task");
        ui.label(format!("run #{}: {}", sel.run + 1, rec.title()));
        for line in task_lines(rec, task) {
            ui.label(line);
        }
        ui.separator();
    }
}

/// The visible range that shows every run whole (a live run: up to now).
fn fit_range(runs: &[RunView]) -> [f64; 2] {
    let end = runs
        .iter()
        .map(|r| {
            let rec = r.rec;
            let live = if rec.is_running() && rec.origin_ns > 0 {
                crate::sys::monotonic_ns().saturating_sub(rec.origin_ns)
            } else {
                0
            };
            rec.wall_ns.max(rec.timeline.end_ns()).max(live)
        })
        .max()
        .unwrap_or(0)
        .max(1_000_000) as f64;
    [-end * 0.01, end * 1.02]
}

/// Rows of every run: caption, core lanes, thread lanes (with state strips).
fn rows<'a>(runs: &'a [RunView<'a>]) -> Vec<Row<'a>> {
    let topo = Topology::get();
    let mut rows = Vec::new();
    for (n, run) in runs.iter().enumerate() {
        if n > 0 {
            rows.push(Row::Gap);
        }
        let tl = &run.rec.timeline;
        rows.push(Row::Caption(run));
        rows.push(Row::Section(if tl.cores_from_kernel {
            match run.rec.sched_source {
                SchedSource::Procfs => "Cores: what each core ran, sampled from /proc at ~1 kHz (coloured by thread)".into(),
                _ => "Cores: what each core ran, from the kernel's context switches (coloured by thread)".into(),
            }
        } else {
            "Cores: task lifetimes by the core each task started on (no kernel data: cannot show turns)".into()
        }));
        let mut cores = tl.busy_cores();
        if topo.allowed.len() <= ALL_CORES_UP_TO {
            cores.extend(&topo.allowed);
            cores.sort_unstable();
            cores.dedup();
        }
        for core in cores {
            rows.push(Row::Lane {
                run,
                label: format!("core {core}"),
                swatch: None,
                lane: tl.cores.get(core).unwrap_or(&EMPTY_LANE),
                items: if tl.cores_from_kernel {
                    Items::CoreSlices
                } else {
                    Items::CoreTasks(core)
                },
                strip: None,
            });
        }
        let states = has_states(run.rec);
        rows.push(Row::Section(if states {
            "Threads: task lifetimes; strip below: the kernel's state of the thread".into()
        } else {
            "Threads: task lifetimes".into()
        }));
        for (i, lane) in tl.threads.iter().enumerate() {
            let name = run
                .rec
                .threads
                .get(i)
                .map_or_else(|| format!("worker-{i}"), |t| t.name.clone());
            rows.push(Row::Lane {
                run,
                label: name,
                swatch: Some(palette::thread(i)),
                lane,
                items: Items::ThreadTasks,
                strip: tl.thread_states.get(i).filter(|_| states),
            });
        }
    }
    rows
}

fn fixed_height(row: &Row) -> f32 {
    match row {
        Row::Caption(_) => CAPTION_H,
        Row::Section(_) => SECTION_H,
        Row::Gap => GAP_H,
        Row::Lane { .. } => 0.0,
    }
}

/// A block of folded spans: faded, hatched, so it is never mistaken for one long span.
fn folded(painter: &Painter, r: Rect, color: Color32) {
    painter.rect_filled(r, 0.0, palette::faded(color, 0.55));
    let stroke = Stroke::new(1.0, palette::faded(color, 0.95));
    let mut x = r.left() + 1.0;
    while x + 4.0 <= r.right() {
        painter.line_segment([pos2(x, r.bottom()), pos2(x + 4.0, r.top())], stroke);
        x += 6.0;
    }
}

fn outline_task(pc: &PaintCtx, r: Rect, ok: bool, selected: bool) {
    let stroke = if selected {
        Stroke::new(2.5, palette::SELECTED)
    } else if !ok {
        Stroke::new(2.0, palette::FAILED)
    } else if r.width() > 4.0 {
        // Separates back-to-back tasks of one thread.
        Stroke::new(1.0, Color32::WHITE)
    } else {
        return;
    };
    pc.painter
        .rect_stroke(r, CornerRadius::ZERO, stroke, StrokeKind::Inside);
}

#[derive(Clone, Copy)]
enum Swatch {
    Fill(Color32),
    Folded,
}

/// Thread colours, state colours and the folded marker, wrapped into rows.
struct Legend {
    /// Each entry's swatch, text, and left-centre relative to the timeline's corner.
    items: Vec<(Swatch, Arc<Galley>, Vec2)>,
    height: f32,
}

impl Legend {
    fn new(ui: &Ui, runs: &[RunView], width: f32) -> Legend {
        let threads = runs.iter().map(|r| r.rec.threads.len()).max().unwrap_or(0);
        let states = runs.iter().any(|r| has_states(r.rec));
        let mut entries: Vec<(Swatch, String)> = (0..threads.min(10))
            .map(|i| (Swatch::Fill(palette::thread(i)), format!("worker-{i}")))
            .collect();
        if threads > 10 {
            entries.push((
                Swatch::Fill(Color32::TRANSPARENT),
                "(colours repeat)".into(),
            ));
        }
        if states {
            entries.extend(palette::STATES.map(|s| {
                (
                    Swatch::Fill(palette::state(s)),
                    palette::state_label(s).into(),
                )
            }));
        }
        entries.push((
            Swatch::Folded,
            "spans too narrow to draw, folded (hover)".into(),
        ));
        let color = ui.visuals().strong_text_color();
        let (mut x, mut y) = (6.0, LEGEND_ROW / 2.0);
        let items = entries
            .into_iter()
            .map(|(swatch, text)| {
                let galley = ui
                    .painter()
                    .layout_no_wrap(text, FontId::proportional(12.5), color);
                let w = 16.0 + galley.size().x + 14.0;
                if x + w > width && x > 6.0 {
                    (x, y) = (6.0, y + LEGEND_ROW);
                }
                let at = vec2(x, y);
                x += w;
                (swatch, galley, at)
            })
            .collect();
        Legend {
            items,
            height: y + LEGEND_ROW / 2.0 + 2.0,
        }
    }

    /// Paints the legend; the folded marker only if something was folded.
    fn paint(&self, pc: &PaintCtx, corner: Pos2, folds: bool) {
        for (swatch, galley, at) in &self.items {
            let at = corner + *at;
            let sw = Rect::from_center_size(pos2(at.x + 6.0, at.y), vec2(12.0, 12.0));
            match swatch {
                Swatch::Fill(color) => {
                    pc.painter.rect_filled(sw, 2.0, *color);
                }
                Swatch::Folded if folds => folded(&pc.painter, sw, pc.weak),
                Swatch::Folded => continue,
            }
            let pos = pos2(at.x + 16.0, at.y - galley.size().y / 2.0);
            pc.painter.galley(pos, galley.clone(), pc.text);
        }
    }
}

fn has_states(rec: &Recording) -> bool {
    rec.timeline.thread_states.iter().any(|l| !l.is_empty())
}

/// Vertical grid lines at the ticks through the lanes, and the labelled axis.
fn grid_and_axis(pc: &PaintCtx, lanes: std::ops::RangeInclusive<f32>, axis: Rect) {
    let step = nice_step(pc.ns_per_px() * 100.0);
    let first = (pc.t0 / step).ceil() as i64;
    let last = (pc.t1 / step).floor() as i64;
    let grid = Stroke::new(1.0, palette::faded(pc.weak, 0.25));
    let tick = Stroke::new(1.0, pc.weak);
    pc.painter.hline(pc.data.x_range(), axis.top() + 2.0, tick);
    for k in first..=last {
        let t = k as f64 * step;
        let x = pc.x(t);
        pc.painter.vline(x, lanes.clone(), grid);
        pc.painter
            .vline(x, axis.top() + 2.0..=axis.top() + 7.0, tick);
        pc.label(
            pos2(x, axis.top() + 8.0),
            Align2::CENTER_TOP,
            format_ms(t, step),
            12.0,
            pc.text,
        );
    }
    pc.label(
        pos2(pc.data.left() - GUTTER + 6.0, axis.top() + 8.0),
        Align2::LEFT_TOP,
        "time (ms)",
        12.0,
        pc.weak,
    );
}

/// The 1-2-5 step (ns) nearest above `ns`.
fn nice_step(ns: f64) -> f64 {
    let ns = ns.max(1.0);
    let magnitude = 10f64.powf(ns.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&s| s >= ns)
        .unwrap_or(10.0 * magnitude)
}

/// A tick label in ms with as many decimals as the step needs.
fn format_ms(t_ns: f64, step_ns: f64) -> String {
    let decimals = (-(step_ns / 1e6).log10()).ceil().max(0.0) as usize;
    format!("{:.*}", decimals, t_ns / 1e6)
}

fn tooltip(ui: &mut Ui, rec: &Recording, hit: &Hit) {
    let d = hit.drawn;
    if d.count > 1 {
        ui.label(format!(
            "{} spans folded: each narrower than {MIN_PX} px here",
            d.count
        ));
        ui.label(format!("{} – {}", ms(d.start_ns), ms(d.end_ns)));
        ui.label("Zoom in (Ctrl+scroll, or scroll over the axis) to see them.");
        return;
    }
    match hit.items {
        Items::ThreadTasks | Items::CoreTasks(_) => {
            if let Some(task) = rec.tasks.get(d.item as usize) {
                for line in task_lines(rec, task) {
                    ui.label(line);
                }
            }
        }
        Items::CoreSlices | Items::States => {
            let Some(slice) = rec
                .sched
                .as_ref()
                .and_then(|s| s.slices.get(d.item as usize))
            else {
                return;
            };
            let thread = rec
                .threads
                .get(slice.thread)
                .map_or("?", |t| t.name.as_str());
            let what = match slice.state {
                SliceState::Running => format!("{thread} running on core {}", slice.core),
                SliceState::Runnable => format!(
                    "{thread} waiting for a CPU (runnable; last on core {})",
                    slice.core
                ),
                SliceState::Blocked => format!(
                    "{thread} blocked (sleep, I/O, lock; last on core {})",
                    slice.core
                ),
            };
            ui.label(what);
            ui.label(format!(
                "from {} for {}",
                ms(slice.start_ns),
                human_ns(slice.end_ns - slice.start_ns)
            ));
        }
    }
}

/// A task described for tooltips and the selection panel.
fn task_lines(rec: &Recording, task: &crate::telemetry::events::TaskRecord) -> Vec<String> {
    let thread = rec
        .threads
        .get(task.thread as usize)
        .map_or("?", |t| t.name.as_str());
    let core = if task.core_at_start == task.core_at_end {
        format!("core {}", task.core_at_start)
    } else {
        format!(
            "core {} → {} (migrated)",
            task.core_at_start, task.core_at_end
        )
    };
    let mut lines = vec![
        format!("task {} on {thread}, {core}", task.id),
        format!(
            "start {}   duration {}",
            ms(task.start_ns),
            human_ns(task.duration_ns())
        ),
        format!(
            "CPU time {} ({:.0} % of its lifetime)",
            human_ns(task.cpu_ns),
            100.0 * task.cpu_ns as f64 / task.duration_ns().max(1) as f64
        ),
    ];
    if !task.ok {
        lines.push("failed or stopped before it finished".into());
    }
    lines
}

fn ms(ns: u64) -> String {
    format!("{:.3} ms", ns as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_steps_are_one_two_five() {
        assert_eq!(nice_step(130.0), 200.0);
        assert_eq!(nice_step(4_000_000.0), 5_000_000.0);
        assert_eq!(nice_step(1_000.0), 1_000.0);
        assert_eq!(format_ms(40e6, 10e6), "40");
        assert_eq!(format_ms(1.5e6, 0.5e6), "1.5");
        assert_eq!(format_ms(0.25e6, 0.05e6), "0.25");
    }
}
