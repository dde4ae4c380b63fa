//! The timeline: one lane per core and one per thread on a shared time axis,
//! painted by hand, one pixel column at a time.
//!
//! Core lanes show what each core ran (the kernel's running slices); thread
//! lanes show task lifetimes; a thin strip under a thread lane shows the
//! kernel's view of that thread. On one core two threads' tasks overlap in
//! time (concurrency) while the core lane shows them taking turns; on two
//! cores both run at once (parallelism).
//!
//! Every column shows the exact share of its time that each thread (core
//! lanes) or state (strips) had, from the store's per-lane summaries, at
//! any zoom: where spans are narrower than a pixel the lane turns into
//! proportional stripes (see [`columns`]), never one span standing for many.

mod columns;

use std::sync::Arc;

use eframe::egui;
use egui::{
    Align2, Color32, CornerRadius, FontId, Galley, Pos2, Rect, Response, Sense, Stroke, StrokeKind,
    Ui, Vec2, pos2, vec2,
};

use self::columns::Paint;
use super::history::History;
use super::palette;
use crate::metrics::human_ns;
use crate::run::Recording;
use crate::telemetry::events::InFlight;
use crate::telemetry::sched::{SchedSource, SliceState};
use crate::timeline::{Class, Lane, Mix, Timeline, class_state};
use crate::topology::Topology;

/// Spans at least this many pixels wide are outlined, named and hoverable one by one.
const WIDE_PX: f64 = 3.0;
const GUTTER: f32 = 100.0;
const LEGEND_ROW: f32 = 22.0;
/// Room above and below a caption or section line.
const TEXT_PAD: f32 = 6.0;
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
    /// Its lanes.
    pub timeline: &'a Timeline,
    /// The line above the run's lanes.
    pub caption: String,
}

/// A task the user clicked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selection {
    pub run: usize,
    pub task: u32,
}

/// The timeline's view state (what time range is visible, what is
/// selected) and the scratch buffers a frame reuses.
#[derive(Default)]
pub struct TimelineView {
    /// Visible ns since the runs' origins; `None` fits everything (and follows a live run).
    range: Option<[f64; 2]>,
    pub selected: Option<Selection>,
    /// Where the timeline was drawn in the last frame (to crop a PNG to it).
    pub rect: Option<Rect>,
    /// No hover tooltips (a scripted picture must not show one where the pointer happens to be).
    pub quiet: bool,
    /// The time at each pixel column's left edge, and one past the last.
    bounds: Vec<u64>,
    mixes: Vec<Mix>,
    paints: Vec<Paint>,
    wide: Vec<usize>,
    exact: Vec<bool>,
    /// What this frame drew that the legend must explain.
    drew: Drew,
}

#[derive(Clone, Copy, Default)]
struct Drew {
    others: bool,
    gaps: bool,
}

/// Maps time to x inside the data area (right of the lane labels).
struct PaintCtx {
    painter: egui::Painter,
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

/// The font size, at most `size` and at least 9, at which `text` fits in `room` pixels.
fn fitted_size(painter: &egui::Painter, text: &str, size: f32, room: f32) -> f32 {
    let width = painter
        .layout_no_wrap(text.to_owned(), FontId::proportional(size), Color32::WHITE)
        .size()
        .x;
    if width <= room {
        size
    } else {
        (size * room / width).max(9.0)
    }
}

/// What a lane holds, and so how its classes are coloured and explained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Task lifetimes of one thread.
    Tasks { thread: usize },
    /// Without kernel data: one thread's task lifetimes by the core they started on.
    CoreTasks { thread: usize },
    /// The kernel's running slices on a core (class: thread).
    Core { core: usize },
    /// The kernel's state slices of one thread (class: state).
    States { thread: usize },
}

impl Kind {
    fn colour(self, class: Class) -> Color32 {
        match self {
            Kind::Tasks { thread } | Kind::CoreTasks { thread } => palette::thread(thread),
            Kind::Core { .. } => palette::thread(usize::from(class)),
            Kind::States { .. } => palette::state(class_state(class)),
        }
    }

    fn paint(self, paint: Paint) -> Option<Color32> {
        match paint {
            Paint::Class(class) => Some(self.colour(class)),
            Paint::Others => Some(palette::OTHERS),
            Paint::Empty => None,
        }
    }

    fn holds_tasks(self) -> bool {
        matches!(self, Kind::Tasks { .. } | Kind::CoreTasks { .. })
    }
}

/// What a lane row shows.
enum Content<'a> {
    One(&'a Lane, Kind),
    /// Without kernel data, a core's lane: one band per thread that may run there.
    Bands(Vec<(&'a Lane, Kind)>),
}

enum Row<'a> {
    /// A run's caption or a section's title, laid out to wrap in the width.
    Text(Arc<Galley>),
    Lane {
        run: &'a RunView<'a>,
        label: String,
        swatch: Option<Color32>,
        content: Content<'a>,
        strip: Option<(&'a Lane, Kind)>,
    },
    Gap,
}

/// What is under the pointer.
enum Hit {
    /// A span wide enough to be drawn on its own: a task or a kernel slice.
    Span { kind: Kind, item: u32 },
    /// A task not finished yet.
    InFlight { thread: usize, task: InFlight },
    /// A column of spans too narrow to draw one by one.
    Mix {
        kind: Kind,
        mix: Box<Mix>,
        t: [u64; 2],
    },
    /// A core running nothing of this run.
    Gap { core: usize, t: u64 },
}

impl TimelineView {
    /// Shows everything again (and follows a live run).
    pub fn fit(&mut self) {
        self.range = None;
    }

    /// Shows `[t0, t1]` (ns since the runs' origins).
    pub fn show_range(&mut self, range: [f64; 2]) {
        self.range = Some(range);
    }

    /// The visible ns range once the user zoomed or panned; `None` while fitted.
    pub fn visible_range(&self) -> Option<[f64; 2]> {
        self.range
    }

    /// Draws the runs stacked on one time scale, filling the available space.
    pub fn ui(&mut self, ui: &mut Ui, runs: &[RunView<'_>]) {
        let avail = ui.available_size();
        let rows = rows(runs, &Texts::new(ui, avail.x - 12.0));
        let lanes = rows
            .iter()
            .filter(|r| matches!(r, Row::Lane { .. }))
            .count()
            .max(1);
        let strips = rows
            .iter()
            .filter(|r| matches!(r, Row::Lane { strip: Some(_), .. }))
            .count();
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
            // Whole pixels, so that each column of the summary is one column on screen.
            data: Rect::from_x_y_ranges(
                (rect.left() + GUTTER).round()..=(rect.right() - 12.0).round(),
                rect.y_range(),
            ),
            t0,
            t1,
            text: visuals.strong_text_color(),
            weak: visuals.weak_text_color(),
        };
        let axis = Rect::from_x_y_ranges(rect.x_range(), rect.bottom() - AXIS_H..=rect.bottom());
        self.interact(ui, &response, &pc, axis, fit);
        // Draw this frame with what the input just asked for, not a frame late.
        [pc.t0, pc.t1] = self.range.unwrap_or(fit);
        self.set_columns(&pc, ui.pixels_per_point());

        let hover = response.hover_pos().filter(|p| pc.data.contains(*p));
        let mut hit = None;
        self.drew = Drew::default();
        let mut y = rect.top() + legend.height;
        let lanes_top = y;
        for row in &rows {
            y += self.row(&pc, row, y, lane_h, strip_h, hover, &mut hit);
        }
        grid_and_axis(&pc, lanes_top..=y, axis);
        legend.paint(&pc, rect.min, self.drew);

        if let Some((run, hit)) = hit {
            let run = runs
                .iter()
                .find(|r| r.index == run)
                .expect("hits come from the shown runs");
            if response.clicked() {
                self.selected = match hit {
                    Hit::Span { kind, item } if kind.holds_tasks() => Some(Selection {
                        run: run.index,
                        task: item,
                    }),
                    _ => None,
                };
            }
            if !self.quiet {
                response.on_hover_ui_at_pointer(|ui| tooltip(ui, run, &hit));
            }
        } else if response.clicked() {
            self.selected = None;
        }
    }

    /// The time at each pixel column's edges, for this frame's range.
    fn set_columns(&mut self, pc: &PaintCtx, pixels_per_point: f32) {
        let columns = (pc.data.width() * pixels_per_point).round().max(1.0) as usize;
        let ns_per_column = (pc.t1 - pc.t0) / columns as f64;
        self.bounds.clear();
        self.bounds.extend(
            (0..=columns).map(|k| (pc.t0 + k as f64 * ns_per_column).max(0.0).round() as u64),
        );
        self.mixes.resize(columns, Mix::default());
    }

    /// The x of column edge `k`.
    fn column_x(&self, pc: &PaintCtx, k: usize) -> f32 {
        let columns = self.mixes.len() as f32;
        pc.data.left() + pc.data.width() * k as f32 / columns
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
        hit: &mut Option<(usize, Hit)>,
    ) -> f32 {
        let left = pc.data.left() - GUTTER + 6.0;
        match row {
            Row::Text(galley) => {
                pc.painter
                    .galley(pos2(left, y + TEXT_PAD / 2.0), galley.clone(), pc.text);
                galley.size().y + TEXT_PAD
            }
            Row::Gap => GAP_H,
            Row::Lane {
                run,
                label,
                swatch,
                content,
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
                // Many-core labels ("cpu 127 · 0:63:1") may need more than the gutter.
                let room = pc.data.left() - 4.0 - text_x;
                let size = fitted_size(&pc.painter, label, 13.0, room);
                pc.label(
                    pos2(text_x, lane_rect.center().y),
                    Align2::LEFT_CENTER,
                    label,
                    size,
                    pc.text,
                );
                match content {
                    Content::One(lane, kind) => {
                        self.lane(pc, run, lane, *kind, lane_rect, hover, hit);
                    }
                    Content::Bands(bands) => {
                        let band_h = lane_rect.height() / bands.len().max(1) as f32;
                        for (i, (lane, kind)) in bands.iter().enumerate() {
                            let top = lane_rect.top() + i as f32 * band_h;
                            let band =
                                Rect::from_x_y_ranges(lane_rect.x_range(), top..=top + band_h);
                            self.lane(pc, run, lane, *kind, band, hover, hit);
                        }
                    }
                }
                match strip {
                    Some((strip, kind)) => {
                        let strip_rect = Rect::from_x_y_ranges(
                            pc.data.x_range(),
                            y + lane_h..=y + lane_h + strip_h - 1.0,
                        );
                        self.lane(pc, run, strip, *kind, strip_rect, hover, hit);
                        lane_h + strip_h
                    }
                    None => lane_h,
                }
            }
        }
    }

    /// Paints one lane, column by column, from its summary: each column's
    /// exact shares (see [`columns`]); spans wide enough are then outlined
    /// and named one by one.
    #[allow(clippy::too_many_arguments)]
    fn lane(
        &mut self,
        pc: &PaintCtx,
        run: &RunView,
        lane: &Lane,
        kind: Kind,
        rect: Rect,
        hover: Option<Pos2>,
        hit: &mut Option<(usize, Hit)>,
    ) {
        let wide_ns = (WIDE_PX * pc.ns_per_px()).max(1.0) as u64;
        self.wide.clear();
        lane.columns(&self.bounds, &mut self.mixes, &mut self.wide, wide_ns);
        // Columns that lie wholly inside a span drawn on its own.
        self.exact.clear();
        self.exact.resize(self.mixes.len(), false);
        for &i in &self.wide {
            let span = lane.get(i);
            let first = self.bounds.partition_point(|&b| b < span.start_ns);
            let after = self.bounds.partition_point(|&b| b <= span.end_ns);
            for k in first..after.saturating_sub(1) {
                self.exact[k] = true;
            }
        }
        columns::assign(&self.mixes, &self.exact, &mut self.paints);
        let mut k = 0;
        while k < self.paints.len() {
            let paint = self.paints[k];
            let end = k + self.paints[k..].iter().take_while(|&&p| p == paint).count();
            if let Some(colour) = kind.paint(paint) {
                let xs = self.column_x(pc, k)..=self.column_x(pc, end);
                pc.painter
                    .rect_filled(Rect::from_x_y_ranges(xs, rect.y_range()), 0.0, colour);
            }
            self.drew.others |= paint == Paint::Others;
            k = end;
        }
        self.drew.gaps |= matches!(kind, Kind::Core { .. });
        let hover = hover.filter(|p| rect.contains(*p));
        let rec = run.rec;
        let mut hit_here = None;

        // Wide spans one by one; a span longer than 4.29 s is stored in pieces: join them.
        let mut w = 0;
        while w < self.wide.len() {
            let first = lane.get(self.wide[w]);
            let mut end_ns = first.end_ns;
            w += 1;
            while w < self.wide.len() && lane.get(self.wide[w]).item == first.item {
                end_ns = lane.get(self.wide[w]).end_ns;
                w += 1;
            }
            let x0 = pc.x(first.start_ns as f64).max(rect.left() - 1.0);
            let x1 = pc.x(end_ns as f64).min(rect.right() + 1.0);
            let r = Rect::from_x_y_ranges(x0..=x1, rect.y_range());
            if kind.holds_tasks()
                && let Some(task) = rec.task(first.item)
            {
                let selected = Some(Selection {
                    run: run.index,
                    task: first.item,
                });
                outline_task(pc, r, task.ok, self.selected == selected);
                if matches!(kind, Kind::Tasks { .. }) {
                    name_task(pc, r, &format!("task {}", task.id), kind.colour(0));
                }
            }
            if hover.is_some_and(|p| r.contains(p)) {
                hit_here = Some(Hit::Span {
                    kind,
                    item: first.item,
                });
            }
        }

        // A task not finished yet, growing from its start.
        if let Kind::Tasks { thread } = kind
            && let Some(Some(task)) = rec.in_flight.get(thread)
            && rec.is_running()
        {
            let x0 = pc.x(task.start_ns as f64).max(rect.left() - 1.0);
            let x1 = pc
                .x(rec.seen_ns as f64)
                .min(rect.right() + 1.0)
                .max(x0 + 1.0);
            let r = Rect::from_x_y_ranges(x0..=x1, rect.y_range());
            pc.painter.rect_filled(r, 0.0, kind.colour(0));
            outline_task(pc, r, true, false);
            name_task(pc, r, &format!("task {} …", task.id), kind.colour(0));
            if hover.is_some_and(|p| r.contains(p)) {
                hit_here = Some(Hit::InFlight {
                    thread,
                    task: *task,
                });
            }
        }

        if hit_here.is_none()
            && let Some(p) = hover
        {
            let columns = self.mixes.len();
            let k = (((p.x - pc.data.left()) / pc.data.width()) * columns as f32) as usize;
            let k = k.min(columns.saturating_sub(1));
            let mix = self.mixes[k];
            let t = [self.bounds[k], self.bounds[k + 1]];
            let within_run = t[0] < rec.elapsed_ns() && pc.t(p.x) >= 0.0;
            hit_here = match kind {
                _ if mix.covered_ns() > 0 => Some(Hit::Mix {
                    kind,
                    mix: Box::new(mix),
                    t,
                }),
                Kind::Core { core } if mix.covered_ns() == 0 && within_run => {
                    Some(Hit::Gap { core, t: t[0] })
                }
                _ => None,
            };
        }
        if let Some(h) = hit_here {
            *hit = Some((run.index, h));
        }
    }

    /// Details of the selected task, for a side panel.
    pub fn selection_ui(&self, ui: &mut Ui, history: &History) {
        let Some(sel) = self.selected else { return };
        let Some(rec) = history.get(sel.run).map(|e| &*e.rec) else {
            return;
        };
        let Some(task) = rec.task(sel.task) else {
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
        .map(|r| r.rec.elapsed_ns().max(r.timeline.end_ns()))
        .max()
        .unwrap_or(0)
        .max(1_000_000) as f64;
    [-end * 0.01, end * 1.02]
}

/// Rows of every run: caption, core lanes, thread lanes (with state strips).
/// Lays out the timeline's lines of text, wrapped to its width.
struct Texts<'u> {
    ui: &'u Ui,
    width: f32,
}

impl<'u> Texts<'u> {
    fn new(ui: &'u Ui, width: f32) -> Texts<'u> {
        Texts {
            ui,
            width: width.max(100.0),
        }
    }

    fn row<'a>(&self, text: String, size: f32, weak: bool) -> Row<'a> {
        let strong = self.ui.visuals().strong_text_color();
        let color = if weak {
            palette::faded(strong, 0.75)
        } else {
            strong
        };
        let galley = self
            .ui
            .painter()
            .layout(text, FontId::proportional(size), color, self.width);
        Row::Text(galley)
    }
}

fn rows<'a>(runs: &'a [RunView<'a>], texts: &Texts) -> Vec<Row<'a>> {
    let topo = Topology::get();
    let mut rows = Vec::new();
    for (n, run) in runs.iter().enumerate() {
        if n > 0 {
            rows.push(Row::Gap);
        }
        let rec = run.rec;
        let tl = run.timeline;
        rows.push(texts.row(run.caption.clone(), 15.0, false));
        let source = match rec.sched_source {
            SchedSource::Procfs => "sampled from /proc at ~1 kHz",
            _ => "from the kernel's context switches",
        };
        rows.push(texts.row(if tl.cores_from_kernel {
            format!("Cores: what each core ran, {source} (coloured by thread; each pixel shows its exact shares)")
        } else if rec.is_running() && rec.sched_source == SchedSource::Procfs {
            "Cores: task lifetimes by core until the run ends (sampled kernel data comes at the end)".into()
        } else {
            "Cores: task lifetimes by the core each task started on (no kernel data: cannot show turns)".into()
        }, 12.5, true));
        let mut cores = tl.busy_cores();
        if topo.allowed.len() <= ALL_CORES_UP_TO {
            cores.extend(&topo.allowed);
            cores.sort_unstable();
            cores.dedup();
        }
        let own: Vec<usize> = rec.threads.iter().filter_map(|t| t.pinned_core).collect();
        for group in topo.layout.lane_groups(&cores, &own) {
            if let Some(caption) = group.caption {
                rows.push(texts.row(caption, 12.0, true));
            }
            for core in group.cpus {
                rows.push(core_row(run, core, topo));
            }
        }
        let states = has_states(tl);
        rows.push(texts.row(
            if states {
                "Threads: task lifetimes; strip below: the kernel's state of the thread".into()
            } else {
                "Threads: task lifetimes".into()
            },
            12.5,
            true,
        ));
        for (i, lane) in tl.threads.iter().enumerate() {
            let name = thread_name(rec, i);
            rows.push(Row::Lane {
                run,
                label: name,
                swatch: Some(palette::thread(i)),
                content: Content::One(lane, Kind::Tasks { thread: i }),
                strip: tl
                    .thread_states
                    .get(i)
                    .filter(|_| states)
                    .map(|l| (l, Kind::States { thread: i })),
            });
        }
    }
    rows
}

/// One core's lane: what the kernel says it ran, else the tasks that started on it.
fn core_row<'a>(run: &'a RunView<'a>, core: usize, topo: &Topology) -> Row<'a> {
    let (rec, tl) = (run.rec, run.timeline);
    let content = if tl.cores_from_kernel {
        Content::One(
            tl.cores.get(core).unwrap_or(&EMPTY_LANE),
            Kind::Core { core },
        )
    } else {
        // The threads that may run on this core, one band each.
        let by_thread = tl.core_tasks.get(core).map_or(&[][..], Vec::as_slice);
        let bands = rec
            .threads
            .iter()
            .filter(|t| t.pinned_core.is_none_or(|c| c == core))
            .take(8)
            .map(|t| {
                let lane = by_thread.get(t.index).unwrap_or(&EMPTY_LANE);
                (lane, Kind::CoreTasks { thread: t.index })
            })
            .collect();
        Content::Bands(bands)
    };
    Row::Lane {
        run,
        label: topo.core_label(core),
        swatch: None,
        content,
        strip: None,
    }
}

fn fixed_height(row: &Row) -> f32 {
    match row {
        Row::Text(galley) => galley.size().y + TEXT_PAD,
        Row::Gap => GAP_H,
        Row::Lane { .. } => 0.0,
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

/// Writes a task's name inside its bar when there is room.
fn name_task(pc: &PaintCtx, r: Rect, name: &str, fill: Color32) {
    if r.width() > 52.0 && r.height() > 14.0 {
        pc.painter.with_clip_rect(r).text(
            r.center(),
            Align2::CENTER_CENTER,
            name,
            FontId::proportional(11.5),
            palette::text_on(fill),
        );
    }
}

#[derive(Clone, Copy)]
enum Swatch {
    Fill(Color32),
    /// The lane's own background, outlined: where a core ran nothing of the run.
    Gap,
}

/// Thread colours, state colours and what a gap means, wrapped into rows.
struct Legend {
    /// Each entry's swatch, text, and left-centre relative to the timeline's corner.
    items: Vec<(Swatch, Arc<Galley>, Vec2)>,
    height: f32,
}

impl Legend {
    fn new(ui: &Ui, runs: &[RunView], width: f32) -> Legend {
        let threads = runs.iter().map(|r| r.rec.threads.len()).max().unwrap_or(0);
        // Named by the run that has the thread (a program's threads have their own names).
        let name = |i: usize| {
            let run = runs.iter().find(|r| r.rec.threads.len() > i);
            run.map_or_else(|| format!("worker-{i}"), |r| thread_name(r.rec, i))
        };
        let states = runs.iter().any(|r| has_states(r.timeline));
        let kernel = runs.iter().any(|r| r.timeline.cores_from_kernel);
        let mut entries: Vec<(Swatch, String)> = (0..threads.min(palette::THREAD_COLOURS))
            .map(|i| (Swatch::Fill(palette::thread(i)), name(i)))
            .collect();
        if threads > palette::THREAD_COLOURS {
            entries.push((
                Swatch::Fill(Color32::TRANSPARENT),
                "(colours repeat)".into(),
            ));
        }
        // Over a dozen threads on one core: a summary node names only the top ones.
        if kernel && threads > 12 {
            entries.push((
                Swatch::Fill(palette::OTHERS),
                "other threads (zoom in)".into(),
            ));
        }
        if kernel {
            entries.push((
                Swatch::Gap,
                "core: not this run (idle or another program)".into(),
            ));
        }
        if states {
            entries.extend(palette::STATES.map(|s| {
                (
                    Swatch::Fill(palette::state(s)),
                    format!("thread: {}", palette::state_label(s)),
                )
            }));
        }
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

    fn paint(&self, pc: &PaintCtx, corner: Pos2, _drew: Drew) {
        for (swatch, galley, at) in &self.items {
            let at = corner + *at;
            let sw = Rect::from_center_size(pos2(at.x + 6.0, at.y), vec2(12.0, 12.0));
            match swatch {
                Swatch::Fill(color) => {
                    pc.painter.rect_filled(sw, 2.0, *color);
                }
                Swatch::Gap => {
                    pc.painter
                        .rect_filled(sw, 2.0, palette::faded(pc.weak, 0.08));
                    pc.painter.rect_stroke(
                        sw,
                        2.0,
                        Stroke::new(1.0, palette::faded(pc.weak, 0.6)),
                        StrokeKind::Inside,
                    );
                }
            }
            let pos = pos2(at.x + 16.0, at.y - galley.size().y / 2.0);
            pc.painter.galley(pos, galley.clone(), pc.text);
        }
    }
}

fn has_states(timeline: &Timeline) -> bool {
    timeline.thread_states.iter().any(|l| !l.is_empty())
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

/// A thread's name in lanes, legend and hover: a recorded program's threads
/// often share one name, so theirs carry the thread id too.
fn thread_name(rec: &Recording, i: usize) -> String {
    match rec.threads.get(i) {
        Some(t) if rec.program.is_some() => format!("{} {}", t.name, t.tid),
        Some(t) => t.name.clone(),
        None => format!("worker-{i}"),
    }
}

fn tooltip(ui: &mut Ui, run: &RunView, hit: &Hit) {
    let rec = run.rec;
    let name = |thread: usize| thread_name(rec, thread);
    match *hit {
        Hit::Span { kind, item } if kind.holds_tasks() => {
            if let Some(task) = rec.task(item) {
                for line in task_lines(rec, task) {
                    ui.label(line);
                }
            }
        }
        Hit::Span { item, .. } => {
            let Some(slice) = rec.slice(item) else {
                return;
            };
            let thread = name(slice.thread);
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
        Hit::InFlight { thread, task } => {
            ui.label(format!(
                "task {} on {}: not finished yet",
                task.id,
                name(thread)
            ));
            ui.label(format!(
                "started at {}, running for {} so far",
                ms(task.start_ns),
                human_ns(rec.seen_ns.saturating_sub(task.start_ns))
            ));
        }
        Hit::Mix { kind, ref mix, t } => {
            ui.label(format!(
                "{} – {}: {} span{} in this pixel column",
                ms(t[0]),
                ms(t[1]),
                mix.slices,
                if mix.slices == 1 { "" } else { "s" }
            ));
            let pct = |ns: u64| 100.0 * ns as f64 / mix.width_ns.max(1) as f64;
            let mut shares: Vec<(Class, u64)> = mix.shares().collect();
            shares.sort_unstable_by_key(|&(class, _)| class);
            for (class, ns) in shares {
                let what = match kind {
                    Kind::Core { .. } => name(usize::from(class)),
                    Kind::States { .. } => palette::state_label(class_state(class)).into(),
                    Kind::Tasks { .. } | Kind::CoreTasks { .. } => "tasks in flight".into(),
                };
                ui.label(format!("{what}: {:.1} %", pct(ns)));
            }
            if mix.others_ns > 0 {
                ui.label(format!("other threads: {:.1} %", pct(mix.others_ns)));
            }
            let empty = mix.width_ns.saturating_sub(mix.covered_ns());
            if empty > 0 {
                let what = match kind {
                    Kind::Core { .. } => "not this run (idle or another program)",
                    Kind::States { .. } => "before or after the thread lived",
                    Kind::Tasks { .. } | Kind::CoreTasks { .. } => "between tasks",
                };
                ui.label(format!("{what}: {:.1} %", pct(empty)));
            }
            ui.label("Zoom in (Ctrl+scroll, or scroll over the axis) to see them one by one.");
        }
        Hit::Gap { core, t } => {
            ui.label(format!(
                "{} at {}: running none of this run's threads (idle, or another program)",
                Topology::get().core_label(core),
                ms(t)
            ));
            let waiting: Vec<String> = run
                .timeline
                .thread_states
                .iter()
                .enumerate()
                .filter_map(|(thread, lane)| {
                    let span = lane.hit(t)?;
                    let slice = rec.slice(span.item)?;
                    (slice.state == SliceState::Runnable && slice.core == core)
                        .then(|| name(thread))
                })
                .collect();
            if let Some(report) = rec.sched.as_ref().filter(|s| s.system_wide) {
                let there: Vec<String> = report
                    .others
                    .iter()
                    .filter(|o| o.core == core && o.start_ns <= t && t < o.end_ns)
                    .map(|o| format!("{} (pid {})", o.name, o.pid))
                    .collect();
                ui.label(match there.is_empty() {
                    true => "System-wide capture: the core was idle then.".to_string(),
                    false => format!(
                        "System-wide capture: the core ran {} then.",
                        there.join(", ")
                    ),
                });
            }
            if waiting.is_empty() {
                ui.label("None of this run's threads was waiting for this core then.");
            } else {
                ui.label(format!(
                    "Waiting for this core at that moment: {}. It was ready to run, so another program held the core.",
                    waiting.join(", ")
                ));
            }
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
