//! The measured figures of the shown run(s), each named with its definition,
//! and what the scheduler capture could (and could not) see.

use eframe::egui;
use egui::{RichText, Ui};

use super::history::History;
use super::palette;
use crate::metrics::{Metrics, efficiency, human_ns, speedup};
use crate::run::Recording;
use crate::telemetry::sched::SchedSource;

/// One row: a name, its definition (the tooltip), and its value for a run.
struct Figure {
    name: &'static str,
    definition: &'static str,
    value: fn(&Shown) -> String,
}

/// What a figure is computed from.
struct Shown<'a> {
    rec: &'a Recording,
    metrics: &'a Metrics,
    /// The matching one-thread or one-core run: (its number, its wall).
    baseline: Option<(usize, u64)>,
}

impl Shown<'_> {
    fn speedup(&self) -> Option<f64> {
        self.baseline
            .map(|(_, wall)| speedup(wall, self.metrics.wall_ns))
    }
}

const FIGURES: [Figure; 10] = [
    Figure {
        name: "wall",
        definition: "Time from the run's start until every worker thread ended.",
        value: |s| human_ns(s.metrics.wall_ns),
    },
    Figure {
        name: "CPU time",
        definition: "Σ on-CPU time of the run's threads.",
        value: |s| human_ns(s.metrics.cpu_ns),
    },
    Figure {
        name: "parallelism",
        definition: "Σ on-CPU time of the run's threads / wall time: the average number of cores busy at once.",
        value: |s| format!("{:.2}", s.metrics.parallelism),
    },
    Figure {
        name: "concurrency",
        definition: "The average number of tasks in flight (started, not finished) over the run.",
        value: |s| format!("{:.2}", s.metrics.concurrency),
    },
    Figure {
        name: "waited for a CPU",
        definition: "Run-queue wait: Σ time the threads were ready to run but waited for a CPU.",
        value: |s| human_ns(s.metrics.run_delay_ns),
    },
    Figure {
        name: "context switches",
        definition: "Voluntary: a thread gave up its CPU to wait (sleep, I/O, lock). Involuntary: the kernel preempted it.",
        value: |s| {
            format!(
                "{} vol. / {} invol.",
                s.metrics.voluntary_switches, s.metrics.involuntary_switches
            )
        },
    },
    Figure {
        name: "migrations",
        definition: "How many times a thread was moved from one core to another.",
        value: |s| s.metrics.migrations.to_string(),
    },
    Figure {
        name: "tasks",
        definition: "Tasks that completed, out of all the tasks recorded (failed or stopped ones are outlined red).",
        value: |s| format!("{} ok of {}", s.metrics.tasks_ok, s.rec.tasks.len()),
    },
    Figure {
        name: "speedup",
        definition: "wall(1 thread or 1 core) / wall(this run), for the same workload, tasks and task duration.",
        value: |s| match (s.speedup(), s.baseline) {
            (Some(x), Some((n, _))) => format!("{x:.2}× vs #{n}"),
            _ => "— (no 1-core run yet)".into(),
        },
    },
    Figure {
        name: "efficiency",
        definition: "speedup / threads: 1.0 means every added thread paid off in full.",
        value: |s| {
            s.speedup().map_or_else(
                || "—".into(),
                |x| format!("{:.2}", efficiency(x, s.rec.config.threads)),
            )
        },
    },
];

/// Draws the figures of the shown runs side by side.
pub fn ui(ui: &mut Ui, history: &History) {
    ui.heading("Figures");
    let shown: Vec<(usize, Shown)> = history
        .shown()
        .into_iter()
        .filter_map(|i| {
            let entry = history.get(i)?;
            let baseline = history
                .baseline_for(i)
                .and_then(|b| history.get(b).map(|e| (b + 1, e.metrics.wall_ns)));
            Some((
                i,
                Shown {
                    rec: &entry.rec,
                    metrics: &entry.metrics,
                    baseline,
                },
            ))
        })
        .collect();
    if shown.is_empty() {
        ui.label("Run an experiment to see its figures.");
        return;
    }
    egui::Grid::new("figures")
        .striped(true)
        .num_columns(1 + shown.len())
        .show(ui, |ui| {
            ui.label("");
            for (i, _) in &shown {
                ui.label(RichText::new(format!("run #{}", i + 1)).strong());
            }
            ui.end_row();
            for figure in &FIGURES {
                ui.label(figure.name).on_hover_text(figure.definition);
                for (_, s) in &shown {
                    ui.label((figure.value)(s)).on_hover_text(figure.definition);
                }
                ui.end_row();
            }
        });
    for (i, s) in &shown {
        capture_ui(ui, *i, s.rec, shown.len() > 1);
    }
}

/// Which scheduler source was active, what it could not see, and what failed.
fn capture_ui(ui: &mut Ui, index: usize, rec: &Recording, name_run: bool) {
    let prefix = if name_run {
        format!("#{}: ", index + 1)
    } else {
        String::new()
    };
    let source = match rec.sched_source {
        SchedSource::Perf => "perf (exact context switches)",
        SchedSource::Procfs => "procfs sampling (coarse, ~1 ms)",
        SchedSource::Off => "off (no kernel data)",
    };
    ui.add_space(4.0);
    ui.label(format!("{prefix}scheduler data: {source}"))
        .on_hover_text(
            "Where the kernel's scheduling of the threads (core lanes, state strips) came from",
        );
    if let Some(note) = &rec.sched_note {
        ui.label(RichText::new(note).small().weak());
    }
    let lost = rec.sched.as_ref().map_or(0, |s| s.lost_records);
    if lost > 0 {
        ui.label(
            RichText::new(format!(
                "{lost} scheduler records were lost: some slices are missing"
            ))
            .color(palette::WARNING),
        );
    }
    if rec.timeline.dropped() > 0 {
        ui.label(
            RichText::new(format!(
                "{} spans over the store's cap were not drawn",
                rec.timeline.dropped()
            ))
            .color(palette::WARNING),
        );
    }
    for why in &rec.failures {
        ui.label(RichText::new(format!("⚠ {why}")).color(palette::WARNING));
    }
}
