//! `--system-wide`: CPU-wide context switches name the other programs that
//! took the run's cores. Needs CAP_PERFMON, root or paranoid ≤ 0, so these
//! tests are not in the unprivileged passes' filters; the refusal test runs
//! the binary as `nobody` when it is root.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

use corelanes::telemetry::sched::perf_checks_apply;
use serde_json::Value;

use super::{corelanes, cores, exclusive};

fn is_root() -> bool {
    // The effective uid (the third field of `Uid:`).
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
    })
}

fn paranoid() -> i32 {
    std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(2)
}

/// A folder `nobody` can read and write, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(what: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("corelanes-{what}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A shell busy loop pinned to `core`, under its own name (`busyloop`, a
/// copy of /bin/sh) so that the report can be checked for it by name.
pub(super) struct BusyLoop(Child);

impl BusyLoop {
    pub(super) fn start(dir: &Path, core: usize) -> BusyLoop {
        let shell = dir.join("busyloop");
        std::fs::copy("/bin/sh", &shell).unwrap();
        let child = Command::new("taskset")
            .args(["-c", &core.to_string()])
            .arg(&shell)
            .args(["-c", "while :; do :; done"])
            .spawn()
            .expect("taskset starts the busy loop");
        std::thread::sleep(std::time::Duration::from_millis(200));
        BusyLoop(child)
    }
}

impl Drop for BusyLoop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn summary(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Nanoseconds the task named `name` ran on `core`, by `sched.others`.
fn others_ns(json: &Value, name: &str, core: usize) -> u64 {
    json["sched"]["others"]
        .as_array()
        .expect("sched.others is a list")
        .iter()
        .filter(|o| o["name"] == name && o["core"] == core)
        .map(|o| o["end_ns"].as_u64().unwrap() - o["start_ns"].as_u64().unwrap())
        .sum()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Whether this process may capture system-wide (else the test is skipped,
/// or fails where CI requires perf).
fn allowed_here(out: &Output) -> bool {
    let (_, err) = text(out);
    perf_checks_apply(
        (!out.status.success() && err.contains("--system-wide")).then_some(err.trim()),
    )
}

#[test]
fn run_names_a_busy_loop_on_its_core_only_when_asked() {
    let _machine = exclusive();
    let scratch = Scratch::new("wide-run");
    let core = cores().0.to_string();
    let _busy = BusyLoop::start(&scratch.0, cores().0);
    let json = scratch.0.join("run.json");
    let args = |wide: bool| {
        let mut a = vec![
            "run",
            "--workload",
            "cpu",
            "--threads",
            "1",
            "--tasks",
            "4",
            "--task-ms",
            "100",
            "--placement",
            "one-core",
            "--core",
            &core,
            "--json",
        ];
        a.push(json.to_str().unwrap());
        if wide {
            a.push("--system-wide");
        }
        a
    };
    let out = corelanes(&args(true));
    if !allowed_here(&out) {
        return;
    }
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let with = summary(&json);
    assert_eq!(with["sched"]["system_wide"], true);
    assert_eq!(with["config"]["system_wide"], true);
    let wall = with["wall_ns"].as_u64().unwrap();
    let busy = others_ns(&with, "busyloop", cores().0);
    // Two CPU-bound tasks share the core about half and half; 25 % leaves
    // room for a noisy shared machine.
    assert!(
        busy * 4 >= wall,
        "busyloop had {busy} ns of the run's core in a {wall} ns run: {stdout}"
    );
    // Named among the others (beside other load, not always first).
    let prefix = format!("other programs on the run's cores ({core}):");
    let line = stdout.lines().find(|l| l.starts_with(&prefix));
    assert!(line.is_some_and(|l| l.contains(" busyloop ")), "{stdout}");

    let out = corelanes(&args(false));
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let without = summary(&json);
    assert_eq!(without["sched"]["system_wide"], false);
    assert_eq!(without["sched"]["others"].as_array().map(Vec::len), Some(0));
    assert!(!stdout.contains("other programs on"), "{stdout}");
}

#[test]
fn record_names_a_busy_loop_beside_the_program() {
    let _machine = exclusive();
    let scratch = Scratch::new("wide-record");
    let core = cores().0.to_string();
    let _busy = BusyLoop::start(&scratch.0, cores().0);
    let json = scratch.0.join("record.json");
    let out = corelanes(&[
        "record",
        "--system-wide",
        "--json",
        json.to_str().unwrap(),
        "--",
        "taskset",
        "-c",
        &core,
        "timeout",
        "1",
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    if !allowed_here(&out) {
        return;
    }
    let (stdout, stderr) = text(&out);
    // timeout's status when it stopped the loop.
    assert_eq!(out.status.code(), Some(124), "{stdout}\n{stderr}");
    let rec = summary(&json);
    assert_eq!(rec["sched"]["system_wide"], true);
    let busy = others_ns(&rec, "busyloop", cores().0);
    assert!(busy >= 250_000_000, "busyloop had only {busy} ns: {stdout}");
    // The program's own threads are its lanes, never "others".
    let tids: Vec<&Value> = rec["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["tid"])
        .collect();
    assert!(
        rec["sched"]["others"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| !tids.contains(&&o["tid"])),
        "a thread of the program is listed among the others"
    );
}

/// Unprivileged (as `nobody` when root, or as this user where paranoid > 0):
/// `--system-wide` is refused with one sentence saying what it needs, exit 2,
/// and nothing runs.
#[test]
fn unprivileged_system_wide_is_refused_with_the_reason() {
    if paranoid() <= 0 {
        eprintln!("SKIPPED: kernel.perf_event_paranoid ≤ 0 lets anyone capture system-wide");
        return;
    }
    let scratch = Scratch::new("wide-refused");
    let as_nobody = is_root();
    let binary = std::env::var_os("CORELANES_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_corelanes").into());
    let copy = scratch.0.join("corelanes");
    std::fs::copy(&binary, &copy).unwrap();
    let ran = scratch.0.join("ran");
    let run = |args: &[&str]| {
        let mut command = if as_nobody {
            let mut c = Command::new("runuser");
            c.args(["-u", "nobody", "--"]).arg(&copy);
            c
        } else {
            Command::new(&copy)
        };
        command.args(args).current_dir(&scratch.0).output().unwrap()
    };
    for args in [
        vec!["run", "--threads", "1", "--tasks", "1", "--system-wide"],
        vec![
            "record",
            "--system-wide",
            "--",
            "touch",
            ran.to_str().unwrap(),
        ],
    ] {
        let out = run(&args);
        let (stdout, stderr) = text(&out);
        if !as_nobody && out.status.success() {
            eprintln!("SKIPPED: this user may capture system-wide (CAP_PERFMON?)");
            return;
        }
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stdout}\n{stderr}");
        assert!(stdout.is_empty(), "{args:?} printed: {stdout}");
        assert_eq!(
            stderr.lines().count(),
            1,
            "{args:?}: one sentence: {stderr}"
        );
        assert!(
            stderr.contains(
                "--system-wide needs CAP_PERFMON or root, or `sudo sysctl kernel.perf_event_paranoid=0`"
            ),
            "{args:?}: {stderr}"
        );
        assert!(!ran.exists(), "{args:?}: the program ran");
    }
}
