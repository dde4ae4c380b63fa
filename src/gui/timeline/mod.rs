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

mod colours;
mod columns;

use std::collections::HashMap;
use std::sync::Arc;

use eframe::egui;
use egui::{
    Align2, Color32, CornerRadius, FontId, Galley, Pos2, Rect, Response, Sense, Stroke, StrokeKind,
    Ui, Vec2, pos2, vec2,
};

pub use self::colours::Colours;
use self::columns::Paint;
use super::history::History;
use super::palette;
use crate::metrics::human_ns;
use crate::run::Recording;
use crate::telemetry::events::InFlight;
use crate::telemetry::sched::{SchedSource, SliceState};
use crate::telemetry::utilisation::Busy;
use crate::timeline::{Class, Lane, Level, Mix, Timeline, class_state};
use crate::topology::Topology;

/// Lock hand-offs are drawn as arrows when at most this many are in view.
const MAX_ARROWS: usize = 200;
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
    pub colours: &'a Colours,
    /// The machine it ran on (a synthetic recording's pretended one).
    pub topo: &'a Topology,
    /// The line above the run's lanes.
    pub caption: String,
    /// This machine's sampled busy cores among the run's, ns since its origin.
    pub machine_busy: &'a [Busy],
}

/// Where the summary lane's grey (other work on the run's cores) comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OtherWork {
    /// System-wide capture: the kernel's switches to other programs, exact.
    Captured,
    /// This machine's utilisation samples, less the run's own threads.
    Sampled,
}

impl RunView<'_> {
    fn other_work(&self) -> Option<OtherWork> {
        if self.rec.sched.as_ref().is_some_and(|s| s.system_wide) {
            Some(OtherWork::Captured)
        } else if !self.machine_busy.is_empty() {
            Some(OtherWork::Sampled)
        } else {
            None
        }
    }
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
    /// Groups of lanes the user opened (true) or collapsed (false).
    open: HashMap<GroupKey, bool>,
    /// Where this frame drew each group's title, and whether it was open.
    headers: Vec<(Rect, GroupKey, bool)>,
    /// Scratch: a collapsed group's columns, and the summary lane's levels.
    group_mixes: Vec<Mix>,
    levels: Vec<Level>,
    /// Where this frame drew each thread's task lane: (run, thread, y).
    thread_ys: Vec<(usize, usize, f32)>,
    /// Folded groups' summed columns, kept while the columns stay the same:
    /// a still view redraws (hover, a live caption) without summing its
    /// cores again. Keyed by the lanes and how much they hold.
    group_cache: HashMap<GroupData, Vec<Mix>>,
    /// The columns the cache is for: first and last edge, and how many.
    cache_columns: (u64, u64, usize),
    /// The other programs named inside core lanes in the last frame (what a
    /// person can read there without hovering; tests look at it).
    pub named_programs: Vec<String>,
}

#[derive(Clone, Copy, Default)]
struct Drew {
    others: bool,
    /// Grey (other work) in a summary lane.
    summary_others: bool,
    gaps: bool,
    /// Lock hand-off arrows.
    arrows: usize,
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
    /// A collapsed group of cores: their running slices summed (class: thread).
    Group { cores: usize },
    /// Other programs on a core (system-wide capture), drawn under its lane.
    Programs { core: usize },
}

impl Kind {
    fn colour(self, class: Class, colours: &Colours) -> Color32 {
        match self {
            Kind::Tasks { thread } | Kind::CoreTasks { thread } => colours.thread(thread),
            Kind::Core { .. } | Kind::Group { .. } => colours.thread(usize::from(class)),
            Kind::States { .. } => palette::state(class_state(class)),
            Kind::Programs { .. } => palette::OTHER_PROGRAMS,
        }
    }

    fn paint(self, paint: Paint, colours: &Colours) -> Option<Color32> {
        match paint {
            Paint::Class(class) => Some(self.colour(class, colours)),
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
    /// A collapsed group: these cores' lanes summed into one; a click on
    /// its label opens it.
    Group {
        lanes: Vec<&'a Lane>,
        key: GroupKey,
    },
    /// How many of the run's threads ran and waited, over time.
    Summary,
    /// Lanes drawn over one another, the first at the bottom: a core's lane
    /// over the other programs that ran on it (their time is the core lane's gaps).
    Layers(Vec<(&'a Lane, Kind)>),
    /// Without kernel data, a core's lane: one band per thread that may run there.
    Bands(Vec<(&'a Lane, Kind)>),
}

enum Row<'a> {
    /// A run's caption or a section's title, laid out to wrap in the width.
    Text(Arc<Galley>),
    /// A group of cores' title: a click collapses or expands it.
    Header {
        key: GroupKey,
        galley: Arc<Galley>,
        open: bool,
    },
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
    /// A group's label: a click opens or folds it.
    Fold { caption: String, open: bool },
    /// A column of the summary lane.
    Summary {
        level: Level,
        t: [u64; 2],
        resolution_ns: u64,
    },
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
        let fit = fit_range(runs);
        let zoomed = self
            .range
            .filter(|[a, b]| (b - a) * 8.0 <= fit[1] - fit[0])
            .map(|[a, b]| [a.max(0.0) as u64, b.max(0.0) as u64]);
        let openness = Openness {
            chosen: &self.open,
            zoomed,
        };
        let rows = rows(runs, &Texts::new(ui, avail.x - 12.0), &openness);
        // The summary lane is two lanes tall.
        let lanes = rows
            .iter()
            .map(|r| match r {
                Row::Lane {
                    content: Content::Summary,
                    ..
                } => 2,
                Row::Lane { .. } => 1,
                _ => 0,
            })
            .sum::<usize>()
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
        self.headers.clear();
        self.thread_ys.clear();
        self.named_programs.clear();
        let mut y = rect.top() + legend.height;
        let lanes_top = y;
        // Only the rows in view are painted: a program's thousands of thread
        // lanes scroll, and each painted lane costs a pass over every column.
        let visible = ui.clip_rect().y_range();
        for row in &rows {
            let h = row_height(row, lane_h, strip_h);
            if y + h >= visible.min && y <= visible.max {
                self.row(&pc, row, y, lane_h, strip_h, hover, &mut hit);
            }
            y += h;
        }
        grid_and_axis(&pc, lanes_top..=y, axis);
        for run in runs {
            self.handoffs(&pc, run);
        }
        legend.paint(&pc, rect.min, self.drew);

        let header = response.interact_pointer_pos().and_then(|p| {
            self.headers
                .iter()
                .find(|(r, _, _)| r.contains(p))
                .map(|(_, key, open)| (key.clone(), *open))
        });
        if let Some((key, open)) = header.filter(|_| response.clicked()) {
            self.open.insert(key, !open);
            return;
        }
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
        let edges = (self.bounds[0], self.bounds[columns], columns);
        if edges != self.cache_columns {
            self.group_cache.clear();
            self.cache_columns = edges;
        }
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

    /// Paints one row at `y` (its height: [`row_height`]).
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
    ) {
        let left = pc.data.left() - GUTTER + 6.0;
        match row {
            Row::Text(galley) => {
                pc.painter
                    .galley(pos2(left, y + TEXT_PAD / 2.0), galley.clone(), pc.text);
            }
            Row::Header { key, galley, open } => {
                let at = pos2(left, y + TEXT_PAD / 2.0);
                pc.painter.galley(at, galley.clone(), pc.text);
                let r = Rect::from_min_size(at, galley.size());
                self.headers.push((r, key.clone(), *open));
            }
            Row::Gap => {}
            Row::Lane {
                run,
                label,
                swatch,
                content,
                strip,
            } => {
                let lane_h = lane_height(content, lane_h);
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
                        if let Kind::Tasks { thread } = kind {
                            self.thread_ys
                                .push((run.index, *thread, lane_rect.center().y));
                        }
                        self.lane(pc, run, &[lane], *kind, lane_rect, hover, hit);
                    }
                    Content::Group { lanes, key } => {
                        let gutter =
                            Rect::from_x_y_ranges(left..=pc.data.left(), lane_rect.y_range());
                        self.headers.push((gutter, key.clone(), false));
                        let kind = Kind::Group { cores: lanes.len() };
                        self.lane(pc, run, lanes, kind, lane_rect, hover, hit);
                        if hover.is_some_and(|p| gutter.contains(p)) {
                            *hit = Some((
                                run.index,
                                Hit::Fold {
                                    caption: key.1.clone(),
                                    open: false,
                                },
                            ));
                        }
                    }
                    Content::Summary => self.summary(pc, run, lane_rect, hover, hit),
                    Content::Layers(layers) => {
                        for (lane, kind) in layers {
                            self.lane(pc, run, &[lane], *kind, lane_rect, hover, hit);
                        }
                    }
                    Content::Bands(bands) => {
                        let band_h = lane_rect.height() / bands.len().max(1) as f32;
                        for (i, (lane, kind)) in bands.iter().enumerate() {
                            let top = lane_rect.top() + i as f32 * band_h;
                            let band =
                                Rect::from_x_y_ranges(lane_rect.x_range(), top..=top + band_h);
                            self.lane(pc, run, &[lane], *kind, band, hover, hit);
                        }
                    }
                }
                if let Some((strip, kind)) = strip {
                    let strip_rect = Rect::from_x_y_ranges(
                        pc.data.x_range(),
                        y + lane_h..=y + lane_h + strip_h - 1.0,
                    );
                    self.lane(pc, run, &[strip], *kind, strip_rect, hover, hit);
                }
            }
        }
    }

    /// Paints one lane, column by column, from its summary: each column's
    /// exact shares (see [`columns`]); spans wide enough are then outlined
    /// and named one by one. Several lanes (a collapsed group) are summed
    /// into one: each column's shares of all their time.
    #[allow(clippy::too_many_arguments)]
    fn lane(
        &mut self,
        pc: &PaintCtx,
        run: &RunView,
        lanes: &[&Lane],
        kind: Kind,
        rect: Rect,
        hover: Option<Pos2>,
        hit: &mut Option<(usize, Hit)>,
    ) {
        let wide_ns = (WIDE_PX * pc.ns_per_px()).max(1.0) as u64;
        self.wide.clear();
        let lane = match lanes {
            [one] => {
                one.columns(&self.bounds, &mut self.mixes, &mut self.wide, wide_ns);
                *one
            }
            many => {
                self.sum_columns(many);
                &EMPTY_LANE
            }
        };
        // Threads without a colour of their own are drawn in greys: as one
        // share per grey, they make one stripe per grey and group, not one
        // each. A core lane has two, so that a core switching between two of
        // them shows it; a collapsed group sums many cores into one tally,
        // where one grey (with the time no tally could name) says as much in
        // half the shapes.
        if run.colours.shared() > 0 {
            let colours = run.colours;
            match kind {
                Kind::Core { .. } => self.mixes.iter_mut().for_each(|mix| {
                    mix.fold(|class| colours.grey_as(usize::from(class)).map(|t| t as Class));
                }),
                Kind::Group { .. } => self.mixes.iter_mut().for_each(|mix| {
                    mix.keep_only(|class| colours.is_named(usize::from(class)));
                }),
                _ => {}
            }
        }
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
            if let Some(colour) = kind.paint(paint, run.colours) {
                let xs = self.column_x(pc, k)..=self.column_x(pc, end);
                pc.painter
                    .rect_filled(Rect::from_x_y_ranges(xs, rect.y_range()), 0.0, colour);
            }
            self.drew.others |= paint == Paint::Others;
            k = end;
        }
        self.drew.gaps |= matches!(kind, Kind::Core { .. } | Kind::Group { .. });
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
                    name_task(
                        pc,
                        r,
                        &format!("task {}", task.id),
                        kind.colour(0, run.colours),
                    );
                }
            }
            if let Kind::Programs { .. } = kind
                && let Some(other) = rec
                    .sched
                    .as_ref()
                    .and_then(|s| s.others.get(first.item as usize))
            {
                hatch(pc, r);
                if name_task(pc, r, &other.name, kind.colour(0, run.colours)) {
                    self.named_programs.push(other.name.clone());
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
            let colour = kind.colour(0, run.colours);
            pc.painter.rect_filled(r, 0.0, colour);
            outline_task(pc, r, true, false);
            name_task(pc, r, &format!("task {} …", task.id), colour);
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

    /// The lock's hand-offs in view, each an arrow from the release on the
    /// releasing thread's lane to the acquire it unblocked on the waiting
    /// thread's: who woke whom. Only when few enough to tell apart.
    fn handoffs(&mut self, pc: &PaintCtx, run: &RunView) {
        let y_of = |thread: usize| {
            self.thread_ys
                .iter()
                .find(|&&(r, t, _)| r == run.index && t == thread)
                .map(|&(_, _, y)| y)
        };
        let (t0, t1) = (pc.t0.max(0.0) as u64, pc.t1.max(0.0) as u64);
        // Workers send them in batches of their own: not in time order.
        let shown: Vec<_> = run
            .rec
            .handoffs
            .iter()
            .filter(|h| h.acquire_ns >= t0 && h.release_ns <= t1)
            .take(MAX_ARROWS + 1)
            .collect();
        if shown.len() > MAX_ARROWS {
            return;
        }
        let stroke = Stroke::new(1.5, palette::HANDOFF);
        for h in shown {
            let (Some(y0), Some(y1)) = (y_of(h.from), y_of(h.to)) else {
                continue;
            };
            let from = pos2(pc.x(h.release_ns as f64), y0);
            let to = pos2(pc.x(h.acquire_ns as f64).max(from.x + 4.0), y1);
            pc.painter.line_segment([from, to], stroke);
            self.drew.arrows += 1;
            // A small head of fixed size, whatever the arrow's length.
            let back = (from - to).normalized() * 7.0;
            let side = back.rot90() * 0.5;
            pc.painter.line_segment([to, to + back + side], stroke);
            pc.painter.line_segment([to, to + back - side], stroke);
        }
    }

    /// Sums `lanes`' columns into `mixes`: each column's time of every
    /// thread on any of them, out of the lanes' combined time.
    fn sum_columns(&mut self, lanes: &[&Lane]) {
        let key = GroupData::of(lanes);
        if let Some(summed) = self.group_cache.get(&key) {
            self.mixes.clone_from(summed);
            return;
        }
        self.group_mixes.clear();
        self.group_mixes.resize(self.mixes.len(), Mix::default());
        for lane in lanes {
            lane.columns(&self.bounds, &mut self.mixes, &mut Vec::new(), u64::MAX);
            for (sum, mix) in self.group_mixes.iter_mut().zip(&self.mixes) {
                sum.merge(mix);
            }
        }
        std::mem::swap(&mut self.mixes, &mut self.group_mixes);
        self.group_cache.insert(key, self.mixes.clone());
    }

    /// The summary lane: per column, the average number of the run's
    /// threads running (from the bottom) and waiting for a CPU (above
    /// them), on a scale of the allowed cores (or more, if more waited).
    fn summary(
        &mut self,
        pc: &PaintCtx,
        run: &RunView,
        rect: Rect,
        hover: Option<Pos2>,
        hit: &mut Option<(usize, Hit)>,
    ) {
        let counts = &run.timeline.counts;
        counts.columns(&self.bounds, &mut self.levels);
        if run.other_work() == Some(OtherWork::Sampled) {
            counts.others_sampled(run.machine_busy, &self.bounds, &mut self.levels);
        }
        let cores = run.topo.allowed.len() as f64;
        let peak = self
            .levels
            .iter()
            .map(|l| l.running + l.others + l.runnable)
            .fold(2.0 * cores, f64::max);
        // The cores fill the lower half, whatever the queue's length above
        // them: with many more threads than cores, one linear scale would
        // leave the running and other work a few pixels.
        let half = f64::from(rect.height()) / 2.0;
        let px = |v: f64| {
            let h = match v <= cores {
                true => half * v / cores,
                false => half + half * (v - cores) / (peak - cores),
            };
            h.round() as f32
        };
        // Stacked from the bottom: the run's threads running, the cores other
        // programs held (captured or sampled), then the run's threads waiting.
        let bar = |k: usize| {
            let l = self.levels[k];
            let busy = l.running + l.others;
            [px(l.running), px(busy), px(busy + l.runnable)]
        };
        let colours = [
            palette::state(SliceState::Running),
            palette::OTHER_PROGRAMS_HATCH,
            palette::state(SliceState::Runnable),
        ];
        let mut k = 0;
        while k < self.levels.len() {
            let h = bar(k);
            // Identical neighbouring columns are painted as one shape.
            let end = k + (k..self.levels.len()).take_while(|&j| bar(j) == h).count();
            let xs = self.column_x(pc, k)..=self.column_x(pc, end);
            let base = rect.bottom();
            let mut below = 0.0;
            for (top, colour) in h.into_iter().zip(colours) {
                if top > below {
                    let r = Rect::from_x_y_ranges(xs.clone(), base - top..=base - below);
                    pc.painter.rect_filled(r, 0.0, colour);
                    self.drew.summary_others |= colour == palette::OTHER_PROGRAMS_HATCH;
                }
                below = top;
            }
            k = end;
        }
        // Where the cores are full: more threads than this cannot all run.
        let full = rect.bottom() - px(cores);
        pc.painter.hline(
            rect.x_range(),
            full,
            Stroke::new(1.0, palette::faded(pc.weak, 0.7)),
        );
        if let Some(p) = hover.filter(|p| rect.contains(*p)) {
            let columns = self.levels.len();
            let k = (((p.x - pc.data.left()) / pc.data.width()) * columns as f32) as usize;
            let k = k.min(columns.saturating_sub(1));
            *hit = Some((
                run.index,
                Hit::Summary {
                    level: self.levels[k],
                    t: [self.bounds[k], self.bounds[k + 1]],
                    resolution_ns: counts.resolution_ns(),
                },
            ));
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

    fn header<'a>(&self, key: GroupKey, open: bool, text: String) -> Row<'a> {
        let color = self.ui.visuals().strong_text_color();
        let galley = self
            .ui
            .painter()
            .layout(text, FontId::proportional(12.5), color, self.width);
        Row::Header { key, galley, open }
    }
}

/// Which lanes a folded group sums, and how much they hold: a lane that
/// takes in or forgets spans changes it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct GroupData {
    first: usize,
    lanes: usize,
    spans: usize,
    end_ns: u64,
}

impl GroupData {
    fn of(lanes: &[&Lane]) -> GroupData {
        GroupData {
            // The lanes' address: where the store keeps them.
            first: lanes
                .first()
                .map_or(0, |l| std::ptr::from_ref::<Lane>(l) as usize),
            lanes: lanes.len(),
            spans: lanes.iter().map(|l| l.len()).sum(),
            end_ns: lanes.iter().map(|l| l.end_ns()).max().unwrap_or(0),
        }
    }
}

/// A collapsible group of lanes: the run it belongs to and its caption.
type GroupKey = (usize, String);

/// Thread lanes are listed one by one up to this many; beyond, they start
/// collapsed (the summary lane counts them, and a click lists them).
const THREADS_LISTED_UP_TO: usize = 64;

/// Which groups are open: the user's clicks, else a default that keeps a
/// many-core run to a screenful (collapsed groups, the run's own cores
/// open), opening the groups that ran the run's threads once zoomed in.
struct Openness<'v> {
    chosen: &'v HashMap<GroupKey, bool>,
    /// The visible range, when zoomed in to an eighth of the runs or less.
    zoomed: Option<[u64; 2]>,
}

impl Openness<'_> {
    fn is_open(&self, key: &GroupKey, default: bool, ran_in: impl Fn([u64; 2]) -> bool) -> bool {
        if let Some(&open) = self.chosen.get(key) {
            return open;
        }
        default || self.zoomed.is_some_and(ran_in)
    }
}

fn rows<'a>(runs: &'a [RunView<'a>], texts: &Texts, openness: &Openness) -> Vec<Row<'a>> {
    let mut rows = Vec::new();
    for (n, run) in runs.iter().enumerate() {
        let topo = run.topo;
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
        let mut cores = tl.busy_cores();
        // Idle cores are part of the picture: listed on small machines, and
        // in (collapsed) groups on grouped ones.
        if topo.allowed.len() <= ALL_CORES_UP_TO || topo.layout.is_grouped() {
            cores.extend(&topo.allowed);
            cores.sort_unstable();
            cores.dedup();
        }
        let many = cores.len() > ALL_CORES_UP_TO;
        if tl.cores_from_kernel && (many || rec.threads.len() > palette::THREAD_COLOURS) {
            rows.push(texts.row(
                format!(
                    "Summary: how many of the run's {} threads ran (green) and waited for a CPU (red); the line: all {} cores busy{}",
                    rec.threads.len(),
                    topo.allowed.len(),
                    match run.other_work() {
                        Some(OtherWork::Captured) => "; grey: cores other programs held",
                        Some(OtherWork::Sampled) => "; grey: other work on these cores (sampled utilisation)",
                        None => "",
                    }
                ),
                12.5,
                true,
            ));
            rows.push(Row::Lane {
                run,
                label: "threads".into(),
                swatch: None,
                content: Content::Summary,
                strip: None,
            });
        }
        rows.push(texts.row(if tl.cores_from_kernel {
            format!("Cores: what each core ran, {source} (coloured by thread; each pixel shows its exact shares)")
        } else if rec.is_running() && rec.sched_source == SchedSource::Procfs {
            "Cores: task lifetimes by core until the run ends (sampled kernel data comes at the end)".into()
        } else {
            "Cores: task lifetimes by the core each task started on (no kernel data: cannot show turns)".into()
        }, 12.5, true));
        let own: Vec<usize> = rec.threads.iter().filter_map(|t| t.pinned_core).collect();
        for group in topo.layout.lane_groups(&cores, &own) {
            let Some(caption) = group.caption else {
                rows.extend(group.cpus.iter().map(|&core| core_row(run, core, topo)));
                continue;
            };
            let key = (run.index, caption.clone());
            let mine = group.cpus.iter().any(|c| own.contains(c));
            let lanes: Vec<&Lane> = group
                .cpus
                .iter()
                .map(|&c| tl.cores.get(c).unwrap_or(&EMPTY_LANE))
                .collect();
            let ran_in = |[a, b]: [u64; 2]| lanes.iter().any(|l| l.mix(a, b).covered_ns() > 0);
            let open = !tl.cores_from_kernel || openness.is_open(&key, mine || !many, ran_in);
            if open {
                let title = format!("[−] {caption} (click to fold into one lane)");
                rows.push(texts.header(key, true, title));
                rows.extend(group.cpus.iter().map(|&core| core_row(run, core, topo)));
            } else {
                // One lane, labelled by its CPUs; the caption is in its tooltip.
                rows.push(Row::Lane {
                    run,
                    label: format!("+ {}", crate::topology::compact_ranges(&group.cpus)),
                    swatch: None,
                    content: Content::Group { lanes, key },
                    strip: None,
                });
            }
        }
        let states = has_states(tl);
        let threads = tl.threads.len();
        let title = if states {
            "Threads: task lifetimes; strip below: the kernel's state of the thread"
        } else {
            "Threads: task lifetimes"
        };
        if threads > THREADS_LISTED_UP_TO {
            let key = (run.index, "threads".to_string());
            let open = openness.is_open(&key, false, |_| false);
            rows.push(texts.header(
                key,
                open,
                match open {
                    true => format!("[−] {title}"),
                    false => format!("[+] Threads: {threads} lanes (click to list them)"),
                },
            ));
            if !open {
                continue;
            }
        } else {
            rows.push(texts.row(title.into(), 12.5, true));
        }
        for (i, lane) in tl.threads.iter().enumerate() {
            let name = thread_name(rec, i);
            rows.push(Row::Lane {
                run,
                label: name,
                swatch: Some(run.colours.thread(i)),
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
        let lane = (
            tl.cores.get(core).unwrap_or(&EMPTY_LANE),
            Kind::Core { core },
        );
        match tl.others.get(core).filter(|l| !l.is_empty()) {
            Some(others) => Content::Layers(vec![(others, Kind::Programs { core }), lane]),
            None => Content::One(lane.0, lane.1),
        }
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

/// The height of `row` once laid out.
fn row_height(row: &Row, lane_h: f32, strip_h: f32) -> f32 {
    match row {
        Row::Lane { strip, content, .. } => {
            lane_height(content, lane_h) + if strip.is_some() { strip_h } else { 0.0 }
        }
        _ => fixed_height(row),
    }
}

/// The summary lane is two lanes tall.
fn lane_height(content: &Content, lane_h: f32) -> f32 {
    match content {
        Content::Summary => 2.0 * lane_h,
        _ => lane_h,
    }
}

fn fixed_height(row: &Row) -> f32 {
    match row {
        Row::Text(galley) | Row::Header { galley, .. } => galley.size().y + TEXT_PAD,
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
/// Returns whether it was written.
fn name_task(pc: &PaintCtx, r: Rect, name: &str, fill: Color32) -> bool {
    let fits = r.width() > 52.0 && r.height() > 14.0;
    if fits {
        pc.painter.with_clip_rect(r).text(
            r.center(),
            Align2::CENTER_CENTER,
            name,
            FontId::proportional(11.5),
            palette::text_on(fill),
        );
    }
    fits
}

/// Diagonal hatching over `r` (visible: callers clamp it to the lane),
/// which marks other programs' time apart from the run's threads.
fn hatch(pc: &PaintCtx, r: Rect) {
    const STEP: f32 = 6.0;
    if r.width() < 2.0 {
        return;
    }
    let painter = pc.painter.with_clip_rect(r);
    let stroke = Stroke::new(1.0, palette::OTHER_PROGRAMS_HATCH);
    let h = r.height();
    // Lines from the bottom edge up to the right, starting far enough left to cover the corner.
    let first = ((r.left() - h) / STEP).floor() * STEP;
    let mut x = first;
    while x < r.right() {
        painter.line_segment([pos2(x, r.bottom()), pos2(x + h, r.top())], stroke);
        x += STEP;
    }
}

#[derive(Clone, Copy)]
enum Swatch {
    Fill(Color32),
    /// Two colours side by side: the greys that threads without a colour share.
    Pair(Color32, Color32),
    /// The lane's own background, outlined: where a core ran nothing of the run.
    Gap,
    /// Other programs' time on a core (see [`hatch`]).
    Hatched,
}

/// Thread colours, state colours and what a gap means, wrapped into rows.
struct Legend {
    /// Each entry's swatch, text, and left-centre relative to the timeline's corner.
    items: Vec<(Swatch, Arc<Galley>, Vec2)>,
    height: f32,
}

impl Legend {
    fn new(ui: &Ui, runs: &[RunView], width: f32) -> Legend {
        // The run with the most threads names the colours (a program's
        // threads have their own names).
        let widest = runs.iter().max_by_key(|r| r.rec.threads.len());
        let threads = widest.map_or(0, |r| r.rec.threads.len());
        let states = runs.iter().any(|r| has_states(r.timeline));
        let kernel = runs.iter().any(|r| r.timeline.cores_from_kernel);
        let mut entries: Vec<(Swatch, String)> = widest
            .map(|r| {
                r.colours
                    .named()
                    .map(|i| (Swatch::Fill(r.colours.thread(i)), thread_name(r.rec, i)))
                    .collect()
            })
            .unwrap_or_default();
        let shared = widest.map_or(0, |r| r.colours.shared());
        if shared > 0 {
            entries.push((
                Swatch::Pair(palette::OTHERS, palette::OTHERS_ALT),
                format!("{shared} other threads (those that ran less), two greys"),
            ));
        } else if kernel && threads > 12 {
            // Over a dozen threads on one core: a summary node names only the top ones.
            entries.push((
                Swatch::Fill(palette::OTHERS),
                "other threads (zoom in)".into(),
            ));
        }
        // A system-wide capture draws the other programs: its gaps are idle time.
        let programs = runs
            .iter()
            .any(|r| r.timeline.others.iter().any(|l| !l.is_empty()));
        if programs {
            entries.push((Swatch::Hatched, "other programs".into()));
        }
        if kernel {
            entries.push((
                Swatch::Gap,
                match programs {
                    true => "core: idle".into(),
                    false => "core: not this run (idle or another program)".into(),
                },
            ));
        }
        if runs.iter().any(|r| !r.rec.handoffs.is_empty()) {
            entries.push((
                Swatch::Fill(palette::HANDOFF),
                format!("lock hand-off: arrow from a release to the acquire it unblocked (up to {MAX_ARROWS} in view)"),
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
                Swatch::Pair(left, right) => {
                    let (l, r) = sw.split_left_right_at_fraction(0.5);
                    pc.painter.rect_filled(l, 0.0, *left);
                    pc.painter.rect_filled(r, 0.0, *right);
                }
                Swatch::Hatched => {
                    pc.painter.rect_filled(sw, 2.0, palette::OTHER_PROGRAMS);
                    hatch(pc, sw);
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
        Hit::Span {
            kind: Kind::Programs { core },
            item,
        } => {
            let Some(o) = rec.sched.as_ref().and_then(|s| s.others.get(item as usize)) else {
                return;
            };
            ui.label(format!(
                "another program on {}: {} (pid {}, tid {})",
                run.topo.core_label(core),
                o.name,
                o.pid,
                o.tid
            ));
            ui.label(format!(
                "from {} for {}",
                ms(o.start_ns),
                human_ns(o.end_ns - o.start_ns)
            ));
        }
        Hit::Span { item, .. } => {
            let Some(slice) = rec.slice(item) else {
                return;
            };
            let thread = name(slice.thread());
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
                    Kind::Core { .. } | Kind::Group { .. } => name(usize::from(class)),
                    Kind::States { .. } => palette::state_label(class_state(class)).into(),
                    Kind::Programs { .. } => "other programs".into(),
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
                    Kind::Core { .. } | Kind::Group { .. } => {
                        "not this run (idle or another program)"
                    }
                    Kind::States { .. } => "before or after the thread lived",
                    Kind::Programs { .. } => "idle, or this run",
                    Kind::Tasks { .. } | Kind::CoreTasks { .. } => "between tasks",
                };
                ui.label(format!("{what}: {:.1} %", pct(empty)));
            }
            ui.label("Zoom in (Ctrl+scroll, or scroll over the axis) to see them one by one.");
        }
        Hit::Fold { ref caption, open } => {
            ui.label(caption.as_str());
            ui.label(match open {
                true => "Click to fold these cores into one lane.",
                false => "These cores in one lane: each pixel shows the shares of all their time. Click to list them one by one.",
            });
        }
        Hit::Summary {
            level,
            t,
            resolution_ns,
        } => {
            ui.label(format!("{} – {}, on average:", ms(t[0]), ms(t[1])));
            ui.label(format!(
                "{:.1} of the run's {} threads running, {:.1} waiting for a CPU, on {} cores",
                level.running,
                rec.threads.len(),
                level.runnable,
                run.topo.allowed.len()
            ));
            match run.other_work() {
                Some(OtherWork::Captured) => {
                    ui.label(format!(
                        "{:.1} cores busy with other programs (system-wide capture, grey)",
                        level.others
                    ));
                }
                Some(OtherWork::Sampled) => {
                    // The widest stretch: the first is cut at the run's start.
                    let step = run
                        .machine_busy
                        .iter()
                        .map(|b| b.to_ns - b.from_ns)
                        .max()
                        .unwrap_or(0);
                    ui.label(format!(
                        "{:.1} cores busy with other work (grey): this machine's utilisation of these cores, \
                         sampled every {}, less this run's threads running then. It includes this window's own drawing.",
                        level.others,
                        human_ns(step)
                    ));
                }
                None => {}
            }
            ui.label(format!(
                "Counted from every kernel slice, in steps of {}.",
                human_ns(resolution_ns)
            ));
        }
        Hit::Gap { core, t } => {
            ui.label(format!(
                "{} at {}: running none of this run's threads (idle, or another program)",
                run.topo.core_label(core),
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
                    (slice.state == SliceState::Runnable && slice.core() == core)
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
    use crate::gui::bench::many_core;
    use egui::{Context, Event, PointerButton, RawInput};

    /// Draws `entry` into `view` once, with `events`, on a screen 1280
    /// wide and `high` tall (rows out of view are not painted).
    fn frame_on(
        high: f32,
        ctx: &Context,
        view: &mut TimelineView,
        entry: &crate::gui::Entry,
        events: Vec<Event>,
    ) {
        let runs = [entry.view(0)];
        let input = RawInput {
            screen_rect: Some(Rect::from_min_size(pos2(0.0, 0.0), vec2(1280.0, high))),
            events,
            ..RawInput::default()
        };
        let mut output = ctx.run_ui(input, |ui| {
            egui::CentralPanel::default().show(ui, |ui| view.ui(ui, &runs));
        });
        // No renderer takes the fonts' texture here.
        output.textures_delta.clear();
    }

    /// [`frame_on`] a laptop's 1280 × 800 screen.
    fn frame(
        ctx: &Context,
        view: &mut TimelineView,
        entry: &crate::gui::Entry,
        events: Vec<Event>,
    ) {
        frame_on(800.0, ctx, view, entry, events);
    }

    fn click(at: Pos2) -> Vec<Event> {
        let button = |pressed| Event::PointerButton {
            pos: at,
            button: PointerButton::Primary,
            pressed,
            modifiers: egui::Modifiers::NONE,
        };
        vec![Event::PointerMoved(at), button(true), button(false)]
    }

    fn folded(view: &TimelineView) -> usize {
        view.headers.iter().filter(|(_, _, open)| !open).count()
    }

    #[test]
    fn many_cores_fold_by_cache_group_and_a_click_lists_one() {
        let (ctx, entry) = (Context::default(), many_core(60_000));
        let mut view = TimelineView::default();
        frame(&ctx, &mut view, &entry, Vec::new());
        // 16 cache groups folded, and the 1000 threads folded behind one title.
        assert_eq!(folded(&view), 16 + 1, "{:?}", view.headers);
        let (rect, key, _) = view.headers[0].clone();
        frame(&ctx, &mut view, &entry, click(rect.center()));
        frame(&ctx, &mut view, &entry, Vec::new());
        assert_eq!(view.open.get(&key), Some(&true));
        assert_eq!(folded(&view), 15 + 1);
        assert!(view.headers.iter().any(|(_, k, open)| *k == key && *open));
    }

    #[test]
    fn a_folded_groups_sums_are_reused_only_while_its_lanes_are_unchanged() {
        let mut view = TimelineView {
            bounds: vec![0, 100, 200],
            mixes: vec![Mix::default(); 2],
            ..TimelineView::default()
        };
        let (mut a, b) = (Lane::default(), Lane::default());
        a.push(0, 50, 0, 1);
        let covered = |view: &TimelineView| view.mixes.iter().map(Mix::covered_ns).sum::<u64>();
        view.sum_columns(&[&a, &b]);
        assert_eq!(covered(&view), 50);
        view.sum_columns(&[&a, &b]);
        assert_eq!(covered(&view), 50, "the same sums again");
        // A live lane takes in a span: the group is summed afresh.
        a.push(100, 180, 1, 2);
        view.sum_columns(&[&a, &b]);
        assert_eq!(covered(&view), 130);
    }

    /// Two threads taking a lock in turns: `n` hand-offs, one each 10 ms.
    fn lock_run(n: u64) -> crate::gui::Entry {
        use crate::telemetry::events::{Handoff, RunEvent, TaskRecord, ThreadRecord};
        let mut entry = crate::gui::Entry::new(Recording::new(crate::run::RunConfig {
            threads: 2,
            ..crate::run::RunConfig::defaults(Topology::get())
        }));
        let wall = (n + 1) * 10_000_000;
        entry.ingest([
            RunEvent::Started {
                origin_ns: 1,
                threads: (0..2)
                    .map(|index| ThreadRecord {
                        index,
                        ..ThreadRecord::default()
                    })
                    .collect(),
                sched_source: SchedSource::Off,
                sched_note: None,
            },
            RunEvent::Tasks(
                (0..2)
                    .map(|thread| TaskRecord {
                        id: thread,
                        thread,
                        start_ns: 0,
                        end_ns: wall,
                        core_at_start: 0,
                        core_at_end: 0,
                        cpu_ns: 0,
                        ok: true,
                    })
                    .collect(),
            ),
            RunEvent::Handoffs(
                (0..n)
                    .map(|k| Handoff {
                        from: (k % 2) as usize,
                        to: ((k + 1) % 2) as usize,
                        release_ns: (k + 1) * 10_000_000,
                        acquire_ns: (k + 1) * 10_000_000 + 1_000,
                    })
                    .collect(),
            ),
            RunEvent::Finished {
                wall_ns: wall,
                cancelled: false,
            },
        ]);
        entry
    }

    #[test]
    fn lock_hand_offs_are_arrows_while_few_enough_to_tell_apart() {
        let ctx = Context::default();
        let mut view = TimelineView::default();
        frame(&ctx, &mut view, &lock_run(12), Vec::new());
        assert_eq!(view.drew.arrows, 12);
        // Past the most in view: none, until zoomed in.
        let many = lock_run(MAX_ARROWS as u64 + 1);
        frame(&ctx, &mut view, &many, Vec::new());
        assert_eq!(view.drew.arrows, 0);
        view.show_range([0.0, 50e6]);
        frame(&ctx, &mut view, &many, Vec::new());
        assert_eq!(view.drew.arrows, 5, "the hand-offs at 10 to 50 ms");
    }

    #[test]
    fn the_summary_shows_sampled_other_work_only_where_the_machine_was_busier_than_the_run() {
        use crate::telemetry::utilisation::Busy;
        let (ctx, mut entry) = (Context::default(), many_core(60_000));
        let wall = entry.rec.wall_ns;
        let mut view = TimelineView::default();
        frame(&ctx, &mut view, &entry, vec![]);
        assert!(!view.drew.summary_others, "no samples, no grey");
        // Every CPU busy throughout: more than the run's threads ran.
        let cores = entry.topo().allowed.len() as f64;
        entry.machine_busy = vec![Busy {
            from_ns: 0,
            to_ns: wall,
            cores,
        }];
        view.drew = Drew::default();
        frame(&ctx, &mut view, &entry, vec![]);
        assert!(view.drew.summary_others, "other work drawn in grey");
        // Samples that say less was busy than the run itself used: none.
        entry.machine_busy[0].cores = 1.0;
        view.drew = Drew::default();
        frame(&ctx, &mut view, &entry, vec![]);
        assert!(!view.drew.summary_others);
    }

    #[test]
    fn zooming_in_lists_the_groups_that_ran_then() {
        let (ctx, entry) = (Context::default(), many_core(60_000));
        let mut view = TimelineView::default();
        let end = entry.timeline.end_ns() as f64;
        // 5 ms at 1 s: the always-busy groups ran then; not every group did.
        view.show_range([1e9, 1e9 + 5e6]);
        // Tall enough that every group's title is painted.
        frame_on(20_000.0, &ctx, &mut view, &entry, Vec::new());
        let open = view.headers.iter().filter(|(_, _, open)| *open).count();
        assert!((6..16).contains(&open), "{open} groups open of 16");
        view.show_range([0.0, end]);
        frame(&ctx, &mut view, &entry, Vec::new());
        assert_eq!(folded(&view), 17, "at fit they fold again");
    }

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
