//! The real window, scripted: `corelanes gui … --autorun --screenshot FILE --exit`.
//!
//! The picture tests need a display and are ignored by plain `cargo test`;
//! `.ci/run` runs them under Xvfb with Mesa's software Vulkan. Refusals
//! happen before any window opens, so those tests run everywhere.

use super::{corelanes, exclusive, words};
use std::path::Path;

/// The size the app says it wrote: "(the timeline: W×H px at P px per point)".
fn reported_size(stdout: &str) -> ([u32; 2], f32) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("wrote "))
        .unwrap_or_else(|| panic!("no 'wrote' line in {stdout:?}"));
    let inner = line
        .rsplit_once("(the timeline: ")
        .expect("the picture's size is reported")
        .1;
    let (size, rest) = inner.split_once(" px at ").unwrap();
    let (w, h) = size.split_once('×').unwrap();
    let ppp = rest.split_once(' ').unwrap().0;
    (
        [w.parse().unwrap(), h.parse().unwrap()],
        ppp.parse().unwrap(),
    )
}

/// Runs a scripted window and checks the picture it saved.
fn scripted_picture(flags: &str, png: &Path) -> image::RgbaImage {
    let mut args = words("gui --workload cpu --threads 2 --tasks 4 --task-ms 30 --autorun --exit");
    args.extend(words(flags));
    args.extend(["--screenshot", png.to_str().unwrap()]);
    let out = corelanes(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let ([w, h], ppp) = reported_size(&stdout);
    let picture = image::open(png).expect("the PNG decodes").to_rgba8();
    assert_eq!(
        picture.dimensions(),
        (w, h),
        "the PNG is the timeline region the app reported"
    );
    // The timeline is the window's centre: most of its width and height, never more than the window.
    let [win_w, win_h] = corelanes::gui::WINDOW_SIZE.map(|points| points * ppp);
    assert!(
        (w as f32) < win_w && (h as f32) < win_h,
        "{w}×{h} is larger than the window"
    );
    assert!(
        (w as f32) > win_w * 0.4 && (h as f32) > win_h * 0.4,
        "{w}×{h} is too small for the timeline"
    );
    picture
}

/// A drawn timeline has lanes, labels and colours: many distinct colours,
/// and no single colour covering nearly everything.
fn assert_not_blank(picture: &image::RgbaImage) {
    let mut counts = std::collections::HashMap::new();
    for pixel in picture.pixels() {
        *counts.entry(pixel.0).or_insert(0usize) += 1;
    }
    let most = counts.values().max().copied().unwrap_or(0);
    let total = picture.width() as usize * picture.height() as usize;
    assert!(counts.len() > 50, "only {} distinct colours", counts.len());
    assert!(
        most < total * 9 / 10,
        "one colour covers {most} of {total} pixels"
    );
}

#[test]
#[ignore = "needs a display: run under xvfb-run (see .ci/run)"]
fn scripted_one_core_run_saves_the_timeline_picture() {
    let _machine = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("t.png");
    let picture = scripted_picture("--placement one-core", &png);
    assert_not_blank(&picture);
}

#[test]
#[ignore = "needs a display: run under xvfb-run (see .ci/run)"]
fn scripted_spread_run_saves_the_timeline_picture() {
    let _machine = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("spread.png");
    let picture = scripted_picture("--placement spread", &png);
    assert_not_blank(&picture);
}

#[test]
#[ignore = "needs a display: run under xvfb-run (see .ci/run)"]
fn scripted_run_both_stacks_two_runs_in_one_picture() {
    let _machine = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let single = scripted_picture("--placement one-core", &dir.path().join("one.png"));
    let both = scripted_picture("--run-both", &dir.path().join("both.png"));
    assert_not_blank(&both);
    // Two runs stacked need about twice the lanes of one: the picture is clearly taller.
    assert!(
        both.height() as f32 > 1.5 * single.height() as f32,
        "{} px tall for two runs, {} px for one",
        both.height(),
        single.height()
    );
}

#[test]
fn bad_flags_fail_before_any_window_opens() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir
        .path()
        .join("no/such/dir/t.png")
        .to_string_lossy()
        .into_owned();
    let cases: [(&[&str], &str); 3] = [
        (
            &["gui", "--threads", "0", "--autorun", "--exit"],
            "thread count 0",
        ),
        (
            &["gui", "--placement", "0,x", "--autorun"],
            "placement '0,x' is not understood",
        ),
        (
            &["gui", "--autorun", "--exit", "--screenshot", &missing],
            "no/such/dir/t.png",
        ),
    ];
    for (args, expected) in cases {
        let out = corelanes(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            stderr.contains(expected),
            "{args:?}: stderr {stderr:?} lacks {expected:?}"
        );
    }
}

#[test]
#[ignore = "needs a display: run under xvfb-run (see .ci/run)"]
fn ctrl_c_stops_a_scripted_run_saves_what_was_drawn_and_closes() {
    let _machine = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("stopped.png");
    // 2 threads × 100 tasks of 200 ms: 10 s unless stopped.
    let mut args = words(
        "gui --workload disk --threads 2 --tasks 100 --task-ms 200 --sched off --autorun --exit",
    );
    args.extend(["--screenshot", png.to_str().unwrap()]);
    let mut child = super::command(&args)
        .env("TMPDIR", dir.path())
        .spawn()
        .unwrap();
    super::wait_for_workers(&mut child);
    super::signal(&child, "INT");
    let out = super::finish_within(child, &args, std::time::Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("stopped before it finished"), "{stderr}");
    assert_not_blank(
        &image::open(&png)
            .expect("the stopped run's picture")
            .to_rgba8(),
    );
    let left = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("corelanes-disk-")
        })
        .count();
    assert_eq!(left, 0, "the disk workload's files are removed");
}
