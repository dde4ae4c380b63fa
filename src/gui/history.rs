//! Every run of the session, kept whole; which one is shown, and which one it
//! is compared with.

use std::sync::Arc;

use eframe::egui;
use egui::{RichText, Ui};

use crate::metrics::{Metrics, human_ns};
use crate::run::{Placement, Recording, RunStatus};
use crate::telemetry::events::{InFlight, RunEvent};

/// One run and its figures. Finished runs are shared (`Arc`) so that an
/// export can write one on another thread without copying it.
pub struct Entry {
    pub rec: Arc<Recording>,
    pub metrics: Metrics,
}

impl Entry {
    /// "#3 cpu · 2 threads · one core (0)": what lists, legends and captions call a run.
    pub fn name(&self, index: usize) -> String {
        format!("#{} {}", index + 1, self.rec.title())
    }
}

#[derive(Default)]
pub struct History {
    runs: Vec<Entry>,
    /// The run shown in the timeline and the figures.
    pub selected: Option<usize>,
    /// A second run stacked under the selected one, on the same time scale.
    pub compare: Option<usize>,
}

impl History {
    /// Adds a run that is about to start and shows it.
    pub fn push(&mut self, rec: Recording) -> usize {
        let metrics = rec.metrics();
        self.runs.push(Entry {
            rec: Arc::new(rec),
            metrics,
        });
        let index = self.runs.len() - 1;
        self.selected = Some(index);
        index
    }

    /// Feeds a run's new events into its recording.
    pub fn ingest(&mut self, index: usize, events: impl IntoIterator<Item = RunEvent>) {
        let Some(entry) = self.runs.get_mut(index) else {
            return;
        };
        let mut events = events.into_iter().peekable();
        if events.peek().is_none() {
            return;
        }
        // Copies only if an export still holds this (running) recording.
        let rec = Arc::make_mut(&mut entry.rec);
        for event in events {
            rec.ingest(event);
        }
        entry.metrics = rec.metrics();
    }

    /// Notes what the running run looks like now (its unfinished tasks, the
    /// time), so the timeline and figures move on between events.
    pub fn observe(&mut self, index: usize, in_flight: Vec<Option<InFlight>>) {
        let Some(entry) = self.runs.get_mut(index) else {
            return;
        };
        let rec = Arc::make_mut(&mut entry.rec);
        rec.observe(crate::sys::monotonic_ns(), in_flight);
        entry.metrics = rec.metrics();
    }

    pub fn get(&self, index: usize) -> Option<&Entry> {
        self.runs.get(index)
    }

    /// The recording of the selected run.
    pub fn selected_rec(&self) -> Option<&Recording> {
        self.selected.and_then(|i| self.get(i)).map(|e| &*e.rec)
    }

    pub fn len(&self) -> usize {
        self.runs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// The runs to draw: the selected one, then the compared one if any.
    pub fn shown(&self) -> Vec<usize> {
        let mut shown: Vec<usize> = self.selected.into_iter().collect();
        shown.extend(self.compare.filter(|&c| Some(c) != self.selected));
        shown
    }

    /// The latest other finished run with the same work done by one thread or
    /// on one core: the reference for a speedup.
    pub fn baseline_for(&self, index: usize) -> Option<usize> {
        let this = &self.runs.get(index)?.rec.config;
        self.runs.iter().enumerate().rev().find_map(|(i, entry)| {
            let c = &entry.rec.config;
            let same_work =
                c.workload == this.workload && c.tasks == this.tasks && c.task_ms == this.task_ms;
            let serial = c.threads == 1 || on_one_core(&c.placement);
            (i != index && same_work && serial && entry.rec.status == RunStatus::Finished)
                .then_some(i)
        })
    }

    pub fn ui(&mut self, ui: &mut Ui) {
        ui.heading("Runs");
        if self.runs.is_empty() {
            ui.label("No runs yet.");
            return;
        }
        if self.runs.len() > 1 {
            ui.label(
                RichText::new("Click a run to show it; \"compare\" stacks a second one under it.")
                    .weak(),
            );
        }
        egui::ScrollArea::vertical()
            .id_salt("history")
            .max_height(200.0)
            .show(ui, |ui| {
                for i in (0..self.runs.len()).rev() {
                    let entry = &self.runs[i];
                    let status = match entry.rec.status {
                        RunStatus::Running => "running".to_string(),
                        RunStatus::Finished => human_ns(entry.metrics.wall_ns),
                        RunStatus::Cancelled => "stopped".to_string(),
                    };
                    let text = format!("{} — {status}", entry.name(i));
                    ui.horizontal(|ui| {
                        if ui
                            .selectable_label(self.selected == Some(i), text)
                            .clicked()
                        {
                            self.selected = Some(i);
                        }
                        let comparing = self.compare == Some(i);
                        let compare = ui
                            .selectable_label(comparing, "compare")
                            .on_hover_text(format!("Stack run #{} under the shown run", i + 1));
                        if compare.clicked() {
                            self.compare = if comparing { None } else { Some(i) };
                        }
                    });
                }
            });
    }
}

/// Whether every thread of this placement is pinned to the same core.
fn on_one_core(placement: &Placement) -> bool {
    match placement {
        Placement::OneCore(_) => true,
        Placement::List(cores) => cores.windows(2).all(|w| w[0] == w[1]),
        Placement::Spread | Placement::Unpinned => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::RunConfig;
    use crate::topology::Topology;

    fn finished(threads: usize, placement: Placement, tasks: usize) -> Recording {
        let config = RunConfig {
            threads,
            placement,
            tasks,
            ..RunConfig::defaults(Topology::get())
        };
        Recording {
            status: RunStatus::Finished,
            ..Recording::new(config)
        }
    }

    #[test]
    fn speedup_baseline_is_the_latest_one_core_run_of_the_same_work() {
        let mut history = History::default();
        let one_core = history.push(finished(2, Placement::OneCore(0), 8));
        let other_work = history.push(finished(1, Placement::Spread, 16));
        let spread = history.push(finished(2, Placement::Spread, 8));
        assert_eq!(history.baseline_for(spread), Some(one_core));
        assert_eq!(
            history.baseline_for(one_core),
            None,
            "no other run of its work is serial"
        );
        assert_eq!(history.baseline_for(other_work), None);
        let listed = history.push(finished(2, Placement::List(vec![1, 1]), 8));
        assert_eq!(
            history.baseline_for(spread),
            Some(listed),
            "the latest serial run wins"
        );
        assert_eq!(history.shown(), vec![listed]);
        history.compare = Some(spread);
        assert_eq!(history.shown(), vec![listed, spread]);
    }
}
