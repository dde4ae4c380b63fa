//! The command line as a user types it: real output, clear refusals.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use super::{command, corelanes, exclusive, finish_within, signal, wait_for_workers, words};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn run_prints_a_summary_and_writes_all_three_files() {
    let _machine = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let (json, csv, trace) = (path("s.json"), path("t.csv"), path("t.json"));
    let mut args = words(
        "run --workload cpu --threads 2 --tasks 4 --task-ms 10 --placement one-core --sched off",
    );
    args.extend(["--json", &json, "--csv", &csv, "--trace", &trace]);
    let out = corelanes(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("parallelism"), "{text}");
    let machine = text
        .lines()
        .find(|l| l.starts_with("machine: "))
        .unwrap_or_else(|| panic!("a machine line: {text}"));
    assert!(
        machine.contains(" logical") && machine.contains("kernel "),
        "{machine}"
    );
    let summary: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(summary["config"]["threads"], 2);
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert!(
        summary["environment"]["logical_cpus"].as_u64().unwrap() >= cpus as u64,
        "{}",
        summary["environment"]
    );
    assert_eq!(summary["tasks"].as_array().unwrap().len(), 4);
    assert!(std::fs::read_to_string(&csv).unwrap().lines().count() == 5);
    assert!(
        std::fs::read_to_string(&trace)
            .unwrap()
            .contains("traceEvents")
    );
}

#[test]
fn task_iters_are_the_work_of_each_task_and_kept_in_the_summary() {
    let _machine = exclusive();
    let out = corelanes(&words(
        "run --workload cpu --threads 1 --tasks 3 --task-iters 200000 --sched off --json -",
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["config"]["task_iters"], 200_000);
    assert_eq!(summary["tasks"].as_array().unwrap().len(), 3);
    let out = corelanes(&words(
        "run --workload mixed --threads 1 --tasks 1 --task-ms 2 --task-iters 1000 --sched off",
    ));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("1 tasks of 1000 iterations + 1 ms asleep"),
        "{text}"
    );
}

#[test]
fn json_to_stdout_is_the_summary_alone() {
    let _machine = exclusive();
    let out = corelanes(&words(
        "run --workload io --threads 2 --task-ms 5 --sched off --json -",
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: Value =
        serde_json::from_slice(&out.stdout).expect("stdout is exactly one JSON document");
    assert_eq!(
        summary["tasks"].as_array().unwrap().len(),
        8,
        "default tasks = 4 × threads"
    );
    assert!(
        summary["threads"][0]["pinned_core"].is_u64(),
        "spread pins by default"
    );
}

#[test]
fn bad_input_is_refused_with_one_clear_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing-folder/out.json");
    let missing = missing.to_string_lossy();
    let cases: [(&[&str], &str); 9] = [
        (&["--threads", "0"], "thread count 0"),
        (&["--threads", "5000"], "thread count 5000"),
        (
            &["--placement", "one-core", "--core", "4096"],
            "core 4096 does not exist",
        ),
        (
            &["--threads", "2", "--placement", "0"],
            "1 entries but there are 2 threads",
        ),
        (
            &["--workload", "amdahl", "--serial", "1.5"],
            "serial fraction 1.5",
        ),
        (&["--task-ms=-3"], "task duration -3"),
        (&["--task-iters", "0"], "task iteration count 0"),
        (
            &["--workload", "io", "--task-iters", "1000"],
            "io tasks compute nothing",
        ),
        (&["--json", &missing], "missing-folder/out.json"),
    ];
    for (args, expected) in cases {
        let mut all = vec!["run", "--tasks", "1"];
        all.extend_from_slice(args);
        let out = corelanes(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(expected),
            "{args:?}: expected '{expected}' in: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "one sentence: {err}");
    }
    assert!(
        !dir.path().join("missing-folder").exists(),
        "nothing half-written"
    );
}

#[test]
fn sweep_prints_a_table_of_speedups() {
    let _machine = exclusive();
    let sweep = "sweep --workload cpu --max-threads 2 --task-ms 20 --sched off";
    let out = corelanes(&words(sweep));
    assert!(out.status.success(), "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0][..3], ["threads", "wall", "speedup"], "{table}");
    assert_eq!(
        (rows[1][0], rows[1][3]),
        ("1", "1.00x"),
        "the base row: {table}"
    );
    assert_eq!(rows[2][0], "2", "{table}");
    assert!(
        table.contains("Amdahl fit: parallel fraction p = "),
        "{table}"
    );

    let out = corelanes(&words(&format!("{sweep} --json -")));
    assert!(out.status.success(), "{}", stderr(&out));
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    let points = body["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    assert_eq!(points[0]["threads"], 1);
    assert_eq!(
        points[0]["speedup"], 1.0,
        "speedup is against the 1-thread point"
    );
    // Same total work at every point: all 8 tasks, not a per-thread share.
    // (Counted, not timed: this VM's speed varies by a quarter from one
    // point to the next, so CPU times cannot tell 8 tasks from 4.)
    for p in points {
        assert_eq!(p["tasks"], 8, "{p}");
        assert!(p["cpu_ns"].as_u64().unwrap() > 0, "{p}");
    }
    let p = body["amdahl_parallel_fraction"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p));
}

#[test]
fn export_errors_name_their_cause_with_advice_that_fits() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().to_str().unwrap();
    let cases = [
        ("", "a value is required for '--json"),
        (folder, "it is a folder. Add a file name"),
        // Written after the run, as a full disk fails: the run is not wasted on a check.
        ("/dev/full", "no space is left on the disk. Free some space"),
    ];
    for (path, expected) in cases {
        let mut args = words("run --workload io --threads 1 --tasks 1 --task-ms 1 --sched off");
        args.extend(["--json", path]);
        let out = corelanes(&args);
        assert_eq!(out.status.code(), Some(2), "{path:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(expected),
            "{path:?}: expected '{expected}' in: {err}"
        );
        assert!(
            !err.contains("Choose a folder that exists"),
            "{path:?}: {err}"
        );
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing written"
    );
}

/// The `corelanes-disk-*` folders in `dir`.
fn disk_folders(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("corelanes-disk-")
        })
        .count()
}

#[test]
fn ctrl_c_or_sigterm_stops_a_run_keeps_what_was_measured_and_removes_its_files() {
    let _machine = exclusive();
    for (sig, code) in [("INT", 130), ("TERM", 143)] {
        let tmp = tempfile::tempdir().unwrap();
        let json = tmp.path().join("summary.json");
        // 1000 tasks of 20 ms on 2 threads: 10 s unless stopped.
        let mut args =
            words("run --workload disk --threads 2 --tasks 1000 --task-ms 20 --sched off");
        args.extend(["--json", json.to_str().unwrap()]);
        let mut child = command(&args).env("TMPDIR", tmp.path()).spawn().unwrap();
        wait_for_workers(&mut child);
        assert_eq!(
            disk_folders(tmp.path()),
            1,
            "the disk workload writes in TMPDIR"
        );
        signal(&child, sig);
        let out = finish_within(child, &args, Duration::from_secs(30));
        assert_eq!(out.status.code(), Some(code), "SIG{sig}: {}", stderr(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("stopped before the end"),
            "SIG{sig}: {stdout}"
        );
        let summary: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        assert_eq!(summary["status"], "cancelled", "SIG{sig}");
        assert!(
            summary["tasks"].as_array().unwrap().len() < 1000,
            "SIG{sig}"
        );
        assert_eq!(
            disk_folders(tmp.path()),
            0,
            "SIG{sig}: the temporary files are removed"
        );
    }
}

#[test]
fn ctrl_c_stops_a_sweep_and_keeps_the_points_measured() {
    let _machine = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("sweep.json");
    // On one core each point takes ~1 s; Ctrl+C comes once the first is reported.
    let mut args = words(
        "sweep --workload cpu --max-threads 2 --tasks 40 --task-ms 25 --placement one-core --sched off",
    );
    args.extend(["--json", json.to_str().unwrap()]);
    let mut child = command(&args).spawn().unwrap();
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    // Read to the end: a closed stderr would make the child's next message fail.
    for line in lines.map_while(Result::ok) {
        if line.contains("1 thread(s):") {
            signal(&child, "INT");
        }
        seen.push(line);
    }
    let out = finish_within(child, &args, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(130), "stderr: {seen:?}");
    let body: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(body["status"], "cancelled");
    let points = body["points"].as_array().unwrap();
    assert_eq!(
        points.len(),
        1,
        "the finished point is kept, the stopped one is not: {body}"
    );
    assert_eq!(points[0]["threads"], 1);
}

#[test]
fn a_second_ctrl_c_exits_at_once() {
    let _machine = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("summary.json");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    // A reader that never reads: a summary larger than the pipe's 64 KiB
    // blocks its writer, so after the first Ctrl+C the process is stuck
    // writing what it measured, and only the second can end it.
    let _reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let mut args =
        words("run --workload cpu --threads 2 --tasks 1000000 --task-ms 0.01 --sched off");
    args.extend(["--json", fifo.to_str().unwrap()]);
    let mut child = command(&args).spawn().unwrap();
    wait_for_workers(&mut child);
    // Thousands of 10 µs tasks: far more than 64 KiB of summary.
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "INT");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the first Ctrl+C stops the run, not the process"
    );
    signal(&child, "INT");
    let out = finish_within(child, &args, Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Ctrl+C again to quit at once"),
        "{}",
        stderr(&out)
    );
}
