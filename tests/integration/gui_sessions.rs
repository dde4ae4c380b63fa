//! Sessions in the window: saved, reopened, refused when bad, and the runs
//! and settings kept from one launch to the next.

use std::collections::HashMap;

use corelanes::gui::{App, Launch};
use corelanes::run::{Placement, RunConfig};
use corelanes::topology::Topology;
use corelanes::workload::WorkloadKind::{Cpu, Io};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

use super::gui::{app_harness, run_to_end, type_into, wait_for_label};
use super::{config, cores, exclusive};

/// eframe's storage as the window has it, held in memory: the app reads and
/// writes it through the same trait.
#[derive(Default)]
struct Storage(HashMap<String, String>);

impl eframe::Storage for Storage {
    fn get_string(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
    fn set_string(&mut self, key: &str, value: String) {
        self.0.insert(key.into(), value);
    }
    fn remove_string(&mut self, key: &str) {
        self.0.remove(key);
    }
    fn flush(&mut self) {}
}

fn short() -> RunConfig {
    let (core, _) = cores();
    config(Io, 1, 2, 20.0, Placement::OneCore(core))
}

/// The app as `corelanes gui` opens it for a person, keeping its runs in `dir`.
fn interactive(config: &RunConfig, dir: &std::path::Path) -> App {
    let mut app = App::from_launch(&Launch::interactive(config.clone())).unwrap();
    app.keep_in(dir.to_path_buf());
    app
}

fn click(harness: &mut Harness<'_, App>, label: &str) {
    harness.get_by_label(label).click();
    harness.run_steps(2);
}

#[test]
fn a_saved_session_reopens_in_the_window_and_bad_files_lose_nothing() {
    let _machine = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let mut harness = app_harness(interactive(&short(), dir.path()));
    run_to_end(&mut harness, &short());
    let file = dir.path().join("two.pftrace").display().to_string();
    type_into(&mut harness, "Save session: path", &file);
    click(&mut harness, "Save all runs");
    wait_for_label(&mut harness, &format!("saved 1 run to {file}"));

    type_into(&mut harness, "Open session: path", &file);
    click(&mut harness, "Open");
    wait_for_label(&mut harness, &format!("opened {file} (1 run)"));
    let app = harness.state();
    assert_eq!(app.history.len(), 2);
    let (run, reopened) = (app.history.get(0).unwrap(), app.history.get(1).unwrap());
    assert_eq!(reopened.file.as_deref(), Some("two.pftrace"));
    assert_eq!(reopened.rec.tasks, run.rec.tasks);
    assert_eq!(reopened.metrics, run.metrics);
    assert_eq!(app.history.selected, Some(1), "the reopened run is shown");
    harness.get_by_label_contains("#2 io · 1 thread · one core");
    harness.get_by_label_contains("· from two.pftrace");
    harness.get_by_label("two.pftrace"); // in the recent list

    // Bad files: each refused in one sentence, and the two runs stay.
    let bad: [(&str, &[u8], &str); 3] = [
        (
            "random.pftrace",
            &[0xff, 0x13, 0x37, 0x00, 0x42, 0x99, 0xfe, 0x01],
            "is not a corelanes session",
        ),
        (
            "chrome.pftrace",
            br#"{"traceEvents":[]}"#,
            "is not a corelanes session",
        ),
        (
            "cut.pftrace",
            &std::fs::read(&file).unwrap()[..200],
            "is cut short",
        ),
    ];
    for (name, bytes, why) in bad {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        type_into(
            &mut harness,
            "Open session: path",
            &path.display().to_string(),
        );
        click(&mut harness, "Open");
        wait_for_label(&mut harness, &format!("{} {why}", path.display()));
        assert_eq!(harness.state().history.len(), 2, "{name} lost nothing");
    }
}

#[test]
fn settings_and_runs_are_kept_across_launches_and_offered_not_reopened() {
    let _machine = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let mut storage = Storage::default();
    let mut harness = app_harness(interactive(&short(), dir.path()));
    run_to_end(&mut harness, &short());
    let mut first = harness.into_state();
    eframe::App::save(&mut first, &mut storage);
    eframe::App::on_exit(&mut first);

    // Launched again: the controls as they were, the run offered, not shown.
    let defaults = config(Cpu, 2, 8, 50.0, Placement::Spread);
    let mut second = interactive(&defaults, dir.path());
    second.restore(Some(&storage), false);
    assert_eq!(
        second.controls.validate(Topology::get()).unwrap().config,
        short()
    );
    assert!(second.history.is_empty(), "nothing reopened unasked");
    let mut harness = app_harness(second);
    harness.run_steps(2);
    harness.get_by_label_contains("Reopen the 1 run kept when the window last closed?");
    click(&mut harness, "Reopen");
    let kept = dir.path().join("kept.pftrace");
    wait_for_label(&mut harness, &format!("opened {} (1 run)", kept.display()));
    assert_eq!(harness.state().history.len(), 1);
    assert_eq!(harness.state().history.get(0).unwrap().rec.config, short());

    // Flags given on the command line win over the saved run.
    let mut flagged = interactive(&defaults, dir.path());
    flagged.restore(Some(&storage), true);
    assert_eq!(
        flagged.controls.validate(Topology::get()).unwrap().config,
        defaults
    );

    // A scripted session neither reads the settings nor offers the runs.
    let mut launch = Launch::interactive(defaults.clone());
    launch.autorun = true;
    let mut scripted = App::from_launch(&launch).unwrap();
    scripted.restore(Some(&storage), false);
    assert_eq!(
        scripted.controls.validate(Topology::get()).unwrap().config,
        defaults
    );
    let before = storage.0.clone();
    eframe::App::save(&mut scripted, &mut storage);
    assert_eq!(storage.0, before, "and writes nothing");
}
