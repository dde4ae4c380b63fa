//! Sessions: real runs saved as `.pftrace` come back whole, and bad files
//! are refused with one sentence, never a panic.

use std::path::{Path, PathBuf};

use corelanes::export::Summary;
use corelanes::run::{Placement, Recording};
use corelanes::session::{self, Machine, SessionError, proto};
use corelanes::telemetry::sched::{SchedMode, SchedSource};
use corelanes::workload::WorkloadKind;
use prost::Message;
use serde_json::Value;

use super::{config, corelanes, exclusive, exported, run, words};

/// A time-sliced run with the kernel capture on: preemptions, sleeps, waits.
fn sliced_run() -> Recording {
    let (core, _) = super::cores();
    run(corelanes::run::RunConfig {
        sched: SchedMode::Auto,
        ..config(WorkloadKind::Mixed, 3, 9, 4.0, Placement::OneCore(core))
    })
}

fn json(summary: &Summary) -> Value {
    serde_json::to_value(summary).unwrap()
}

fn save(dir: &Path, runs: &[&Recording]) -> PathBuf {
    let path = dir.join("s.pftrace");
    let machine = Machine::this();
    let pairs: Vec<_> = runs.iter().map(|r| (*r, &machine)).collect();
    session::save(&path, &pairs).unwrap();
    path
}

#[test]
fn runs_come_back_whole_from_a_session() {
    let _machine = exclusive();
    let first = sliced_run();
    let second = run(config(WorkloadKind::Cpu, 2, 4, 2.0, Placement::Spread));
    let slices = first.sched.as_ref().map_or(0, |s| s.slices.len());
    assert!(
        first.sched_source == SchedSource::Off || slices > 0,
        "the capture saw the workers"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = save(dir.path(), &[&first, &second]);
    let back = session::open(&path).unwrap();
    assert_eq!(back.len(), 2, "both runs, in order");
    for (was, is) in [&first, &second].into_iter().zip(&back) {
        let rec = &is.recording;
        assert_eq!(rec.config, was.config);
        assert_eq!(rec.status, was.status);
        assert_eq!(rec.tasks, was.tasks);
        assert_eq!(rec.task_cpu, was.task_cpu, "where the tasks' CPU came from");
        assert_eq!(rec.threads, was.threads);
        assert_eq!(rec.slices(), was.slices());
        assert_eq!(
            rec.sched.as_ref().map(|s| &s.per_thread),
            was.sched.as_ref().map(|s| &s.per_thread)
        );
        assert_eq!(rec.failures, was.failures);
        assert!(was.environment.is_some(), "a run records its machine");
        assert_eq!(rec.environment, was.environment);
        assert_eq!(rec.metrics(), was.metrics(), "figures");
        assert_eq!(is.machine, Machine::this());
        assert_eq!(json(&is.summary()), json(&Summary::of(was)));
    }
}

/// Makes the session at `path` look as if an older writer had saved it,
/// one without the metadata's object `key`: the key is renamed (its first
/// letter made an X), keeping every length, so the reader passes over it.
fn as_an_older_writer_wrote(path: &Path, key: &str) {
    let mut bytes = std::fs::read(path).unwrap();
    let quoted = format!("\"{key}\":{{");
    let at = bytes
        .windows(quoted.len())
        .position(|w| w == quoted.as_bytes())
        .unwrap_or_else(|| panic!("the metadata holds {key}"));
    bytes[at + 1] = b'X';
    std::fs::write(path, &bytes).unwrap();
}

#[test]
fn a_session_saved_before_environments_were_recorded_still_opens() {
    let _machine = exclusive();
    let was = run(config(WorkloadKind::Cpu, 1, 2, 1.0, Placement::Spread));
    let dir = tempfile::tempdir().unwrap();
    let path = save(dir.path(), &[&was]);
    as_an_older_writer_wrote(&path, "environment");
    let back = session::open(&path).unwrap();
    assert_eq!(back[0].recording.environment, None);
    assert_eq!(back[0].recording.tasks, was.tasks);
    assert!(json(&back[0].summary())["environment"].is_null());
}

/// Saves `was` as made on `machine` and reads it back.
fn save_on(dir: &Path, was: &Recording, machine: &Machine) -> PathBuf {
    let path = dir.join("there.pftrace");
    session::save(&path, &[(was, machine)]).unwrap();
    path
}

#[test]
fn a_session_opened_on_another_machine_keeps_the_one_it_ran_on() {
    let _machine = exclusive();
    let was = run(config(WorkloadKind::Cpu, 1, 2, 1.0, Placement::Spread));
    // A run made on a two-socket Xeon, opened here (2 cores).
    let there = Machine {
        allowed_cores: (0..16).collect(),
        cpu_iters_per_ms: 1234.5,
        layout: super::topology::fixture("xeon-2s"),
    };
    let dir = tempfile::tempdir().unwrap();
    let path = save_on(dir.path(), &was, &there);
    let back = session::open(&path).unwrap();
    assert_eq!(back[0].machine, there);
    let topo = back[0].machine.topology();
    assert_eq!(topo.allowed, there.allowed_cores);
    assert_eq!(topo.system_cpus, 16);
    assert!(topo.layout.is_grouped(), "two packages: lanes in groups");
    assert_eq!(topo.core_label(9), "cpu 9 · 0:1:1", "package:core:thread");
    assert_eq!(
        topo.smt_siblings.len(),
        8,
        "its SMT pairs, not this machine's"
    );

    // A file from before layouts were kept: its own cores, plainly named.
    as_an_older_writer_wrote(&path, "layout");
    let old = session::open(&path).unwrap().remove(0).machine.topology();
    assert_eq!(old.allowed, there.allowed_cores, "the cores it was allowed");
    assert_eq!(old.system_cpus, 16);
    assert_eq!(old.core_label(9), "core 9");
    assert!(!old.layout.is_grouped());
}

#[test]
fn open_prints_the_summary_that_run_printed() {
    let _machine = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("run.pftrace");
    let file = file.to_str().unwrap();
    let mut args = words(
        "run --workload mixed --threads 2 --tasks 6 --task-ms 4 --placement one-core --json -",
    );
    args.extend(["--pftrace", file]);
    let ran = corelanes(&args);
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let opened = corelanes(&["open", file, "--json", "-"]);
    assert!(
        opened.status.success(),
        "{}",
        String::from_utf8_lossy(&opened.stderr)
    );
    let ran: Value = serde_json::from_slice(&ran.stdout).unwrap();
    let opened: Value = serde_json::from_slice(&opened.stdout).unwrap();
    assert!(!ran["sched"]["slices"].as_array().unwrap().is_empty());
    assert_eq!(opened, ran);
    let human = corelanes(&["open", file]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains("parallelism") && text.contains("worker-1"),
        "{text}"
    );
}

/// Where each top-level packet ends.
fn packet_ends(bytes: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut at = bytes;
    while !at.is_empty() {
        prost::encoding::decode_key(&mut at).unwrap();
        let len = prost::encoding::decode_varint(&mut at).unwrap() as usize;
        at = &at[len..];
        ends.push(bytes.len() - at.len());
    }
    ends
}

/// Opens `bytes` written to a file and returns the refusal, checked to be one sentence naming it.
fn refusal(dir: &Path, name: &str, bytes: &[u8]) -> SessionError {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let err = session::open(&path).expect_err("a bad file is refused");
    let text = err.to_string();
    assert!(
        text.contains(name) && text.ends_with('.') && !text.contains('\n'),
        "{text}"
    );
    err
}

#[test]
fn bad_files_are_refused_with_one_sentence() {
    let _machine = exclusive();
    let rec = sliced_run();
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(save(dir.path(), &[&rec])).unwrap();
    let d = dir.path();

    let err = refusal(d, "half.pftrace", &good[..good.len() / 2]);
    assert!(matches!(err, SessionError::Truncated { .. }), "{err}");
    // Cut at a packet boundary, every packet decodes: the counts tell.
    let ends = packet_ends(&good);
    let err = refusal(d, "short.pftrace", &good[..ends[ends.len() - 2]]);
    assert!(matches!(err, SessionError::Truncated { .. }), "{err}");

    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let noise: Vec<u8> = (0..65536)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    refusal(d, "noise.pftrace", &noise);

    let chrome = exported(corelanes::export::write_chrome_trace, &rec);
    let err = refusal(d, "chrome.pftrace", chrome.as_bytes());
    assert!(err.to_string().contains("JSON"), "{err}");

    let foreign = proto::TracePacket {
        trusted_packet_sequence_id: Some(7),
        ftrace_events: Some(proto::FtraceEventBundle {
            cpu: Some(0),
            event: vec![proto::FtraceEvent {
                timestamp: Some(1_000),
                pid: Some(0),
                sched_switch: Some(proto::SchedSwitchFtraceEvent {
                    next_pid: Some(42),
                    ..Default::default()
                }),
            }],
        }),
        ..Default::default()
    };
    let mut bytes = vec![0x0a];
    foreign.encode_length_delimited(&mut bytes).unwrap();
    let err = refusal(d, "foreign.pftrace", &bytes);
    assert!(matches!(err, SessionError::NoRuns { .. }), "{err}");

    // A switch on a CPU beyond 16 bits, which no kernel has (a slice keeps
    // its core in 16 bits): refused, not cut short or a panic.
    let mut beyond = Vec::new();
    let mut rest = &good[..];
    let mut moved = false;
    for end in packet_ends(&good) {
        let whole = &good[good.len() - rest.len()..end];
        rest = &good[end..];
        let mut body = whole;
        prost::encoding::decode_key(&mut body).unwrap();
        let mut packet = proto::TracePacket::decode_length_delimited(body).unwrap();
        if let Some(bundle) = packet.ftrace_events.as_mut().filter(|_| !moved) {
            bundle.cpu = Some(70_000);
            moved = true;
        }
        beyond.push(0x0a);
        packet.encode_length_delimited(&mut beyond).unwrap();
    }
    assert!(moved, "the run has kernel switches");
    let err = refusal(d, "beyond.pftrace", &beyond);
    assert!(
        matches!(err, SessionError::Damaged { .. }) && err.to_string().contains("CPU 70000"),
        "{err}"
    );

    // Same length, so every packet length still holds: only the version differs.
    let mut newer = good.clone();
    let at = newer
        .windows(11)
        .position(|w| w == b"\"format\":1,")
        .expect("the metadata names its format");
    newer[at + 9] = b'9';
    let err = refusal(d, "newer.pftrace", &newer);
    assert!(
        matches!(err, SessionError::Newer { version: 9, .. }),
        "{err}"
    );

    // A sparse terabyte: refused by its size before a byte is read.
    let huge = d.join("huge.pftrace");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(1 << 40)
        .unwrap();
    let err = session::open(&huge).unwrap_err();
    assert!(matches!(err, SessionError::TooLarge { .. }), "{err}");
}

#[test]
fn open_refuses_a_bad_file_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.pftrace");
    std::fs::write(&path, b"{\"traceEvents\": []}").unwrap();
    let out = corelanes(&["open", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not a corelanes session") && err.lines().count() == 1,
        "{err}"
    );
}
