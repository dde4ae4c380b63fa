//! The Experiments view in the window: a lesson runs from its page, its
//! runs land in the history, its verdict is shown as measured, Stop keeps
//! what was measured, and a slide that cannot be written says why.

use std::time::{Duration, Instant};

use corelanes::gui::App;
use corelanes::lesson::LessonId;
use corelanes::run::Placement;
use corelanes::workload::WorkloadKind::Io;
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

use super::gui::{app_harness, type_into, wait_for_label};
use super::{config, cores, exclusive};

fn open_lesson(harness: &mut Harness<'_, App>, title: &str) {
    harness.get_by_label("Experiments").click();
    harness.run_steps(2);
    // The list comes first (the left panel); the page repeats the title.
    harness.get_all_by_label(title).next().unwrap().click();
    harness.run_steps(2);
}

/// Steps frames until nothing runs (a lesson takes tens of seconds here).
fn until_idle(harness: &mut Harness<'_, App>) {
    let deadline = Instant::now() + Duration::from_secs(180);
    harness.run_steps(2);
    while harness.state().is_busy() {
        assert!(Instant::now() < deadline, "the lesson never ended");
        std::thread::sleep(Duration::from_millis(20));
        harness.step();
    }
    harness.run_steps(3);
}

fn app() -> Harness<'static, App> {
    let (core, _) = cores();
    app_harness(App::new(&config(Io, 1, 1, 10.0, Placement::OneCore(core))))
}

#[test]
fn a_lesson_runs_from_its_page_and_its_runs_land_in_the_history() {
    let _machine = exclusive();
    let mut harness = app();
    open_lesson(&mut harness, LessonId::TimeSlicing.title());
    // The claim shows before anything runs.
    harness.get_by_label(LessonId::TimeSlicing.claim());
    harness.get_by_label("Run lesson (Space)").click();
    until_idle(&mut harness);
    let app = harness.state();
    let outcome = app
        .experiments
        .outcome(LessonId::TimeSlicing)
        .expect("a verdict")
        .clone();
    assert!(outcome.reason.is_none(), "{outcome:?}");
    assert!(!outcome.claim.is_empty() && !outcome.criterion.is_empty());
    // Its runs are in the history, like any other, and the last is shown.
    assert!(app.history.len() >= 2, "{} runs", app.history.len());
    assert_eq!(app.history.selected, Some(app.history.len() - 1));
    let word = match outcome.holds {
        Some(true) => "+ Holds",
        Some(false) => "× Does not hold",
        None => unreachable!("no reason was given"),
    };
    harness.get_by_label(word);
    harness.get_by_label(&outcome.verdict);
    assert_eq!(outcome.claim, LessonId::TimeSlicing.claim());
}

#[test]
fn stop_ends_a_lesson_keeping_its_runs_and_the_window_goes_on() {
    let _machine = exclusive();
    let mut harness = app();
    open_lesson(&mut harness, LessonId::Parallelism.title());
    harness.key_press(egui::Key::Space);
    // Stop once its first run has landed.
    let deadline = Instant::now() + Duration::from_secs(60);
    while harness.state().history.is_empty() {
        assert!(Instant::now() < deadline, "no run landed");
        std::thread::sleep(Duration::from_millis(20));
        harness.step();
    }
    harness.key_press(egui::Key::Escape);
    until_idle(&mut harness);
    let app = harness.state();
    let outcome = app.experiments.outcome(LessonId::Parallelism).unwrap();
    assert_eq!(outcome.holds, None);
    assert_eq!(
        outcome.reason.as_deref(),
        Some(corelanes::lesson::STOPPED),
        "{outcome:?}"
    );
    assert!(!app.history.is_empty(), "the runs made before Stop stay");
    wait_for_label(&mut harness, "Stopped: not judged");
    // The window goes on: the Workbench runs as before.
    harness.get_by_label("Workbench").click();
    harness.run_steps(2);
    assert!(!harness.state().is_busy());
}

#[test]
fn a_slide_that_cannot_be_written_says_why() {
    let _machine = exclusive();
    let mut harness = app();
    open_lesson(&mut harness, LessonId::Smt.title());
    harness.get_by_label("Run lesson (Space)").click();
    until_idle(&mut harness);
    // Each lesson's slide is named after it, whichever page was shown first.
    let field = harness.get_by_label("Save slide: path");
    assert_eq!(
        field.accesskit_node().value().as_deref(),
        Some("lesson-smt.png")
    );
    type_into(
        &mut harness,
        "Save slide: path",
        "/nonexistent-dir/slide.png",
    );
    harness.get_by_label("Save slide").click();
    harness.run_steps(3);
    wait_for_label(&mut harness, "nonexistent-dir");
    assert!(harness.state().experiments.outcome(LessonId::Smt).is_some());
}
