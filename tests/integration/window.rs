//! The real window, scripted: `corelanes gui … --autorun --screenshot FILE --exit`.
//!
//! The picture tests need a display and are ignored by plain `cargo test`;
//! `.ci/run` runs them under Xvfb with Mesa's software Vulkan. Refusals
//! happen before any window opens, so those tests run everywhere.
//!
//! Pictures are read as a person reads them: by the threads' own legend
//! colours, where they should be, checked against the summary JSON of the
//! same run (`--json`), which holds the kernel's running slices.

use std::ops::Range;
use std::path::Path;
use std::process::Output;

use serde_json::Value;

use super::{corelanes, exclusive, words};

/// How far a channel may be from the legend's colour and still count as it.
const TOLERANCE: u8 = 3;
/// A core lane of a long run at fit is a band of rows each at least this
/// share filled with thread colours.
const LANE_FILL: f64 = 0.25;
/// Any lane: short runs leave gaps in core lanes (the kernel ran others, or
/// nothing), yet legend swatches stay below this.
const ANY_LANE_FILL: f64 = 0.04;

/// The size the app says it wrote: "(the timeline: W×H px at P px per point)".
fn reported_size(stdout: &str) -> ([u32; 2], f32) {
    let line = wrote_line(stdout);
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

fn wrote_line(stdout: &str) -> &str {
    stdout
        .lines()
        .find(|l| l.starts_with("wrote ") && l.contains(".png"))
        .unwrap_or_else(|| panic!("no 'wrote … .png' line in {stdout:?}"))
}

fn succeeded(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Runs a scripted window (`flags` after `gui`) and checks the picture it
/// saved at `png`; returns it with what the app printed.
fn scripted(flags: &str, png: &Path) -> (image::RgbaImage, String) {
    let mut args = words("gui --autorun --exit");
    args.extend(words(flags));
    args.extend(["--screenshot", png.to_str().unwrap()]);
    let stdout = succeeded(&corelanes(&args));
    let ([w, h], ppp) = reported_size(&stdout);
    let picture = image::open(png).expect("the PNG decodes").to_rgba8();
    assert_eq!(
        picture.dimensions(),
        (w, h),
        "the PNG is the timeline region the app reported"
    );
    // The timeline is the window's centre: most of its width, never more than the window.
    let [win_w, win_h] = corelanes::gui::WINDOW_SIZE.map(|points| points * ppp);
    assert!(
        (w as f32) < win_w && (h as f32) < win_h,
        "{w}×{h} is larger than the window"
    );
    assert!(
        (w as f32) > win_w * 0.4,
        "{w}×{h} is too narrow for the timeline"
    );
    (picture, stdout)
}

/// A short run of 2 threads (`flags` add the placement), pictured once it
/// has ended: its lanes with their state strips then fill most of the height.
fn scripted_picture(flags: &str, png: &Path) -> image::RgbaImage {
    let flags = format!("--workload cpu --threads 2 --tasks 4 --task-ms 30 {flags}");
    let (picture, stdout) = scripted(&flags, png);
    let win_h = corelanes::gui::WINDOW_SIZE[1] * reported_size(&stdout).1;
    assert!(
        picture.height() as f32 > win_h * 0.4,
        "{} px is too short for the timeline",
        picture.height()
    );
    picture
}

/// The legend colours of the first `threads` worker threads.
fn thread_colours(threads: usize) -> Vec<[u8; 3]> {
    (0..threads)
        .map(|i| {
            let [r, g, b, _] = corelanes::gui::palette::thread(i).to_array();
            [r, g, b]
        })
        .collect()
}

/// Which of `colours` the pixel at (x, y) is, if any.
fn colour_at(picture: &image::RgbaImage, x: u32, y: u32, colours: &[[u8; 3]]) -> Option<usize> {
    let p = picture.get_pixel(x, y).0;
    colours
        .iter()
        .position(|c| (0..3).all(|i| p[i].abs_diff(c[i]) <= TOLERANCE))
}

/// A lane found in a picture: its rows, and where its thread colours lie.
#[derive(Debug)]
struct Lane {
    rows: Range<u32>,
    columns: Range<u32>,
    /// Pixels of each colour in the lane.
    counts: Vec<f64>,
}

impl Lane {
    /// Pixels of each colour in `columns` of this lane (all rows, or `rows`).
    fn count(
        &self,
        picture: &image::RgbaImage,
        colours: &[[u8; 3]],
        columns: Range<u32>,
        rows: Option<Range<u32>>,
    ) -> Vec<f64> {
        let mut counts = vec![0.0; colours.len()];
        for y in rows.unwrap_or(self.rows.clone()) {
            for x in columns.clone() {
                if let Some(c) = colour_at(picture, x, y, colours) {
                    counts[c] += 1.0;
                }
            }
        }
        counts
    }

    /// Each colour's share of the coloured pixels in `columns`.
    fn shares(
        &self,
        picture: &image::RgbaImage,
        colours: &[[u8; 3]],
        columns: Range<u32>,
    ) -> Vec<f64> {
        shares(&self.count(picture, colours, columns, None))
    }
}

/// Each amount's share of their sum.
fn shares(amounts: &[f64]) -> Vec<f64> {
    let total = amounts.iter().sum::<f64>().max(f64::MIN_POSITIVE);
    amounts.iter().map(|n| n / total).collect()
}

/// The lanes of a picture, top to bottom: bands of rows each at least
/// `fill` filled with `colours`.
fn lanes(picture: &image::RgbaImage, colours: &[[u8; 3]], fill: f64) -> Vec<Lane> {
    let (w, h) = picture.dimensions();
    let filled = |y: u32| {
        (0..w)
            .filter(|&x| colour_at(picture, x, y, colours).is_some())
            .count() as f64
            >= fill * f64::from(w)
    };
    let mut lanes = Vec::new();
    let mut y = 0;
    while y < h {
        if !filled(y) {
            y += 1;
            continue;
        }
        let top = y;
        while y < h && filled(y) {
            y += 1;
        }
        let mut lane = Lane {
            rows: top..y,
            columns: 0..0,
            counts: Vec::new(),
        };
        let coloured: Vec<u32> = (0..w)
            .filter(|&x| (top..y).any(|y| colour_at(picture, x, y, colours).is_some()))
            .collect();
        lane.columns = coloured[0]..coloured[coloured.len() - 1] + 1;
        lane.counts = lane.count(picture, colours, lane.columns.clone(), None);
        lanes.push(lane);
    }
    lanes
}

/// Core lanes come first: the topmost lane holding both threads' colours
/// (in a one-core run, thread lanes hold one each).
fn core_lane(picture: &image::RgbaImage, colours: &[[u8; 3]]) -> Lane {
    let all = lanes(picture, colours, LANE_FILL);
    let first = all.into_iter().next().unwrap_or_else(|| {
        panic!("no lane is {LANE_FILL} filled with the threads' colours {colours:?}")
    });
    let share = shares(&first.counts);
    assert!(
        share.iter().all(|&s| s > 0.05),
        "the topmost lane {first:?} is not a core lane that both threads share (shares {share:.2?})"
    );
    first
}

/// Which threads' colours a lane holds (over 1 % of its coloured pixels each), e.g. "01".
fn holds(lane: &Lane) -> String {
    shares(&lane.counts)
        .iter()
        .enumerate()
        .filter(|&(_, &s)| s > 0.01)
        .map(|(t, _)| t.to_string())
        .collect()
}

/// The picture's lanes, top to bottom, hold the threads' own colours as
/// `expected` says: core lanes first (a shared core holds both threads),
/// then one lane per thread with its task bars in its legend colour.
fn assert_lanes(picture: &image::RgbaImage, expected: &[&str]) {
    let found = lanes(picture, &thread_colours(2), ANY_LANE_FILL);
    let read: Vec<String> = found.iter().map(holds).collect();
    assert_eq!(read, expected, "lanes found: {found:#?}");
}

/// The kernel's running slices on one core, from the summary JSON: (thread, start, end).
fn running_on(summary: &Value, core: u64) -> Vec<(usize, u64, u64)> {
    summary["sched"]["slices"]
        .as_array()
        .expect("the summary has sched.slices")
        .iter()
        .filter(|s| s["state"] == "running" && s["core"] == core)
        .map(|s| {
            let ns = |k: &str| s[k].as_u64().unwrap();
            (
                s["thread"].as_u64().unwrap() as usize,
                ns("start_ns"),
                ns("end_ns"),
            )
        })
        .collect()
}

/// Nanoseconds each of `threads` ran within `from..to`.
fn ran_within(slices: &[(usize, u64, u64)], threads: usize, from: f64, to: f64) -> Vec<f64> {
    let mut ns = vec![0.0; threads];
    for &(t, a, b) in slices {
        let overlap = (b as f64).min(to) - (a as f64).max(from);
        if t < threads && overlap > 0.0 {
            ns[t] += overlap;
        }
    }
    ns
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("the JSON was written"))
        .expect("the JSON parses")
}

fn pinned_core(summary: &Value) -> u64 {
    summary["threads"][0]["pinned_core"]
        .as_u64()
        .expect("one-core pins")
}

#[test]
#[ignore = "needs a display: run under xvfb-run (see .ci/run)"]
fn scripted_one_core_run_saves_the_timeline_picture() {
    let _machine = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let picture = scripted_picture("--placement one-core", &dir.path().join("t.png"));
    assert_lanes(&picture, &["01", "0", "1"]);
}

#[test]
#[ignore = "needs a display: run under xvfb-run (see .ci/run)"]
fn a_session_reopened_by_gui_file_is_pictured_as_the_run_was() {
    let _machine = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let session = dir.path().join("s.pftrace");
    let png = dir.path().join("reopened.png");
    let (session, png) = (session.to_str().unwrap(), png.to_str().unwrap());
    let mut run = words(
        "run --workload cpu --threads 2 --tasks 4 --task-ms 30 --placement one-core --pftrace",
    );
    run.push(session);
    succeeded(&corelanes(&run));
    let stdout = succeeded(&corelanes(&["gui", session, "--exit", "--screenshot", png]));
    assert!(wrote_line(&stdout).contains(png), "{stdout}");
    let picture = image::open(png).expect("the PNG decodes").to_rgba8();
    assert_lanes(&picture, &["01", "0", "1"]);
}

#[test]
#[ignore = "needs a display: run under xvfb-run (see .ci/run)"]
fn scripted_spread_run_saves_the_timeline_picture() {
    let _machine = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let picture = scripted_picture("--placement spread", &dir.path().join("spread.png"));
    assert_lanes(&picture, &["0", "1", "0", "1"]);
}

#[test]
#[ignore = "needs a display: run under xvfb-run (see .ci/run)"]
fn scripted_run_both_stacks_two_runs_in_one_picture() {
    let _machine = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let single = scripted_picture("--placement one-core", &dir.path().join("one.png"));
    let both = scripted_picture("--run-both", &dir.path().join("both.png"));
    // The concurrency preset (one core), then the parallelism preset (one core each).
    assert_lanes(&both, &["01", "0", "1", "0", "1", "0", "1"]);
    // Two runs stacked need about twice the lanes of one: the picture is clearly taller.
    assert!(
        both.height() as f32 > 1.5 * single.height() as f32,
        "{} px tall for two runs, {} px for one",
        both.height(),
        single.height()
    );
}

/// At fit, a time-sliced core lane shows each thread's share of the core in
/// every quarter of the run, as the kernel's own slices (same run's JSON)
/// say; and the end, where one thread runs alone, in that thread's colour.
#[test]
#[ignore = "needs a display: run under xvfb-run (see .ci/run)"]
fn core_lane_shares_match_the_kernels_running_time() {
    let _machine = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let (png, json) = (dir.path().join("q.png"), dir.path().join("q.json"));
    // 3 tasks on 2 threads: both share the core for ~2 s, then one runs alone for ~1 s.
    let flags = format!(
        "--workload cpu --threads 2 --tasks 3 --task-ms 1000 --placement one-core --sched perf --json {}",
        json.display()
    );
    let (picture, _) = scripted(&flags, &png);
    let summary = read_json(&json);
    let slices = running_on(&summary, pinned_core(&summary));
    let first = slices.iter().map(|s| s.1).min().expect("running slices") as f64;
    let last = slices.iter().map(|s| s.2).max().unwrap() as f64;

    let colours = thread_colours(2);
    let lane = core_lane(&picture, &colours);
    let [a, b] = [lane.columns.start, lane.columns.end].map(f64::from);
    let t_at = |x: f64| first + (x - a) / (b - a) * (last - first);
    let x_at = |t: f64| a + (t - first) / (last - first) * (b - a);

    let mut report = Vec::new();
    let mut wrong = false;
    for q in 0..4 {
        let x0 = a + (b - a) * f64::from(q) / 4.0;
        let x1 = a + (b - a) * f64::from(q + 1) / 4.0;
        let pixels = lane.shares(&picture, &colours, x0 as u32..x1 as u32);
        let kernel = shares(&ran_within(&slices, 2, t_at(x0), t_at(x1)));
        wrong |= (pixels[0] - kernel[0]).abs() > 0.10;
        report.push(format!(
            "quarter {}: pixels {:.0}% / {:.0}%, kernel {:.0}% / {:.0}%",
            q + 1,
            pixels[0] * 100.0,
            pixels[1] * 100.0,
            kernel[0] * 100.0,
            kernel[1] * 100.0
        ));
    }

    // The thread whose last slice ends first leaves the other alone until the end.
    let end_of = |t: usize| {
        slices
            .iter()
            .filter(|s| s.0 == t)
            .map(|s| s.2)
            .max()
            .unwrap()
    };
    let alone = if end_of(0) < end_of(1) { 1 } else { 0 };
    let from = end_of(1 - alone) as f64;
    assert!(
        last - from > 0.2 * (last - first),
        "the kernel says thread {alone} ran alone only from {from} to {last}"
    );
    // A few columns of margin: the column where the other thread stopped is mixed.
    let columns = x_at(from) as u32 + 3..lane.columns.end;
    let end = lane.shares(&picture, &colours, columns.clone())[alone];
    wrong |= end < 0.90;
    report.push(format!(
        "alone at the end (columns {columns:?}): thread {alone} {:.0}%",
        end * 100.0
    ));
    let report = report.join("\n");
    println!("{report}");
    assert!(
        !wrong,
        "core lane {lane:?} does not say what the kernel did:\n{report}"
    );
}

/// `--screenshot-at` takes the picture while the run goes on, and the core
/// lane then already shows the kernel's slices, live: both threads taking
/// turns in the same rows (task bands would give each thread its own rows).
#[test]
#[ignore = "needs a display: run under xvfb-run (see .ci/run)"]
fn a_picture_taken_during_the_run_shows_live_kernel_slices() {
    let _machine = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let (png, json) = (dir.path().join("live.png"), dir.path().join("live.json"));
    let flags = format!(
        "--workload cpu --threads 2 --tasks 4 --task-ms 1000 --placement one-core --sched perf --screenshot-at 1.5 --json {}",
        json.display()
    );
    let (picture, stdout) = scripted(&flags, &png);
    let line = wrote_line(&stdout);
    let taken: f64 = line
        .split_once("), ")
        .and_then(|(_, when)| when.strip_suffix(" s after the run started, while it ran"))
        .unwrap_or_else(|| panic!("the picture was not taken while the run went on: {line}"))
        .parse()
        .unwrap();
    let summary = read_json(&json);
    let wall = summary["wall_ns"].as_f64().unwrap() / 1e9;
    assert!(
        (1.5..wall).contains(&taken),
        "taken at {taken} s of a {wall} s run"
    );
    assert!(
        says_it_wrote(&stdout, &json),
        "the JSON was written: {stdout}"
    );
    // The kernel says both ran before 1.5 s, so the live picture must show both.
    let slices = running_on(&summary, pinned_core(&summary));
    let early = ran_within(&slices, 2, 0.0, 1.5e9);
    assert!(early.iter().all(|&ns| ns > 0.2e9), "{early:?}");

    let colours = thread_colours(2);
    let lane = core_lane(&picture, &colours);
    let middle = (lane.rows.start + lane.rows.end) / 2;
    let row = shares(&lane.count(
        &picture,
        &colours,
        lane.columns.clone(),
        Some(middle..middle + 1),
    ));
    assert!(
        row.iter().all(|&s| s > 0.2),
        "the middle row of {lane:?} is not shared by both threads: {row:.2?}"
    );
}

fn says_it_wrote(stdout: &str, path: &Path) -> bool {
    stdout
        .lines()
        .any(|l| l == format!("wrote {}", path.display()))
}

#[test]
fn bad_flags_fail_before_any_window_opens() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir
        .path()
        .join("no/such/dir/t.png")
        .to_string_lossy()
        .into_owned();
    let missing_json = dir
        .path()
        .join("no/such/dir/s.json")
        .to_string_lossy()
        .into_owned();
    let cases: [(&[&str], &str); 7] = [
        (&["gui", "no-such.pftrace"], "cannot read no-such.pftrace"),
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
        (
            &["gui", "--autorun", "--exit", "--json", &missing_json],
            "no/such/dir/s.json",
        ),
        (
            &[
                "gui",
                "--autorun",
                "--screenshot",
                "t.png",
                "--screenshot-at",
                "-1",
            ],
            "'-1' is not a number of seconds",
        ),
        (
            &["gui", "--autorun", "--screenshot-at", "1"],
            "--screenshot",
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
    // What ran before the stop is drawn: each thread's lane in its own colour.
    let picture = image::open(&png)
        .expect("the stopped run's picture")
        .to_rgba8();
    let read: Vec<String> = lanes(&picture, &thread_colours(2), ANY_LANE_FILL)
        .iter()
        .map(holds)
        .collect();
    assert!(
        ["0", "1"].iter().all(|t| read.iter().any(|l| l == t)),
        "lanes read {read:?}"
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

/// Pixels of `picture` within a few levels of `colour`.
fn pixels_of(picture: &image::RgbaImage, colour: [u8; 3]) -> usize {
    picture
        .pixels()
        .filter(|p| (0..3).all(|i| p[i].abs_diff(colour[i]) <= 8))
        .count()
}

#[test]
#[ignore = "needs a display: run under xvfb-run (see .ci/run)"]
fn a_scripted_lesson_saves_its_slide_with_the_core_taking_turns() {
    let _machine = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let (slide, stdout) = scripted("--lesson time-slicing", &dir.path().join("slide.png"));
    assert!(stdout.contains("slide.png"), "{stdout}");
    // The slide holds the two threads' timeline: both colours, each a real share.
    let colours = thread_colours(2);
    let [a, b] = [pixels_of(&slide, colours[0]), pixels_of(&slide, colours[1])];
    assert!(
        a > 2_000 && b > 2_000,
        "{a} and {b} pixels of the two threads"
    );
}

#[test]
#[ignore = "needs a display: run under xvfb-run (see .ci/run)"]
fn the_synthetic_many_core_view_opens_folded_and_labelled() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("many.png");
    let args = [
        "gui",
        "--synthetic-many-core",
        "--window-size",
        "1280x800",
        "--exit",
        "--screenshot",
        png.to_str().unwrap(),
    ];
    let stdout = succeeded(&corelanes(&args));
    assert!(
        stdout.contains(&format!("wrote {}", png.display())),
        "{stdout}"
    );
    let picture = image::open(&png).unwrap().to_rgba8();
    // At 1280×800 the folded groups and the summary fit: the timeline is
    // not taller than the window, and shows the shared grey of the threads
    // beyond the palette and the summary's running green.
    assert!(picture.height() <= 800, "{} px tall", picture.height());
    let grey = corelanes::gui::palette::OTHERS.to_array();
    let green =
        corelanes::gui::palette::state(corelanes::telemetry::sched::SliceState::Running).to_array();
    assert!(pixels_of(&picture, [grey[0], grey[1], grey[2]]) > 20_000);
    assert!(pixels_of(&picture, [green[0], green[1], green[2]]) > 1_000);
}
