//! The app driven like a user drives it, without a window or a GPU: controls
//! set, buttons clicked by their labels, real runs stepped to the end.

use std::time::{Duration, Instant};

use corelanes::gui::{App, Controls, PlacementChoice};
use corelanes::metrics::speedup;
use corelanes::run::{Placement, RunConfig, RunStatus};
use corelanes::telemetry::sched::{SchedSource, SliceState, perf_checks_apply};
use corelanes::timeline::{Class, state_class};
use corelanes::topology::Topology;
use corelanes::workload::WorkloadKind::{Cpu, Io};
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

use super::{config, cores, exclusive};

fn harness(config: &RunConfig) -> Harness<'static, App> {
    Harness::builder()
        .with_size(egui::vec2(1500.0, 940.0))
        .with_step_dt(1.0 / 60.0)
        .build_ui_state(
            |ui, app: &mut App| {
                app.poll(ui.ctx());
                app.show(ui);
            },
            App::new(config),
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
fn run_to_end(harness: &mut Harness<'_, App>, config: &RunConfig) -> u64 {
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
    let stored: usize = lanes.threads.iter().map(|lane| lane.len()).sum();
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
fn invalid_controls_disable_run_and_say_why() {
    let (core, _) = cores();
    // A core list shorter than the thread count.
    let mut harness = harness(&config(Cpu, 2, 4, 20.0, Placement::List(vec![core])));
    harness.run_steps(2);
    assert!(run_disabled(&harness));
    harness.get_by_label_contains("1 entries but there are 2 threads");

    // Zero threads.
    harness.state_mut().controls.threads = 0;
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
