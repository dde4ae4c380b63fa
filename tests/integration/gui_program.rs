//! The "Record a program" source in the window: a command launched, and a
//! running process attached from the list, each recorded into the history.

use std::time::{Duration, Instant};

use corelanes::gui::App;
use corelanes::run::{Placement, RunStatus};
use corelanes::telemetry::sched::SchedMode;
use corelanes::workload::WorkloadKind::{Cpu, Io};
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

use super::gui::{app_harness, type_into};
use super::{config, cores, exclusive};

fn open_section(harness: &mut Harness<'_, App>) {
    harness.get_by_label("Record a program").click();
    harness.run_steps(3);
}

/// Steps frames until the shown recording has ended.
fn until_recorded(harness: &mut Harness<'_, App>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    harness.run_steps(2);
    while harness.state().is_busy() {
        assert!(Instant::now() < deadline, "the recording never ended");
        std::thread::sleep(Duration::from_millis(10));
        harness.step();
    }
    harness.run_steps(2);
}

#[test]
fn a_command_typed_in_the_window_is_recorded_into_the_history() {
    let _machine = exclusive();
    let (core, _) = cores();
    let mut harness = app_harness(App::new(&config(Io, 1, 1, 10.0, Placement::OneCore(core))));
    open_section(&mut harness);
    type_into(&mut harness, "Program: command", "sleep 0.3");
    harness.get_by_label("Record").click();
    until_recorded(&mut harness);
    let rec = harness.state().shown().expect("the recording is shown");
    let program = rec.program.as_ref().expect("a program's recording");
    assert_eq!(program.command, "sh -c sleep 0.3", "{program:?}");
    assert_eq!(program.exit_status, Some(0));
    assert_eq!(rec.status, RunStatus::Finished, "{:?}", rec.failures);
    assert!(
        rec.threads.iter().any(|t| t.name == "sleep"),
        "{:?}",
        rec.threads
    );
    harness.get_by_label_contains("sh -c sleep 0.3 · pid");
}

#[test]
fn a_process_picked_from_the_list_is_attached_until_stop() {
    let _machine = exclusive();
    let (core, _) = cores();
    let mut child = std::process::Command::new("sleep")
        .arg("120")
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut harness = app_harness(App::new(&config(Io, 1, 1, 10.0, Placement::OneCore(core))));
    open_section(&mut harness);
    type_into(&mut harness, "Program: filter", &pid.to_string());
    harness.get_by_label("sleep").click();
    harness.run_steps(2);
    harness.get_by_label("Attach").click();
    harness.run_steps(20);
    assert!(harness.state().is_busy(), "attached and recording");
    harness.key_press(egui::Key::Escape);
    until_recorded(&mut harness);
    let _ = child.kill();
    let _ = child.wait();
    let rec = harness.state().shown().expect("the recording is shown");
    let program = rec.program.as_ref().expect("a program's recording");
    assert!(program.attached && program.pid == pid as i32, "{program:?}");
    assert_eq!(rec.threads.len(), 1, "{:?}", rec.threads);
}

/// Runs `run` from the window with "Name other programs on the cores"
/// ticked, beside a busy loop (`busyloop`) pinned to the first core.
fn beside_a_busy_loop(
    mut run: corelanes::run::RunConfig,
) -> (Harness<'static, App>, super::system_wide::BusyLoop) {
    let dir = tempfile::tempdir().unwrap();
    let busy = super::system_wide::BusyLoop::start(dir.path(), cores().0);
    run.sched = SchedMode::Auto;
    let mut harness = app_harness(App::new(&run));
    harness
        .get_by_label("Name other programs on the cores")
        .click();
    harness.run_steps(2);
    harness.get_by_label("Run").click();
    until_recorded(&mut harness);
    (harness, busy)
}

#[test]
fn the_checkbox_names_other_programs_on_the_cores_or_says_why_it_cannot() {
    let _machine = exclusive();
    let (core, _) = cores();
    let (harness, _busy) = beside_a_busy_loop(config(Cpu, 1, 2, 100.0, Placement::OneCore(core)));
    let allowed = corelanes::telemetry::sched::check_system_wide(SchedMode::Auto, &[core]).is_ok();
    if allowed {
        // Named among the others (beside other load, not always first).
        let line = harness
            .get_by_label_contains(&format!("other programs on the run's cores ({core}):"))
            .accesskit_node()
            .value()
            .unwrap_or_default();
        assert!(line.contains(" busyloop "), "{line}");
    } else {
        // Where it is not allowed, the run says why, in the window.
        let rec = harness.state().shown().expect("the run is shown");
        assert!(
            rec.failures.iter().any(|f| f.contains("CAP_PERFMON")),
            "{:?}",
            rec.failures
        );
        harness.get_by_label_contains("CAP_PERFMON");
    }
}

#[test]
fn a_system_wide_run_draws_the_other_programs_in_its_core_lanes_by_name() {
    let _machine = exclusive();
    let (core, _) = cores();
    let refusal = corelanes::telemetry::sched::check_system_wide(SchedMode::Auto, &[core]).err();
    if !corelanes::telemetry::sched::perf_checks_apply(refusal.map(|e| e.to_string()).as_deref()) {
        return;
    }
    // One thread sleeping on the busy loop's core: the loop runs there
    // whenever the thread does not (and other programs let it).
    let (mut harness, _busy) =
        beside_a_busy_loop(config(Io, 1, 3, 100.0, Placement::OneCore(core)));
    let entry = harness.state().shown_entry().expect("the run is shown");
    let lane = entry
        .timeline
        .others
        .get(core)
        .expect("a lane of other programs");
    let report = entry.rec.sched.as_ref().unwrap();
    // Its longest span on the core (beside other load it shares the core).
    let longest = (0..lane.len())
        .map(|i| lane.get(i))
        .filter(|s| report.others[s.item as usize].name == "busyloop")
        .max_by_key(|s| s.end_ns - s.start_ns)
        .expect("the busy loop is drawn on its core");
    // Zoomed so that it spans half the lanes' width: wide enough to be named.
    let (start, len) = (
        longest.start_ns as f64,
        (longest.end_ns - longest.start_ns) as f64,
    );
    harness
        .state_mut()
        .timeline
        .show_range([start - len / 2.0, start + len * 1.5]);
    harness.run_steps(2);
    let named = &harness.state().timeline.named_programs;
    assert!(named.iter().any(|n| n == "busyloop"), "{named:?}");
}
