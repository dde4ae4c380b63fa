//! Recording another program: launch a command with the scheduler capture on
//! from its first instruction, or attach to a running process, and produce a
//! [`Recording`] as a workload run does (threads = the program's, no tasks,
//! `sched` = the kernel's slices), so that every export, the session writer,
//! the figures and the CLI report take it unchanged.
//!
//! Like [`crate::run::start`], [`start`] returns at once with a handle whose
//! events ([`RunEvent`]) a caller ingests into a `Recording` as they come:
//! `Started`, `Program`, `Environment`, then `ThreadSeen` as threads appear and
//! live `Slices`, then `Sched`, each thread's `ThreadDone`, `Program` again
//! with the exit status, and `Finished`.
//!
//! Launch: the command is forked stopped before `exec` ([`crate::sys::process`]),
//! the per-CPU events are opened on its pid with `inherit` and
//! `enable_on_exec`, then it is released. Attach: one event per existing
//! thread and CPU, each inherited by the threads it starts later.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::environment::Environment;
use crate::run::controller::Controller;
use crate::run::{Placement, Recording, RunConfig, failed};
use crate::sys;
use crate::telemetry::events::{RunEvent, ThreadRecord};
use crate::telemetry::sched::perf::{Target, threads_of};
use crate::telemetry::sched::{Registry, SchedCapture, SchedMode, SchedReport};
use crate::workload::WorkloadKind;

/// Which program to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Program {
    /// Run this command (program and arguments) and record it until it exits.
    Launch(Vec<OsString>),
    /// Record this running process of the same user until stopped or it exits.
    Attach(i32),
}

/// What to record and for how long.
#[derive(Clone, Debug)]
pub struct RecordConfig {
    pub program: Program,
    /// Stop after this long (the program keeps running).
    pub duration: Option<Duration>,
    /// `Auto`: perf, else /proc sampling (coarse, and it sees a thread only
    /// from the tick after it appears); `Perf` or `Procfs` alone; `Off`: nothing.
    pub sched: SchedMode,
    /// Also capture the other tasks on the CPUs (`--system-wide`; only when asked).
    pub system_wide: bool,
}

/// The recorded program, as the summary JSON and the report name it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProgramInfo {
    /// The command line launched, or the attached process's own (`/proc/PID/cmdline`).
    pub command: String,
    pub pid: i32,
    /// Attached to a running process rather than launched.
    pub attached: bool,
    /// How it ended, as a shell says it (its code, or 128 + the signal that
    /// killed it); `None` while it runs, after attach, or if it outlived the recording.
    pub exit_status: Option<i32>,
}

/// How long a launched program may take to exit after the stop was
/// forwarded to it as SIGINT; past it the recording ends and it runs on.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

/// How long after a stop a launched program still running gets SIGINT.
const FORWARD_AFTER: Duration = Duration::from_millis(100);

/// How often the controller looks at the program and the new threads.
const TICK: Duration = Duration::from_millis(20);

/// A recording in progress: read its events as a run's.
pub struct RecordHandle {
    controller: Controller,
    stop: Arc<AtomicBool>,
}

impl RecordHandle {
    pub fn events(&self) -> &Receiver<RunEvent> {
        self.controller.events()
    }

    /// The events that arrived since the last call, without waiting.
    pub fn try_events(&mut self) -> Vec<RunEvent> {
        self.controller.try_events()
    }

    /// Call once the events channel has closed: the events that end the
    /// recording as failed if its controller thread panicked, else none.
    pub fn obituary(&mut self) -> Vec<RunEvent> {
        self.controller.obituary()
    }

    /// Ends the recording: a launched program gets SIGINT (as Ctrl+C in its
    /// terminal would) and [`STOP_GRACE`] to exit, then runs on unrecorded;
    /// an attached one is left alone.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Starts recording `config.program`.
pub fn start(config: RecordConfig) -> RecordHandle {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    RecordHandle {
        controller: Controller::spawn("corelanes-record", "recording", move |tx| {
            control(&config, &flag, &tx);
        }),
        stop,
    }
}

/// Records to the end, or until `stop` is ready (as [`RecordHandle::stop`]).
pub fn record_until(config: RecordConfig, stop: &Receiver<()>) -> Recording {
    let mut recording = Recording::new(program_config(config.sched, config.system_wide));
    let mut handle = start(config);
    crate::run::ingest_until(&mut recording, handle.events(), stop, || handle.stop());
    for event in handle.obituary() {
        recording.ingest(event);
    }
    recording
}

/// The `config` of a program's recording: no workload of ours ran, no task,
/// no pinning (the summary JSON's schema has the field, so it is filled plainly).
pub fn program_config(sched: SchedMode, system_wide: bool) -> RunConfig {
    RunConfig {
        workload: WorkloadKind::Cpu,
        threads: 0,
        tasks: 0,
        task_ms: 0.0,
        placement: Placement::Unpinned,
        serial: 0.0,
        sched,
        system_wide,
        task_iters: None,
        until_stop: false,
    }
}

/// The program being recorded, from the controller's side.
enum Running {
    Launched(Child),
    Attached(i32),
}

impl Running {
    /// The exit status once it has ended (attach: `Some(None)`: ended, status not ours).
    fn ended(&mut self) -> Option<Option<i32>> {
        match self {
            Running::Launched(child) => child
                .try_wait()
                .ok()
                .flatten()
                .map(|status| Some(exit_status(status))),
            Running::Attached(pid) => (!process_alive(*pid)).then_some(None),
        }
    }
}

/// The status a shell reports: the exit code, or 128 + the killing signal.
fn exit_status(status: std::process::ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

/// Whether process `pid` still runs (a zombie has ended: it only awaits its parent).
fn process_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        crate::telemetry::sched::procfs::parse_stat(&stat)
            .is_some_and(|(state, _)| state != 'Z' && state != 'X')
    })
}

/// The effective uid of `/proc/WHO` (a pid, or "self"), from its status.
fn effective_uid(who: &str) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{who}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Every thread of process `pid` and of its descendants, now.
fn process_tree(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let mut pending = vec![pid];
    while let Some(pid) = pending.pop() {
        for tid in threads_of(pid).unwrap_or_default() {
            out.push(tid);
            let children = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/children"))
                .unwrap_or_default();
            pending.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<i32>().ok()),
            );
        }
    }
    out
}

/// The CPUs a program may run on: every online one (it may widen its own
/// affinity beyond ours, and an attached one has its own).
fn online_cpus() -> Vec<usize> {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .map(|text| crate::topology::parse_cpu_list(text.trim()))
        .ok()
        .filter(|cpus| !cpus.is_empty())
        .unwrap_or_else(|| crate::topology::Topology::get().allowed.clone())
}

fn command_line(args: &[OsString]) -> String {
    args.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Opens the capture on the program and starts it (launch) or finds it (attach).
fn begin(
    config: &RecordConfig,
    cpus: &[usize],
) -> Result<(SchedCapture, Running, ProgramInfo, u64), String> {
    match &config.program {
        Program::Launch(args) => {
            let (program, rest) = args
                .split_first()
                .ok_or_else(|| "no command to record".to_owned())?;
            let mut command = Command::new(program);
            command.args(rest);
            let gated = sys::process::spawn_gated(command)
                .map_err(|e| format!("cannot start {}: {e}", program.to_string_lossy()))?;
            let pid = gated.pid();
            // Dropping `gated` on error makes the child give up before exec.
            let capture = SchedCapture::start_for(
                config.sched,
                cpus,
                Target::Launch(pid),
                config.system_wide,
            )
            .map_err(|e| e.to_string())?;
            let origin_ns = sys::monotonic_ns();
            let child = gated
                .release()
                .map_err(|e| format!("cannot run {}: {e}", program.to_string_lossy()))?;
            let info = ProgramInfo {
                command: command_line(args),
                pid,
                attached: false,
                exit_status: None,
            };
            Ok((capture, Running::Launched(child), info, origin_ns))
        }
        &Program::Attach(pid) => {
            // One event per thread and CPU: use every descriptor allowed.
            let _ = sys::process::raise_open_files_limit();
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map_err(|e| format!("no process {pid} to attach to ({e})"))?;
            if let (Some(theirs), Some(ours)) =
                (effective_uid(&pid.to_string()), effective_uid("self"))
                && theirs != ours
                && ours != 0
            {
                return Err(format!(
                    "process {pid} belongs to another user (uid {theirs}): the kernel lets a user \
                     record only their own processes; run corelanes as that user, or as root"
                ));
            }
            let capture = SchedCapture::start_for(
                config.sched,
                cpus,
                Target::Attach(pid),
                config.system_wide,
            )
            .map_err(|e| e.to_string())?;
            let args: Vec<OsString> = cmdline
                .split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned().into())
                .collect();
            let info = ProgramInfo {
                command: command_line(&args),
                pid,
                attached: true,
                exit_status: None,
            };
            Ok((capture, Running::Attached(pid), info, sys::monotonic_ns()))
        }
    }
}

/// A thread of the program as far as known now.
fn thread_record(registry: &Registry, index: usize, tid: i32) -> ThreadRecord {
    ThreadRecord {
        index,
        name: registry.name(tid).unwrap_or_else(|| format!("tid {tid}")),
        tid,
        ..ThreadRecord::default()
    }
}

fn control(config: &RecordConfig, stop: &AtomicBool, tx: &Sender<RunEvent>) {
    let environment = Environment::at_run_start();
    let cpus = online_cpus();
    let (capture, mut running, mut info, origin_ns) = match begin(config, &cpus) {
        Ok(begun) => begun,
        Err(why) => {
            for event in failed(why) {
                let _ = tx.send(event);
            }
            return;
        }
    };
    let mut seen = 0;
    let threads: Vec<ThreadRecord> = capture
        .registry()
        .since(&mut seen)
        .iter()
        .map(|r| thread_record(capture.registry(), r.index, r.tid))
        .collect();
    let _ = tx.send(RunEvent::Started {
        origin_ns,
        threads,
        sched_source: capture.source(),
        sched_note: capture.note().map(str::to_owned),
    });
    let _ = tx.send(RunEvent::Program(info.clone()));
    let _ = tx.send(RunEvent::Environment(Box::new(environment)));
    let live_tx = tx.clone();
    capture.stream(
        origin_ns,
        Box::new(move |slices| {
            let _ = live_tx.send(RunEvent::Slices(slices));
        }),
    );
    let deadline = config.duration.map(|d| Instant::now() + d);
    let mut stopped_at: Option<Instant> = None;
    let mut ended = false;
    let mut forwarded = false;
    let mut next_scan = Instant::now();
    loop {
        if capture.samples_proc() && Instant::now() >= next_scan {
            // No records tell of the threads sampled from /proc, nor of
            // those they start: look for them, and for names changed at exec.
            let began = Instant::now();
            let now = sys::monotonic_ns();
            let found = process_tree(info.pid)
                .into_iter()
                .map(|tid| {
                    let comm = std::fs::read_to_string(format!("/proc/{tid}/comm")).ok();
                    (tid, comm.map(|c| c.trim_end().to_owned()))
                })
                .collect();
            capture.found_in_proc(found, now);
            // Thousands of threads take a while to list: a tenth of a CPU at most.
            next_scan = Instant::now() + began.elapsed() * 9;
        }
        // Renamed threads again: the lanes show the name a thread took at exec while it runs.
        let renamed = capture.registry().renamed();
        for r in capture
            .registry()
            .since(&mut seen)
            .into_iter()
            .chain(renamed)
        {
            let _ = tx.send(RunEvent::ThreadSeen(thread_record(
                capture.registry(),
                r.index,
                r.tid,
            )));
        }
        if let Some(status) = running.ended() {
            info.exit_status = status;
            ended = true;
            break;
        }
        let asked = stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d);
        if asked && stopped_at.is_none() {
            if let Running::Attached(_) = running {
                break; // not ours to stop
            }
            stopped_at = Some(Instant::now());
        }
        if let (Some(at), Running::Launched(child)) = (stopped_at, &running) {
            if at.elapsed() >= STOP_GRACE {
                break;
            }
            // Ctrl+C in its terminal reached it too: forward it only to a
            // program still running a moment later (a signal sent with
            // `kill` to corelanes alone), so that it is not interrupted twice.
            if !forwarded && at.elapsed() >= FORWARD_AFTER {
                let _ = sys::process::send_signal(child.id() as i32, libc::SIGINT);
                forwarded = true;
            }
        }
        std::thread::sleep(TICK);
    }
    let stopped_ns = sys::monotonic_ns() - origin_ns;
    let report = capture.finish(origin_ns);
    // The capture runs on while it waits for the threads' exit records (or
    // a short grace, when they live on): its slices end there, so does the wall.
    let wall_ns = report
        .slices
        .iter()
        .map(|s| s.end_ns)
        .max()
        .unwrap_or(0)
        .max(stopped_ns);
    let done = finished_threads(capture.registry(), &report);
    let _ = tx.send(RunEvent::Sched(report));
    for thread in done {
        let _ = tx.send(RunEvent::ThreadDone(thread));
    }
    let _ = tx.send(RunEvent::Program(info));
    let _ = tx.send(RunEvent::Finished {
        wall_ns,
        // The program's own end, or the planned duration, is a complete recording.
        cancelled: !ended && stop.load(Ordering::Relaxed),
    });
}

/// Every thread of the program with its totals from the kernel's slices
/// (the only counters there are for another process's threads).
fn finished_threads(registry: &Registry, report: &SchedReport) -> Vec<ThreadRecord> {
    registry
        .snapshot()
        .iter()
        .map(|r| {
            let t = report.per_thread.get(r.index).cloned().unwrap_or_default();
            ThreadRecord {
                cpu_ns: t.running_ns,
                voluntary_switches: t.switches_out_blocked,
                involuntary_switches: t.switches_out_preempted,
                run_delay_ns: t.runnable_ns,
                migrations: t.migrations,
                ..thread_record(registry, r.index, r.tid)
            }
        })
        .collect()
}
