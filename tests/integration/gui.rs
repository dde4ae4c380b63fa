//! The app driven like a user drives it, without a window or a GPU: controls
//! set, buttons clicked by their labels, real runs stepped to the end.

use std::time::{Duration, Instant};

use clap::Parser;
use corelanes::gui::{App, Controls, PlacementChoice};
use corelanes::metrics::speedup;
use corelanes::run::{Placement, RunConfig, RunStatus};
use corelanes::telemetry::sched::{SchedSource, SliceState, perf_checks_apply};
use corelanes::timeline::{Class, state_class};
use corelanes::topology::Topology;
use corelanes::workload::WorkloadKind::{Amdahl, Cpu, Io};
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

use super::{config, cores, exclusive, words};

fn harness(config: &RunConfig) -> Harness<'static, App> {
    app_harness(App::new(config))
}

pub(super) fn app_harness(app: App) -> Harness<'static, App> {
    sized_harness(app, egui::vec2(1500.0, 940.0))
}

fn sized_harness(app: App, size: egui::Vec2) -> Harness<'static, App> {
    Harness::builder()
        .with_size(size)
        .with_step_dt(1.0 / 60.0)
        .build_ui_state(
            |ui, app: &mut App| {
                app.poll(ui.ctx());
                app.show(ui);
            },
            app,
        )
}

/// Steps frames (as a window would, ~100 per second) until no run is in progress.
fn step_until_idle(harness: &mut Harness<'_, App>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    harness.step();
    while harness.state().is_busy() {
        assert!(
            Instant::now() < deadline,
            "the run did not finish within a minute"
        );
        std::thread::sleep(Duration::from_millis(10));
        harness.step();
    }
    harness.run_steps(2);
}

/// Sets the controls to `config` and clicks Run.
fn click_run(harness: &mut Harness<'_, App>, config: &RunConfig) {
    harness.state_mut().controls = Controls::from_config(config, Topology::get());
    harness.run_steps(1);
    harness.get_by_label("Run").click();
    harness.run_steps(2);
}

/// Runs `config` from the controls to its end; returns its wall time.
pub(super) fn run_to_end(harness: &mut Harness<'_, App>, config: &RunConfig) -> u64 {
    click_run(harness, config);
    step_until_idle(harness);
    let rec = harness.state().shown().expect("the run is shown");
    assert_eq!(rec.status, RunStatus::Finished, "{:?}", rec.failures);
    rec.wall_ns
}

/// Whether any figure shows a speedup.
fn shows_a_speedup(harness: &Harness<'_, App>) -> bool {
    harness.query_all_by_label_contains("×").next().is_some()
}

/// Rests the pointer on the first figure that reads "—" (the table goes down
/// the rows, so the speedup's comes before the efficiency's) for a second of
/// frames: past egui's tooltip delay, so its tooltip shows.
fn hover_first_dash(harness: &mut Harness<'_, App>) {
    let centre = harness
        .get_all_by_label("—")
        .next()
        .unwrap()
        .rect()
        .center();
    harness.hover_at(centre);
    harness.run_steps(60);
}

fn run_disabled(harness: &Harness<'_, App>) -> bool {
    harness.get_by_label("Run").accesskit_node().is_disabled()
}

#[test]
fn clicking_run_records_a_real_run_and_shows_its_figures() {
    let _machine = exclusive();
    let (core, _) = cores();
    let mut harness = harness(&config(Cpu, 2, 4, 20.0, Placement::OneCore(core)));
    assert!(
        harness.query_by_label("parallelism").is_none(),
        "no figures before a run"
    );

    harness.get_by_label("Run").click();
    step_until_idle(&mut harness);

    let rec = harness.state().shown().expect("the run is shown");
    assert_eq!(rec.status, RunStatus::Finished);
    assert!(rec.failures.is_empty(), "{:?}", rec.failures);
    assert_eq!(rec.tasks.len(), 4);
    let lanes = &harness.state().shown_entry().expect("shown").timeline;
    let stored: usize = lanes
        .threads
        .iter()
        .map(corelanes::timeline::Lane::len)
        .sum();
    assert_eq!(stored, 4, "every task is on its thread's lane");
    assert_eq!(lanes.threads.len(), 2);
    assert!(rec.tasks.iter().all(|t| t.core_at_start as usize == core));
    assert!(
        harness.state().timeline.rect.is_some(),
        "the timeline was drawn"
    );
    // The figures name each measure, with the run's column beside them.
    for name in ["wall", "parallelism", "concurrency", "speedup"] {
        harness.get_by_label(name);
    }
    harness.get_by_label_contains("4 ok of 4");
    harness.get_by_label_contains("scheduler data: off");

    // Ctrl+scroll (a zoom gesture) over the timeline zooms in; double-click fits again.
    let centre = harness.state().timeline.rect.unwrap().center();
    harness.hover_at(centre);
    harness.event(egui::Event::Zoom(2.0));
    harness.run_steps(2);
    let [t0, t1] = harness.state().timeline.visible_range().expect("zoomed in");
    let wall = harness.state().shown().unwrap().wall_ns as f64;
    assert!(t1 - t0 < wall * 0.6, "{t0}..{t1} of a {wall} ns run");
    // A second apart from the click on Run, lest the pair count as a triple click.
    harness.run_steps(60);
    for pressed in [true, false, true, false] {
        harness.event(egui::Event::PointerButton {
            pos: centre,
            button: egui::PointerButton::Primary,
            pressed,
            modifiers: egui::Modifiers::NONE,
        });
    }
    harness.run_steps(2);
    assert_eq!(
        harness.state().timeline.visible_range(),
        None,
        "double-click fits"
    );
}

#[test]
fn the_machine_block_fits_the_figures_panel_and_says_why_each_fact_matters() {
    let _machine = exclusive();
    let run = config(Cpu, 1, 2, 1.0, Placement::Spread);
    let size = egui::vec2(1280.0, 800.0);
    let mut harness = sized_harness(App::new(&run), size);
    assert!(
        harness.query_by_label_contains("Machine").is_none(),
        "none before a run"
    );
    run_to_end(&mut harness, &run);
    let env = harness.state().shown().unwrap().environment.clone();
    let items = env.expect("the run recorded its machine").items();
    let cores = items.iter().find(|i| i.text.contains(" logical")).unwrap();
    // Closed at first, its header names the cores; open, it lists every fact.
    let header = format!("Machine: {}", cores.text);
    assert!(harness.query_by_label(&items[0].text).is_none(), "closed");
    let left = harness.get_by_label(&header).rect().min.x;
    harness.get_by_label(&header).click();
    harness.run_steps(10);
    assert!(left > size.x - 400.0, "in the right-hand panel, at {left}");
    for item in &items {
        let rect = harness.get_by_label(&item.text).rect();
        assert!(
            rect.min.x >= left - 1.0 && rect.max.x <= size.x,
            "{} at {rect:?} leaves the panel",
            item.text
        );
    }
    harness.get_by_label(&cores.text).hover();
    harness.run_steps(60);
    harness.get_by_label_contains("siblings sharing one physical core");
}

#[test]
fn invalid_controls_disable_run_and_say_why() {
    let (core, _) = cores();
    // A core list shorter than the thread count.
    let mut harness = harness(&config(Cpu, 2, 4, 20.0, Placement::List(vec![core])));
    harness.run_steps(2);
    assert!(run_disabled(&harness));
    harness.get_by_label_contains("1 entries but there are 2 threads");

    // Zero threads.
    harness.state_mut().controls.threads.set("0");
    harness.state_mut().controls.choice = PlacementChoice::Spread;
    harness.run_steps(2);
    assert!(run_disabled(&harness));
    harness.get_by_label_contains("thread count 0 is out of range");

    // Space must not start an invalid run either.
    harness.key_press(egui::Key::Space);
    harness.run_steps(2);
    assert!(!harness.state().is_busy());
    assert!(harness.state().history.is_empty());
}

#[test]
fn escape_stops_a_run_and_keeps_what_it_recorded() {
    let _machine = exclusive();
    let (core, _) = cores();
    let mut harness = harness(&config(Io, 2, 40, 100.0, Placement::OneCore(core)));
    harness.key_press(egui::Key::Space);
    harness.run_steps(2);
    assert!(harness.state().is_busy(), "Space started the run");
    std::thread::sleep(Duration::from_millis(250));
    harness.key_press(egui::Key::Escape);
    let t0 = Instant::now();
    step_until_idle(&mut harness);
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "Stop took {:?}",
        t0.elapsed()
    );
    let rec = harness.state().shown().expect("the stopped run is kept");
    assert_eq!(rec.status, RunStatus::Cancelled);
    assert!(
        !rec.tasks.is_empty() && rec.tasks.len() < 40,
        "{} tasks",
        rec.tasks.len()
    );
    harness.get_by_label_contains("stopped");
}

#[test]
fn run_both_compares_one_core_with_all_cores_and_reports_speedup() {
    let _machine = exclusive();
    let mut harness = harness(&config(Cpu, 2, 4, 20.0, Placement::Spread));
    harness.get_by_label("Run both").click();
    step_until_idle(&mut harness);
    let app = harness.state();
    assert_eq!(app.history.len(), 2);
    assert_eq!(
        (app.history.selected, app.history.compare),
        (Some(0), Some(1))
    );
    let [concurrency, parallelism] = [0, 1].map(|i| &app.history.get(i).unwrap().rec);
    assert!(matches!(
        concurrency.config.placement,
        Placement::OneCore(_)
    ));
    assert_eq!(parallelism.config.placement, Placement::Spread);
    assert!(concurrency.tasks.len() == 4 && parallelism.tasks.len() == 4);
    // The parallel run's speedup is measured against the one-core run.
    harness.get_by_label_contains("vs #1");
    assert!(harness.query_all_by_label("run #2").count() >= 1);
}

#[test]
fn a_run_in_progress_or_stopped_gets_no_speedup() {
    let _machine = exclusive();
    let (core, _) = cores();
    // Sleeping tasks: long enough to stop one, without taking the CPU.
    let baseline = config(Io, 2, 2, 1000.0, Placement::OneCore(core));
    let mut harness = harness(&baseline);
    run_to_end(&mut harness, &baseline);

    // The same work on more cores: it would be compared with run #1 if it ended.
    click_run(&mut harness, &config(Io, 2, 2, 1000.0, Placement::Spread));
    assert!(harness.state().shown().unwrap().is_running());
    assert!(
        !shows_a_speedup(&harness),
        "a run in progress has no speedup"
    );
    harness.get_by_label("Stop").click();
    step_until_idle(&mut harness);
    let rec = harness.state().shown().unwrap();
    assert_eq!(rec.status, RunStatus::Cancelled);
    assert_eq!(harness.state().history.len(), 2);
    assert!(!shows_a_speedup(&harness), "a stopped run has no speedup");
    hover_first_dash(&mut harness);
    harness.get_by_label_contains("No speedup: stopped before it finished");
}

#[test]
fn speedup_needs_fewer_threads_or_cores_and_names_what_changed() {
    let _machine = exclusive();
    let (core, _) = cores();
    let one_core = |threads| config(Io, threads, 4, 30.0, Placement::OneCore(core));
    let mut harness = harness(&one_core(2));
    run_to_end(&mut harness, &one_core(2));
    run_to_end(&mut harness, &one_core(2));
    assert!(
        !shows_a_speedup(&harness),
        "the same threads on the same core: nothing to compare"
    );
    hover_first_dash(&mut harness);
    harness.get_by_label_contains("no finished run of the same work with fewer threads");

    let one = run_to_end(&mut harness, &one_core(1));
    let two = run_to_end(&mut harness, &one_core(2));
    // Two sleeping threads on one core: the waits overlap.
    harness.get_by_label(&format!(
        "{:.2}× from concurrency (vs #3)",
        speedup(one, two)
    ));
    hover_first_dash(&mut harness);
    harness.get_by_label_contains("efficiency is not defined for one core");
}

#[test]
fn efficiency_divides_the_speedup_by_the_cores_used() {
    let _machine = exclusive();
    let (core, Some(_)) = cores() else {
        eprintln!("skipped: this process may use only one core");
        return;
    };
    let cpu = |threads, placement| config(Cpu, threads, 4, 20.0, placement);
    let mut harness = harness(&cpu(1, Placement::OneCore(core)));
    let one = run_to_end(&mut harness, &cpu(1, Placement::OneCore(core)));
    // Four threads, unpinned: they can use every allowed core, at most four.
    let four = run_to_end(&mut harness, &cpu(4, Placement::Unpinned));
    let cores = Topology::get().allowed.len().min(4);
    let x = speedup(one, four);
    harness.get_by_label(&format!("{x:.2}× from parallelism (vs #1)"));
    harness.get_by_label(&format!(
        "{:.2} ({x:.2}× ÷ {cores} cores)",
        x / cores as f64
    ));
}

/// Types `text` into the field labelled `label`, replacing what it held, as a
/// user does: click into it, select all, type.
pub(super) fn type_into(harness: &mut Harness<'_, App>, label: &str, text: &str) {
    harness.get_by_label(label).click();
    harness.run_steps(1);
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    harness.key_press(egui::Key::Backspace);
    harness.get_by_label(label).type_text(text);
    harness.run_steps(2);
}

/// A field's text, and the reason screen readers hear when it is marked invalid.
fn field_state(harness: &Harness<'_, App>, label: &str) -> (String, Option<String>) {
    let field = harness.get_by_label(label);
    let node = field.accesskit_node();
    let invalid = node.data().invalid().is_some();
    (
        node.value().unwrap_or_default(),
        invalid.then(|| node.description().unwrap_or_default()),
    )
}

#[test]
fn invalid_text_stays_visible_marked_and_explained() {
    let mut harness = harness(&config(Cpu, 2, 4, 20.0, Placement::Spread));
    harness.run_steps(2);
    assert_eq!(field_state(&harness, "Threads"), ("2".into(), None));
    let cases = [
        ("Threads", "abc", "thread count 'abc' is not a whole number"),
        (
            "Threads",
            "",
            "thread count is empty: type a positive whole number",
        ),
        (
            "Threads",
            "-5",
            "thread count -5 is negative: type a positive whole number",
        ),
        (
            "Threads",
            "0",
            "thread count 0 is out of range: use 1 to 1024 threads",
        ),
        ("Tasks", "2.5", "task count '2.5' is not a whole number"),
        ("Task duration", "-5", "task duration -5 ms is out of range"),
    ];
    for (label, typed, reason) in cases {
        type_into(&mut harness, label, typed);
        let (text, why) = field_state(&harness, label);
        assert_eq!(text, typed, "{label}: the text stays as typed");
        let why = why.unwrap_or_else(|| panic!("{label} '{typed}' is not marked invalid"));
        assert!(why.starts_with(reason), "{label} '{typed}': {why}");
        // The reason is shown under Run, which is disabled and says why.
        harness.get_by_label_contains(reason);
        assert!(run_disabled(&harness));
        type_into(&mut harness, label, "3");
        assert_eq!(
            field_state(&harness, label),
            ("3".into(), None),
            "corrected"
        );
    }
    // Two wrong fields are both marked, and both reasons are shown.
    type_into(&mut harness, "Threads", "x");
    type_into(&mut harness, "Tasks", "y");
    assert!(field_state(&harness, "Threads").1.is_some());
    assert!(field_state(&harness, "Tasks").1.is_some());
    harness.get_by_label("thread count 'x' is not a whole number");
    harness.get_by_label("task count 'y' is not a whole number");
    // Run's tooltip gives the first reason.
    harness.get_by_label("Run").hover();
    harness.run_steps(60);
    assert!(
        harness
            .query_all_by_label("thread count 'x' is not a whole number")
            .count()
            >= 2,
        "beside Run and in its tooltip"
    );
    assert!(harness.state().history.is_empty(), "nothing ran");
}

/// The custom grid's cores, read from its checked cells as a screen reader would.
fn grid_cores(harness: &Harness<'_, App>) -> Vec<usize> {
    let topo = Topology::get();
    (0..)
        .map_while(|thread| {
            (0..topo.system_cpus).find(|core| {
                harness
                    .query_by_label(&format!("worker-{thread} on core {core}"))
                    .is_some_and(|cell| {
                        cell.accesskit_node().toggled() == Some(egui::accesskit::Toggled::True)
                    })
            })
        })
        .collect()
}

#[test]
fn the_custom_grid_keeps_its_cores_when_the_thread_count_passes_through_0() {
    let (a, Some(b)) = cores() else {
        eprintln!("skipped: this process may use only one core");
        return;
    };
    let mut harness = harness(&config(Cpu, 2, 4, 20.0, Placement::Spread));
    harness.get_by_label("custom").click();
    harness.run_steps(2);
    assert_eq!(grid_cores(&harness), [a, b], "the spread placement first");
    // Swap them: choices the spread placement would not make.
    harness
        .get_by_label(&format!("worker-0 on core {b}"))
        .click();
    harness.run_steps(1);
    harness
        .get_by_label(&format!("worker-1 on core {a}"))
        .click();
    harness.run_steps(2);
    assert_eq!(grid_cores(&harness), [b, a]);

    for typed in ["1", "0", "", "abc"] {
        type_into(&mut harness, "Threads", typed);
    }
    assert!(run_disabled(&harness));
    // Away to another placement and back.
    harness.get_by_label("unpinned").click();
    harness.run_steps(1);
    harness.get_by_label("custom").click();
    harness.run_steps(1);
    type_into(&mut harness, "Threads", "3");
    let third = Topology::get().allowed[2 % Topology::get().allowed.len()];
    assert_eq!(
        grid_cores(&harness),
        [b, a, third],
        "the first two come back"
    );
    let valid = harness.state().controls.validate(Topology::get()).unwrap();
    assert_eq!(valid.config.placement, Placement::List(vec![b, a, third]));
}

#[test]
fn choosing_amdahl_moves_no_control() {
    let mut harness = harness(&config(Cpu, 2, 4, 20.0, Placement::Spread));
    harness.run_steps(2);
    let below = [
        "Scheduler capture",
        "one thread per core (spread)",
        "unpinned",
        "custom",
        "Run both",
        "Run",
        "Stop",
    ];
    let rects = |harness: &Harness<'_, App>| below.map(|label| harness.get_by_label(label).rect());
    let before = rects(&harness);
    let choose = |harness: &mut Harness<'_, App>, workload: &str| {
        harness.get_by_label("Workload").click();
        harness.run_steps(2);
        harness.get_by_label(workload).click();
        harness.run_steps(2);
    };
    let serial_enabled = |harness: &Harness<'_, App>| {
        !harness
            .get_by_label("Serial fraction")
            .accesskit_node()
            .is_disabled()
    };
    choose(&mut harness, "amdahl");
    assert_eq!(harness.state().controls.workload, Amdahl);
    assert_eq!(rects(&harness), before, "{below:?}");
    assert!(serial_enabled(&harness));
    choose(&mut harness, "cpu");
    assert_eq!(rects(&harness), before, "{below:?}");
    assert!(!serial_enabled(&harness), "laid out, disabled, for cpu");
}

/// Every disabled button in the window, by label, each with the tooltip it
/// shows once the pointer has rested on it (`None`: it shows none).
fn disabled_buttons_and_tooltips(harness: &mut Harness<'_, App>) -> Vec<(String, Option<String>)> {
    use egui::accesskit::Role;
    let disabled = |harness: &Harness<'_, App>| -> Vec<_> {
        harness
            .query_all_by_role(Role::Button)
            .filter(|b| b.accesskit_node().is_disabled())
            .map(|b| {
                (
                    b.accesskit_node().label().unwrap_or_default(),
                    b.rect().center(),
                )
            })
            .collect()
    };
    let count = disabled(harness).len();
    assert!(count > 0, "no disabled button to look at");
    (0..count)
        .map(|i| {
            // Scrolled into view first, as a person scrolls a panel to reach it.
            if let Some(button) = harness
                .query_all_by_role(Role::Button)
                .filter(|b| b.accesskit_node().is_disabled())
                .nth(i)
            {
                button.scroll_to_me();
            }
            harness.run_steps(2);
            let (label, centre) = disabled(harness).swap_remove(i);
            harness.hover_at(centre);
            harness.run_steps(60);
            let tooltip = harness
                .query_all_by_role(Role::Tooltip)
                .flat_map(|t| {
                    t.query_all_by_role(Role::Label)
                        .filter_map(|l| l.accesskit_node().value())
                        .collect::<Vec<_>>()
                })
                .next();
            harness.remove_cursor();
            harness.run_steps(2);
            (label, tooltip)
        })
        .collect()
}

#[test]
fn every_disabled_button_says_why() {
    let _machine = exclusive();
    let (core, _) = cores();
    // One 20 s sleep: long enough to look at every button while it runs.
    let mut harness = harness(&config(Io, 1, 1, 20_000.0, Placement::OneCore(core)));
    // Idle, with text that cannot run: Run, Run both and Stop are disabled.
    type_into(&mut harness, "Tasks", "abc");
    harness.key_press(egui::Key::Escape);
    let idle = disabled_buttons_and_tooltips(&mut harness);
    for label in ["Run", "Run both", "Stop"] {
        assert!(idle.iter().any(|(l, _)| l == label), "{label} in {idle:?}");
    }
    // During a run: Run, Run both and the data exports are disabled.
    type_into(&mut harness, "Tasks", "1");
    harness.key_press(egui::Key::Escape);
    harness.get_by_label("Run").click();
    harness.run_steps(2);
    assert!(harness.state().is_busy());
    let busy = disabled_buttons_and_tooltips(&mut harness);
    assert!(
        harness.state().is_busy(),
        "still running: the tooltips were of a run in progress"
    );
    harness.get_by_label("Stop").click();
    step_until_idle(&mut harness);
    for label in ["Run", "Run both", "Save trace"] {
        assert!(busy.iter().any(|(l, _)| l == label), "{label} in {busy:?}");
    }
    for (label, tooltip) in idle.iter().chain(&busy) {
        assert!(
            tooltip.as_ref().is_some_and(|t| !t.is_empty()),
            "disabled '{label}' says nothing"
        );
    }
    let say = |list: &[(String, Option<String>)], label: &str| {
        list.iter()
            .find(|(l, _)| l == label)
            .and_then(|(_, t)| t.clone())
            .unwrap()
    };
    assert_eq!(
        say(&idle, "Run both"),
        "task count 'abc' is not a whole number"
    );
    assert_eq!(say(&idle, "Stop"), "No run is in progress");
    assert_eq!(
        say(&busy, "Run both"),
        "A run is in progress: wait for it or press Stop"
    );
}

#[test]
fn a_run_estimated_over_a_minute_asks_first_unless_scripted() {
    let _machine = exclusive();
    let (core, _) = cores();
    // 1 000 000 tasks × 600 000 ms on one core: 6·10⁸ s, about 19 years.
    let huge = config(Cpu, 1, 1_000_000, 600_000.0, Placement::OneCore(core));
    let mut harness = harness(&huge);
    harness.get_by_label("Run").click();
    harness.run_steps(2);
    harness.get_by_label("This run is estimated to take about 19.0 years.");
    assert!(!harness.state().is_busy(), "it waits for an answer");
    harness.get_by_label("Cancel").click();
    harness.run_steps(2);
    assert!(harness.query_by_label("Run anyway").is_none());
    // Space asks too; Escape answers no.
    harness.key_press(egui::Key::Space);
    harness.run_steps(2);
    harness.get_by_label("Run anyway");
    harness.key_press(egui::Key::Escape);
    harness.run_steps(2);
    assert!(harness.query_by_label("Run anyway").is_none());
    // Run both asks for the two presets together.
    harness.get_by_label("Run both").click();
    harness.run_steps(2);
    harness.get_by_label_contains("The two runs are estimated to take about");
    harness.get_by_label("Cancel").click();
    harness.run_steps(2);
    assert!(harness.state().history.is_empty(), "nothing ran");

    // Confirmed, a long run starts: two 40 s sleeps on one thread, stopped at once.
    let long = config(Io, 1, 2, 40_000.0, Placement::OneCore(core));
    click_run(&mut harness, &long);
    harness.get_by_label("This run is estimated to take about 1.3 minutes.");
    harness.get_by_label("Run anyway").click();
    harness.run_steps(2);
    assert!(harness.state().is_busy(), "confirmed, it runs");
    harness.get_by_label("Stop").click();
    step_until_idle(&mut harness);
    assert_eq!(harness.state().history.len(), 1);

    // A run of under a minute starts at once (the other tests click Run and
    // find it running); a scripted one never asks, however long.
    let args = corelanes::cli::Cli::try_parse_from(words(
        "corelanes gui --workload io --threads 1 --tasks 2 --task-ms 40000 --sched off --autorun",
    ))
    .unwrap();
    let Some(corelanes::cli::Command::Gui(args)) = args.command else {
        unreachable!("a gui command line")
    };
    let mut scripted = app_harness(App::from_launch(&args.launch().unwrap()).unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !scripted.state().is_busy() {
        assert!(Instant::now() < deadline, "the scripted run did not start");
        assert!(scripted.query_by_label("Run anyway").is_none(), "it asked");
        std::thread::sleep(Duration::from_millis(50));
        scripted.step();
    }
    scripted.get_by_label("Stop").click();
    step_until_idle(&mut scripted);
}

/// Steps frames until a label containing `text` shows (a file is written on
/// a thread of its own).
pub(super) fn wait_for_label(harness: &mut Harness<'_, App>, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while harness.query_by_label_contains(text).is_none() {
        assert!(Instant::now() < deadline, "'{text}' never showed");
        std::thread::sleep(Duration::from_millis(10));
        harness.step();
    }
}

#[test]
fn export_messages_stay_with_their_run_and_advise_on_empty_paths_and_folders() {
    let _machine = exclusive();
    let (core, _) = cores();
    let short = config(Io, 1, 1, 20.0, Placement::OneCore(core));
    let mut harness = harness(&short);
    run_to_end(&mut harness, &short);
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().display().to_string();
    let save = |harness: &mut Harness<'_, App>, button: &str, path: &str| {
        type_into(harness, &format!("{button}: path"), path);
        harness.get_by_label(button).click();
        harness.run_steps(2);
    };
    save(&mut harness, "Save JSON", "");
    save(&mut harness, "Save JSON", &folder);
    let first_run = [
        "No file name: type one, such as ./corelanes-io-1.json".to_string(),
        format!("{folder} is a folder: add a file name, such as {folder}/corelanes-io-1.json"),
        format!("wrote {folder}/a.json"),
        format!("wrote {folder}/a.csv"),
        format!("wrote {folder}/a.trace.json"),
    ];
    for (button, name) in [
        ("Save JSON", "a.json"),
        ("Save CSV", "a.csv"),
        ("Save trace", "a.trace.json"),
    ] {
        save(&mut harness, button, &format!("{folder}/{name}"));
        wait_for_label(&mut harness, &format!("wrote {folder}/{name}"));
    }
    for message in &first_run {
        harness.get_by_label(message);
    }

    // A second run shows none of them; back on the first, all are there.
    run_to_end(&mut harness, &short);
    let json_path = |harness: &Harness<'_, App>| harness.get_by_label("Save JSON: path").value();
    assert_eq!(
        json_path(&harness).as_deref(),
        Some("./corelanes-io-2.json")
    );
    for message in &first_run {
        assert!(
            harness.query_by_label(message).is_none(),
            "{message} under run #2"
        );
    }
    harness.get_by_label_contains("#1 ").click();
    harness.run_steps(2);
    assert_eq!(
        json_path(&harness).as_deref(),
        Some("./corelanes-io-1.json")
    );
    for message in &first_run {
        harness.get_by_label(message);
    }
}

#[test]
fn with_perf_capture_the_core_lane_shows_the_kernels_time_slices() {
    let _machine = exclusive();
    let (core, _) = cores();
    let mut harness = harness(&config(Cpu, 2, 4, 60.0, Placement::OneCore(core)));
    // Chosen as a user does: the combo box, then its entry.
    harness.get_by_label("Scheduler capture").click();
    harness.run_steps(2);
    harness.get_by_label("perf").click();
    harness.run_steps(2);
    harness.get_by_label("Run").click();
    step_until_idle(&mut harness);
    let rec = harness.state().shown().expect("the run is shown");
    assert_eq!(
        rec.config.sched,
        corelanes::telemetry::sched::SchedMode::Perf
    );
    if rec.sched_source != SchedSource::Perf {
        // Refused: the window says why instead of drawing a picture.
        let why = rec
            .failures
            .first()
            .expect("a refused capture is a failure");
        assert!(why.contains("refused perf_event_open"), "{why}");
        harness.get_by_label_contains("refused perf_event_open");
        perf_checks_apply(Some(why));
        return;
    }
    perf_checks_apply(None);
    harness.get_by_label("scheduler data: perf (exact context switches)");
    let sched = rec.sched.as_ref().expect("perf slices");
    // What watching cost is one of the figures, as the report says it.
    harness.get_by_label("capture's CPU");
    // And how many perf events each thread carried: one, on one core.
    harness.get_by_label("perf events");
    harness.get_by_label("1 per thread");
    assert_eq!(sched.events_per_thread, Some(1));
    let own = sched
        .capture_cpu_ns
        .expect("perf's drain thread tells its CPU time");
    let shown = corelanes::metrics::human_ns(own);
    assert!(
        harness.query_all_by_label(&shown).next().is_some(),
        "the figures show {shown}"
    );
    let timeline = &harness.state().shown_entry().expect("shown").timeline;
    assert!(
        timeline.cores_from_kernel,
        "core lanes drawn from the kernel's slices"
    );
    let lane = &timeline.cores[core];
    assert!(
        lane.len() > 10,
        "the core alternated: {} slices",
        lane.len()
    );
    let whole = lane.mix(0, rec.wall_ns + 1);
    for (t, per) in sched.per_thread.iter().enumerate() {
        // Both threads were born on the core and never left it: the core
        // lane holds all of each one's running time, the state strips its waits.
        assert!(per.running_ns > 0);
        assert_eq!(
            whole.ns_of(t as Class),
            per.running_ns,
            "thread {t} on core {core}"
        );
        let strip = timeline.thread_states[t].mix(0, rec.wall_ns + 1);
        assert_eq!(
            strip.ns_of(state_class(SliceState::Runnable)),
            per.runnable_ns
        );
        assert!(per.runnable_ns > 0, "thread {t} waited for the core");
    }
}
