//! The "Program" source: record any program of this user instead of a
//! built-in workload, launched from a command line or picked from the
//! running processes. The recording goes through [`crate::record`] and lands
//! in the history like a run.

use std::ffi::OsString;
use std::time::{Duration, Instant};

use eframe::egui;
use egui::{RichText, Ui};

use super::controls::Action;
use crate::record::{Program, RecordConfig};
use crate::telemetry::sched::SchedMode;

/// How often the process list refreshes while it is shown: each refresh
/// gives the CPU use since the previous one.
const REFRESH: Duration = Duration::from_secs(2);
/// Rows shown: the busiest processes first.
const ROWS: usize = 12;

/// A process the user may attach to.
struct Row {
    pid: i32,
    name: String,
    threads: usize,
    cpu: f32,
}

#[derive(Default)]
pub struct ProgramView {
    command: String,
    filter: String,
    chosen: Option<i32>,
    system: Option<sysinfo::System>,
    refreshed: Option<Instant>,
    rows: Vec<Row>,
    /// Why the list cannot be shown, if it cannot.
    trouble: Option<String>,
}

impl ProgramView {
    pub fn ui(&mut self, ui: &mut Ui, busy: bool) -> Option<Action> {
        let mut action = None;
        ui.label(
            RichText::new("Record how any program of yours uses the cores: its threads' lanes, from the kernel.")
                .weak(),
        );
        ui.horizontal(|ui| {
            let ready = !busy && !self.command.trim().is_empty();
            let record = ui
                .add_enabled(ready, egui::Button::new("Record"))
                .on_hover_text("Start the command (run by sh -c) with capture on from its first instruction; Stop or its exit ends the recording")
                .on_disabled_hover_text(why_not(busy, "Type a command line first"))
                .clicked();
            let field = egui::TextEdit::singleline(&mut self.command)
                .hint_text("command, e.g. xz -T2 -k big.file")
                .desired_width(ui.available_width());
            ui.add(field).accessible_name("Program: command");
            if record && ready {
                let argv = ["sh", "-c", self.command.trim()].map(OsString::from).to_vec();
                action = Some(record_action(Program::Launch(argv)));
            }
        });
        self.refresh(ui.ctx());
        if let Some(why) = &self.trouble {
            ui.label(RichText::new(why).color(super::palette::WARNING));
            return action;
        }
        ui.horizontal(|ui| {
            let attach = ui
                .add_enabled(!busy && self.chosen.is_some(), egui::Button::new("Attach"))
                .on_hover_text("Record the chosen process's threads, and those it starts, until Stop or until it exits")
                .on_disabled_hover_text(why_not(busy, "Choose a process in the list first"))
                .clicked();
            let field = egui::TextEdit::singleline(&mut self.filter)
                .hint_text("filter by name or PID")
                .desired_width(ui.available_width());
            ui.add(field).accessible_name("Program: filter");
            if attach && let Some(pid) = self.chosen {
                action = Some(record_action(Program::Attach(pid)));
            }
        });
        let filter = self.filter.trim().to_lowercase();
        let shown = self
            .rows
            .iter()
            .filter(|r| {
                filter.is_empty()
                    || r.name.to_lowercase().contains(&filter)
                    || r.pid.to_string() == filter
            })
            .take(ROWS);
        egui::Grid::new("processes").striped(true).show(ui, |ui| {
            ui.label(RichText::new("process").weak());
            ui.label(RichText::new("PID").weak());
            ui.label(RichText::new("threads").weak());
            ui.label(RichText::new("CPU").weak())
                .on_hover_text("Share of one core over the last 2 s (100 % = one core busy)");
            ui.end_row();
            for row in shown {
                let chosen = self.chosen == Some(row.pid);
                if ui.selectable_label(chosen, &row.name).clicked() {
                    self.chosen = if chosen { None } else { Some(row.pid) };
                }
                ui.label(row.pid.to_string());
                ui.label(row.threads.to_string());
                ui.label(format!("{:.0} %", row.cpu));
                ui.end_row();
            }
        });
        action
    }

    /// Re-reads this user's processes every [`REFRESH`] while shown.
    fn refresh(&mut self, ctx: &egui::Context) {
        if self.refreshed.is_some_and(|t| t.elapsed() < REFRESH) {
            return;
        }
        self.refreshed = Some(Instant::now());
        ctx.request_repaint_after(REFRESH);
        let system = match &mut self.system {
            Some(system) => system,
            None => match sysinfo::System::new() {
                Ok(system) => self.system.insert(system),
                Err(e) => {
                    self.trouble = Some(format!("cannot list the processes: {e}"));
                    return;
                }
            },
        };
        let kind = sysinfo::ProcessRefreshKind::nothing()
            .with_cpu()
            .with_tasks()
            .with_user(sysinfo::UpdateKind::OnlyIfNotSet);
        system.refresh_processes_specifics(sysinfo::ProcessesToUpdate::All, true, kind);
        let me = sysinfo::get_current_pid().ok();
        let uid = me.and_then(|pid| system.process(pid)?.user_id().cloned());
        let mut rows: Vec<Row> = system
            .processes()
            .values()
            // Only the user's own: perf may record nothing else unprivileged.
            .filter(|p| {
                uid.is_some()
                    && p.user_id() == uid.as_ref()
                    && Some(p.pid()) != me
                    && p.thread_kind().is_none()
            })
            .map(|p| Row {
                pid: p.pid().as_u32() as i32,
                name: p.name().to_string_lossy().into_owned(),
                threads: p.tasks().map_or(1, std::collections::HashSet::len),
                cpu: p.cpu_usage(),
            })
            .collect();
        rows.sort_by(|a, b| b.cpu.total_cmp(&a.cpu).then(a.pid.cmp(&b.pid)));
        self.rows = rows;
    }
}

/// Why a start button is disabled: a run in progress, or `missing`.
fn why_not(busy: bool, missing: &'static str) -> &'static str {
    if busy {
        "Wait for the run in progress, or stop it"
    } else {
        missing
    }
}

fn record_action(program: Program) -> Action {
    Action::Record(RecordConfig {
        program,
        duration: None,
        sched: SchedMode::Auto,
        // The app sets it from the run controls' checkbox.
        system_wide: false,
    })
}
