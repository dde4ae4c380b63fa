//! The measured figures of the shown run(s), each named with its definition,
//! and what the scheduler capture could (and could not) see.

use eframe::egui;
use egui::{RichText, Ui};

use super::history::{Baseline, History, NoSpeedup};
use super::palette;
use crate::metrics::{Metrics, efficiency, human_ns, speedup};
use crate::run::Recording;
use crate::telemetry::sched::SchedSource;

/// One row: a name, its definition (the tooltip), and its value for a run:
/// `Err` holds why there is none, shown as "—" with the reason in the tooltip.
struct Figure {
    name: &'static str,
    definition: &'static str,
    value: fn(&Shown) -> Result<String, String>,
}

/// What a figure is computed from.
struct Shown<'a> {
    rec: &'a Recording,
    metrics: &'a Metrics,
    /// The run's speedup and its baseline, or why it has none.
    speedup: Result<(f64, Baseline), NoSpeedup>,
    cores_used: usize,
}

impl Shown<'_> {
    fn new(history: &History, index: usize) -> Option<Shown<'_>> {
        let entry = history.get(index)?;
        let measured = history.baseline_for(index, entry.topo()).and_then(|b| {
            let base = history.get(b.index).ok_or(NoSpeedup::NoBaseline)?;
            Ok((speedup(base.metrics.wall_ns, entry.metrics.wall_ns), b))
        });
        Some(Shown {
            rec: &entry.rec,
            metrics: &entry.metrics,
            speedup: measured,
            cores_used: entry.rec.config.cores_used(entry.topo()),
        })
    }

    /// Speedup per core used, where it means something: against a one-core
    /// baseline (else the speedup is not from one core) and on more than one core.
    /// Returns (efficiency, speedup).
    fn efficiency(&self) -> Result<(f64, f64), String> {
        let (x, base) = self
            .speedup
            .map_err(|why| format!("no speedup: {}", why.why()))?;
        if self.cores_used <= 1 {
            Err("one core used: efficiency is not defined for one core".into())
        } else if base.cores > 1 {
            Err(format!(
                "the baseline (#{}) used {} cores: efficiency needs a one-core baseline",
                base.index + 1,
                base.cores
            ))
        } else {
            Ok((efficiency(x, self.cores_used), x))
        }
    }
}

const FIGURES: [Figure; 13] = [
    Figure {
        name: "wall",
        definition: "Time from the run's start until every worker thread ended.",
        value: |s| Ok(human_ns(s.metrics.wall_ns)),
    },
    Figure {
        name: "CPU time",
        definition: "Σ on-CPU time of the run's threads.",
        value: |s| Ok(human_ns(s.metrics.cpu_ns)),
    },
    Figure {
        name: "parallelism",
        definition: "Σ on-CPU time of the run's threads / wall time: the average number of cores busy at once.",
        value: |s| Ok(format!("{:.2}", s.metrics.parallelism)),
    },
    Figure {
        name: "concurrency",
        definition: "The average number of tasks in flight (started, not finished) over the run.",
        value: |s| Ok(format!("{:.2}", s.metrics.concurrency)),
    },
    Figure {
        name: "waited for a CPU",
        definition: "Run-queue wait: Σ time the threads were ready to run but waited for a CPU.",
        value: |s| Ok(human_ns(s.metrics.run_delay_ns)),
    },
    Figure {
        name: "context switches",
        definition: "Voluntary: a thread gave up its CPU to wait (sleep, I/O, lock). Involuntary: the kernel preempted it.",
        value: |s| {
            Ok(format!(
                "{} vol. / {} invol.",
                s.metrics.voluntary_switches, s.metrics.involuntary_switches
            ))
        },
    },
    Figure {
        name: "migrations",
        definition: "How many times a thread was moved from one core to another.",
        value: |s| Ok(s.metrics.migrations.to_string()),
    },
    Figure {
        name: "tasks",
        definition: "Tasks that completed, out of all the tasks recorded (failed or stopped ones are outlined red).",
        value: |s| match &s.rec.program {
            Some(_) => Err(
                "A recorded program has no tasks of ours: only its threads, from the kernel".into(),
            ),
            // Out of every task recorded: a long run keeps only its latest
            // ones, but its totals count them all.
            None => {
                let done = s.metrics.tasks_ok + s.metrics.tasks_failed;
                let planned = s.rec.config.planned_tasks();
                Ok(if s.rec.is_running() && planned > 0 {
                    format!(
                        "{} ok of {done} done, {planned} planned",
                        s.metrics.tasks_ok
                    )
                } else {
                    format!("{} ok of {done}", s.metrics.tasks_ok)
                })
            }
        },
    },
    Figure {
        name: "task CPU time",
        definition: "Where each task's CPU time (hover a task) comes from. With the exact perf capture: the thread's running slices inside the task, \
                     summed after the run, so the worker reads no clock. Otherwise: the thread's CPU clock read by the worker before and after each task (~0.6 µs a read).",
        value: |s| match &s.rec.program {
            Some(_) => Err("A recorded program has no tasks of ours".into()),
            None => Ok(s.rec.task_cpu.label().into()),
        },
    },
    Figure {
        name: "speedup",
        definition: "wall(baseline) / wall(this run). The baseline is a finished run of the same workload, tasks and task duration with fewer cores, or fewer threads on the same cores. \
                     \"From parallelism\": the baseline used fewer cores; \"from concurrency\": the same cores, fewer threads.",
        value: |s| match s.speedup {
            Ok((x, base)) => Ok(format!(
                "{x:.2}× from {} (vs #{})",
                base.gain.name(),
                base.index + 1
            )),
            Err(why) => Err(why.why().into()),
        },
    },
    Figure {
        name: "efficiency",
        definition: "speedup from one core / cores used (the distinct cores of the placement, or the allowed cores when unpinned, at most one per thread): \
                     1.0 means every added core paid off in full.",
        value: |s| {
            s.efficiency()
                .map(|(e, x)| format!("{e:.2} ({x:.2}× ÷ {} cores)", s.cores_used))
        },
    },
    Figure {
        name: "capture's CPU",
        definition: "CPU time of the perf capture's own thread: reading the kernel's switch records and building the slices from them. \
                     It is what watching cost this process beside the run; the kernel's work at each switch lands in the workers' CPU time.",
        value: |s| match s.rec.sched.as_ref().and_then(|r| r.capture_cpu_ns) {
            Some(ns) => Ok(human_ns(ns)),
            None => Err("only the perf capture measures its own thread \
                         (and files saved before it did not keep it)"
                .into()),
        },
    },
    Figure {
        name: "perf events",
        definition: "The perf events each of the run's threads carried for the capture. The kernel walks them all at each of the \
                     thread's switches, so that work, in the workers' CPU time, grows with them: 1 where each worker opened its own \
                     (no more workers than cores watched), else one per core watched, inherited.",
        value: |s| match s.rec.sched.as_ref().and_then(|r| r.events_per_thread) {
            Some(n) => Ok(format!("{n} per thread")),
            None => Err("only the perf capture carries events \
                         (and files saved before it did not say how many)"
                .into()),
        },
    },
];

/// Draws the figures of the shown runs side by side.
pub fn ui(ui: &mut Ui, history: &History) {
    ui.heading("Figures");
    let shown: Vec<(usize, Shown)> = history
        .shown()
        .into_iter()
        .filter_map(|i| Some((i, Shown::new(history, i)?)))
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
                    match (figure.value)(s) {
                        Ok(value) => ui.label(value).on_hover_text(figure.definition),
                        Err(why) => ui.label("—").on_hover_text(format!(
                            "No {}: {why}.\n\n{}",
                            figure.name, figure.definition
                        )),
                    };
                }
                ui.end_row();
            }
        });
    for (i, s) in &shown {
        let dropped = history.get(*i).map_or(0, |e| e.timeline.dropped());
        let prefix = if shown.len() > 1 {
            format!("#{}: ", i + 1)
        } else {
            String::new()
        };
        capture_ui(ui, &prefix, s.rec, dropped);
        machine_ui(ui, &prefix, s.rec);
    }
}

/// Which scheduler source was active, what it could not see, and what failed.
fn capture_ui(ui: &mut Ui, prefix: &str, rec: &Recording, dropped: u64) {
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
    if let Some(line) = rec.others_line() {
        ui.label(line).on_hover_text(
            "System-wide capture: what the kernel ran on the run's cores besides its threads (the gaps in the core lanes)",
        );
    }
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
    if dropped > 0 {
        ui.label(
            RichText::new(format!(
                "{dropped} spans over the store's cap were not drawn"
            ))
            .color(palette::WARNING),
        );
    }
    for why in &rec.failures {
        // Plain words: the bundled fonts have no "⚠" (it drew as a box).
        ui.label(RichText::new(format!("failure: {why}")).color(palette::WARNING));
    }
}

/// The machine the run ran on: its cores in the header, every fact (each
/// with why it matters in its tooltip) wrapped to the panel's width below.
/// Closed at first, so the export buttons under it stay in view.
fn machine_ui(ui: &mut Ui, prefix: &str, rec: &Recording) {
    let Some(environment) = &rec.environment else {
        return;
    };
    let items = environment.items();
    let cores = items
        .iter()
        .find(|i| i.text.contains(" logical"))
        .map_or(String::new(), |i| format!(": {}", i.text));
    ui.add_space(4.0);
    egui::CollapsingHeader::new(format!("{prefix}Machine{cores}"))
        .id_salt(("machine", prefix))
        .show(ui, |ui| {
            ui.horizontal_wrapped(|ui| {
                ui.spacing_mut().item_spacing.x = 0.0;
                for (n, item) in items.into_iter().enumerate() {
                    if n > 0 {
                        ui.label(RichText::new(" · ").small().weak());
                    }
                    ui.label(RichText::new(item.text).small())
                        .on_hover_text(item.why);
                }
            });
        })
        .header_response
        .on_hover_text(
            "What the run ran on, read at its start and saved with the session: judge the figures against it",
        );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::RunConfig;
    use crate::telemetry::events::{RunEvent, TaskRecord};
    use crate::topology::Topology;

    fn tasks_figure(rec: &Recording) -> String {
        let metrics = rec.metrics();
        let shown = Shown {
            rec,
            metrics: &metrics,
            speedup: Err(NoSpeedup::Running),
            cores_used: 1,
        };
        let tasks = FIGURES.iter().find(|f| f.name == "tasks").unwrap();
        (tasks.value)(&shown).unwrap()
    }

    #[test]
    fn the_tasks_figure_counts_every_task_recorded_and_says_what_is_planned_while_running() {
        let config = RunConfig {
            tasks: 6,
            ..RunConfig::defaults(Topology::get())
        };
        let mut rec = Recording::new(config);
        let task = |id: u32, ok: bool| TaskRecord {
            id,
            thread: 0,
            start_ns: u64::from(id) * 10,
            end_ns: u64::from(id) * 10 + 5,
            core_at_start: 0,
            core_at_end: 0,
            cpu_ns: 5,
            ok,
        };
        rec.ingest(RunEvent::Tasks(vec![
            task(0, true),
            task(1, false),
            task(2, true),
        ]));
        assert_eq!(tasks_figure(&rec), "2 ok of 3 done, 6 planned");
        rec.ingest(RunEvent::Finished {
            wall_ns: 100,
            cancelled: true,
        });
        // A long run keeps only its latest tasks; its totals still count them all.
        rec.tasks.drain(..2);
        assert_eq!(tasks_figure(&rec), "2 ok of 3");
    }
}
