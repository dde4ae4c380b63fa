//! Live per-core utilisation of the whole machine (every process, not only
//! ours) for the shown run and the seconds around it.

use std::time::Duration;

use eframe::egui;
use egui::{RichText, Ui};
use egui_plot::{Corner, Legend, Line, Plot, PlotBounds, Span};

use super::palette;
use crate::metrics::human_ns;
use crate::run::Recording;
use crate::sys;
use crate::telemetry::utilisation::{Busy, History, Sampler};
use crate::topology::Topology;

/// Seconds shown before and after a run.
const AROUND_S: f64 = 3.0;
/// What is shown when there is no run: the last minute.
const IDLE_S: f64 = 60.0;
const PERIOD: Duration = Duration::from_millis(250);

#[derive(Default)]
pub struct UtilisationView {
    /// Started on first show; the error sentence if the thread could not start.
    sampler: Option<Result<Sampler, String>>,
}

impl UtilisationView {
    /// This machine's busy cores among those this process may use, from
    /// `from_ns` to `to_ns`, as sampled (nothing before the sampler started).
    pub fn busy(&self, from_ns: u64, to_ns: u64) -> Vec<Busy> {
        match &self.sampler {
            Some(Ok(sampler)) => {
                let period_ns = sampler.period().as_nanos() as u64;
                let cpus = &Topology::get().allowed;
                sampler.with_history(|h| h.busy(cpus, period_ns, from_ns, to_ns))
            }
            _ => Vec::new(),
        }
    }

    /// Plots per-core % around `run` (or the last minute when there is none).
    pub fn ui(&mut self, ui: &mut Ui, run: Option<&Recording>) {
        let sampler = self.sampler.get_or_insert_with(|| {
            Sampler::start(PERIOD, || {})
                .map_err(|e| format!("cannot start the utilisation sampler: {e}"))
        });
        match sampler {
            Ok(sampler) => {
                let window = Window::of(run, sys::monotonic_ns());
                let shown = sampler.with_history(|h| window.lines(h));
                window.show(ui, shown);
            }
            Err(why) => {
                ui.label(RichText::new(why.as_str()).color(palette::WARNING));
            }
        }
    }
}

/// The stretch of time plotted, on an axis of seconds from `origin_ns`.
struct Window {
    origin_ns: u64,
    /// Seconds from the origin.
    x_range: [f64; 2],
    /// The run's own stretch, shaded; `None` when no run is shown.
    run: Option<[f64; 2]>,
    title: &'static str,
}

/// The plot's lines, taken from the history under its lock.
struct Lines {
    /// One line of [s, %] points per CPU, by CPU id.
    per_core: Vec<Vec<[f64; 2]>>,
    /// The widest bucket the points average (zero: all are single readings).
    coarsest_ns: u64,
}

impl Window {
    fn of(run: Option<&Recording>, now_ns: u64) -> Window {
        match run {
            Some(rec) if rec.origin_ns > 0 => {
                let end_ns = if rec.is_running() {
                    now_ns.saturating_sub(rec.origin_ns)
                } else {
                    rec.wall_ns
                };
                let end_s = end_ns as f64 / 1e9;
                Window {
                    origin_ns: rec.origin_ns,
                    x_range: [-AROUND_S, end_s + AROUND_S],
                    run: Some([0.0, end_s]),
                    title: "s since the run started",
                }
            }
            _ => Window {
                origin_ns: now_ns,
                x_range: [-IDLE_S, 0.0],
                run: None,
                title: "s before now",
            },
        }
    }

    fn lines(&self, history: &History) -> Lines {
        let at = |s: f64| (self.origin_ns as f64 + s * 1e9).max(0.0) as u64;
        let samples = history.window(at(self.x_range[0]), at(self.x_range[1]));
        let rel = |t_ns: u64| (t_ns as f64 - self.origin_ns as f64) / 1e9;
        Lines {
            per_core: (0..history.cores())
                .map(|core| {
                    samples
                        .iter()
                        .filter_map(|s| {
                            let busy = s.per_core.get(core)?;
                            Some([rel(s.t_ns), f64::from(*busy)])
                        })
                        .collect()
                })
                .collect(),
            coarsest_ns: samples.iter().map(|s| s.span_ns).max().unwrap_or(0),
        }
    }

    fn show(&self, ui: &mut Ui, lines: Lines) {
        // Wrapped: the panel is narrow in a small window, and a note that
        // does not wrap would push the plot out of it.
        ui.horizontal_wrapped(|ui| {
            ui.strong("CPU utilisation per core");
            ui.label(
                RichText::new("(whole machine, all processes: other programs show up too)").weak(),
            );
            if lines.coarsest_ns > 0 {
                ui.label(
                    RichText::new(format!(
                        "— samples this old are kept as averages over {}",
                        human_ns(lines.coarsest_ns)
                    ))
                    .weak(),
                );
            }
        });
        let topo = Topology::get();
        let [x0, x1] = self.x_range;
        Plot::new("utilisation")
            .legend(Legend::default().position(Corner::LeftTop))
            .allow_zoom(false)
            .allow_drag(false)
            .allow_scroll(false)
            .allow_boxed_zoom(false)
            .allow_double_click_reset(false)
            .x_axis_label(self.title)
            .y_axis_label("% busy")
            .show(ui, |plot| {
                plot.set_plot_bounds(PlotBounds::from_min_max([x0, 0.0], [x1, 105.0]));
                if let Some([a, b]) = self.run {
                    plot.add(
                        Span::new("the run", a..=b).fill(palette::faded(palette::SUCCESS, 0.12)),
                    );
                }
                for (core, points) in lines.per_core.into_iter().enumerate() {
                    let name = if topo.is_allowed(core) {
                        topo.core_label(core)
                    } else {
                        format!("{} (not ours)", topo.core_label(core))
                    };
                    plot.line(
                        Line::new(name, points)
                            .color(palette::core(core))
                            .width(2.0),
                    );
                }
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{RunConfig, RunStatus};
    use crate::telemetry::utilisation::Sample;
    use egui::{Rect, UiBuilder, pos2, vec2};

    const SECOND: u64 = 1_000_000_000;

    /// A finished 2 s run that started at `origin_s` on a session's clock.
    fn old_run(origin_s: u64) -> Recording {
        let mut rec = Recording::new(RunConfig::defaults(Topology::get()));
        rec.origin_ns = origin_s * SECOND;
        rec.wall_ns = 2 * SECOND;
        rec.status = RunStatus::Finished;
        rec
    }

    /// An hour of readings on 4 CPUs, every 250 ms.
    fn an_hour() -> History {
        let mut history = History::default();
        for t in (0..3600 * SECOND).step_by(PERIOD.as_nanos() as usize) {
            history.push(Sample::reading(SECOND + t, vec![40.0, 60.0, 5.0, 95.0]));
        }
        history
    }

    #[test]
    fn a_run_from_an_hour_ago_keeps_its_lines() {
        let history = an_hour();
        let window = Window::of(Some(&old_run(60)), 3601 * SECOND);
        let lines = window.lines(&history);
        assert_eq!(lines.per_core.len(), 4);
        for line in &lines.per_core {
            assert!(line.len() >= 2, "a line needs two points: {line:?}");
            assert!(
                line[0][0] <= window.x_range[0] && line.last().unwrap()[0] >= window.x_range[1]
            );
        }
        assert_eq!(
            lines.coarsest_ns,
            20 * SECOND,
            "50 minutes old: 20 s buckets"
        );
        assert!((lines.per_core[3][0][1] - 95.0).abs() < 1e-3);
    }

    /// The bottom panel of a 1280 × 800 window: what the side panels leave.
    #[test]
    fn the_notes_wrap_inside_the_panel_of_a_small_window() {
        let history = an_hour();
        let window = Window::of(Some(&old_run(60)), 3601 * SECOND);
        let panel = Rect::from_min_size(pos2(330.0, 610.0), vec2(600.0, 190.0));
        let ctx = egui::Context::default();
        let input = egui::RawInput {
            screen_rect: Some(Rect::from_min_size(pos2(0.0, 0.0), vec2(1280.0, 800.0))),
            ..Default::default()
        };
        let mut used = Rect::NOTHING;
        ctx.run_ui(input, |ui| {
            let mut inside = ui.new_child(UiBuilder::new().max_rect(panel));
            window.show(&mut inside, window.lines(&history));
            used = inside.min_rect();
        })
        .drop_without_applying_deltas();
        assert!(
            panel.expand(0.5).contains_rect(used),
            "drawn in {used:?}, the panel is {panel:?}"
        );
    }
}
