//! Live per-core utilisation of the whole machine (every process, not only
//! ours) for the shown run and the seconds around it.

use std::time::Duration;

use eframe::egui;
use egui::{RichText, Ui};
use egui_plot::{Corner, Legend, Line, Plot, PlotBounds, Span};

use super::palette;
use crate::run::Recording;
use crate::sys;
use crate::telemetry::utilisation::Sampler;
use crate::topology::Topology;

/// Seconds shown before and after a run.
const AROUND_S: f64 = 3.0;
const PERIOD: Duration = Duration::from_millis(250);

#[derive(Default)]
pub struct UtilisationView {
    /// Started on first show; the error sentence if the thread could not start.
    sampler: Option<Result<Sampler, String>>,
}

impl UtilisationView {
    /// Plots per-core % around `run` (or the last minute when there is none).
    pub fn ui(&mut self, ui: &mut Ui, run: Option<&Recording>) {
        let sampler = self.sampler.get_or_insert_with(|| {
            Sampler::start(PERIOD, || {})
                .map_err(|e| format!("cannot start the utilisation sampler: {e}"))
        });
        let sampler = match sampler {
            Ok(sampler) => sampler,
            Err(why) => {
                ui.label(RichText::new(why.as_str()).color(palette::WARNING));
                return;
            }
        };
        let now = sys::monotonic_ns();
        let (origin, x_range, title) = match run {
            Some(rec) if rec.origin_ns > 0 => {
                let end = if rec.is_running() {
                    now.saturating_sub(rec.origin_ns)
                } else {
                    rec.wall_ns
                };
                let end_s = end as f64 / 1e9;
                (
                    rec.origin_ns,
                    [-AROUND_S, end_s + AROUND_S],
                    "s since the run started",
                )
            }
            _ => (now, [-60.0, 0.0], "s before now"),
        };
        let (lines, oldest) = sampler.with_history(|h| {
            let rel = |t: u64| (t as f64 - origin as f64) / 1e9;
            let lines: Vec<Vec<[f64; 2]>> = (0..h.cores())
                .map(|core| {
                    h.samples()
                        .iter()
                        .filter_map(|s| s.per_core.get(core).map(|&p| [rel(s.t_ns), f64::from(p)]))
                        .collect()
                })
                .collect();
            (lines, h.samples().front().map(|s| rel(s.t_ns)))
        });

        ui.horizontal(|ui| {
            ui.strong("CPU utilisation per core");
            ui.label(
                RichText::new("(whole machine, all processes: other programs show up too)").weak(),
            );
            if run.is_some() && oldest.is_some_and(|o| o > x_range[1]) {
                ui.label(
                    RichText::new("— this run is older than the kept minute of samples")
                        .color(palette::WARNING),
                );
            }
        });
        let topo = Topology::get();
        let run_span = run
            .filter(|r| r.origin_ns > 0)
            .map(|_| [0.0, x_range[1] - AROUND_S]);
        Plot::new("utilisation")
            .legend(Legend::default().position(Corner::LeftTop))
            .allow_zoom(false)
            .allow_drag(false)
            .allow_scroll(false)
            .allow_boxed_zoom(false)
            .allow_double_click_reset(false)
            .x_axis_label(title)
            .y_axis_label("% busy")
            .show(ui, |plot| {
                plot.set_plot_bounds(PlotBounds::from_min_max(
                    [x_range[0], 0.0],
                    [x_range[1], 105.0],
                ));
                if let Some([a, b]) = run_span {
                    plot.add(
                        Span::new("the run", a..=b).fill(palette::faded(palette::SUCCESS, 0.12)),
                    );
                }
                for (core, points) in lines.into_iter().enumerate() {
                    let name = if topo.is_allowed(core) {
                        format!("core {core}")
                    } else {
                        format!("core {core} (not ours)")
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
