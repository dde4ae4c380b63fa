//! The one integration test binary: real threads on real cores, the CLI as a
//! user runs it, the app's state driven without a GPU, and (ignored unless a
//! display is present) a real window.
//!
//! Tests that run workloads take `exclusive()` first: on a 2-core machine two
//! CPU-bound experiments at once would measure each other, not the claim.

mod claims;
mod cli;
mod environment;
mod exports;
#[cfg(feature = "gui")]
mod gui;
#[cfg(feature = "gui")]
mod gui_experiments;
#[cfg(feature = "gui")]
mod gui_program;
#[cfg(feature = "gui")]
mod gui_sessions;
mod lesson;
mod lesson_wait;
mod live;
mod record;
mod robustness;
mod sched;
mod session;
mod system_wide;
mod topology;
#[cfg(feature = "gui")]
mod window;

use std::collections::BTreeMap;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use corelanes::run::{self, Placement, Recording, RunConfig};
use corelanes::telemetry::sched::{
    SchedMode, SchedSlice, SchedSource, SliceState, check_perf_against_env, overlap_ns,
};
use corelanes::topology::Topology;
use corelanes::workload::WorkloadKind;

static MACHINE: Mutex<()> = Mutex::new(());

/// Holds the machine for one experiment at a time.
pub fn exclusive() -> MutexGuard<'static, ()> {
    MACHINE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub fn config(
    workload: WorkloadKind,
    threads: usize,
    tasks: usize,
    task_ms: f64,
    placement: Placement,
) -> RunConfig {
    RunConfig {
        workload,
        threads,
        tasks,
        task_ms,
        placement,
        serial: 0.25,
        sched: SchedMode::Off,
        system_wide: false,
        task_iters: None,
        until_stop: false,
    }
}

pub fn run(config: RunConfig) -> Recording {
    let valid = config
        .validate(Topology::get())
        .expect("test configs are valid");
    let rec = run::run_to_end(valid);
    assert!(
        rec.failures.is_empty(),
        "unexpected failures: {:?}",
        rec.failures
    );
    rec
}

/// Runs `config` with the kernel's scheduler capture on (perf, else procfs).
pub fn measured(mut config: RunConfig) -> Recording {
    config.sched = SchedMode::Auto;
    run(config)
}

/// The kernel's own account of a run: when each worker was on which core,
/// and when it waited. Claims judged by it hold beside other load, where
/// wall-time ratios do not: other programs lengthen the wall, not what the
/// kernel says our threads did with the CPU they got.
pub struct Kernel<'a> {
    rec: &'a Recording,
    slices: &'a [SchedSlice],
    pub source: SchedSource,
}

impl<'a> Kernel<'a> {
    /// The report of a run made with capture on. Where perf was refused the
    /// coarser procfs report is judged (with its own bounds) unless CI
    /// requires perf here.
    pub fn of(rec: &'a Recording) -> Kernel<'a> {
        let report = rec.sched.as_ref().expect("a report when capture is on");
        // Procfs asked for is a choice, and says nothing about perf.
        if rec.config.sched != SchedMode::Procfs {
            let refusal = (rec.sched_source != SchedSource::Perf).then(|| {
                let note = rec.sched_note.as_deref().unwrap_or("no note");
                eprintln!("judged by {:?} slices: {note}", rec.sched_source);
                note
            });
            check_perf_against_env(refusal);
        }
        Kernel {
            rec,
            slices: &report.slices,
            source: rec.sched_source,
        }
    }

    fn intervals(&self, keep: impl Fn(&SchedSlice) -> bool) -> Vec<(u64, u64)> {
        let mut v: Vec<_> = self
            .slices
            .iter()
            .filter(|s| keep(s))
            .map(|s| (s.start_ns, s.end_ns))
            .collect();
        v.sort_unstable();
        v
    }

    /// One thread's time in `state`, sorted.
    pub fn of_thread(&self, thread: usize, state: SliceState) -> Vec<(u64, u64)> {
        self.intervals(|s| s.thread() == thread && s.state == state)
    }

    /// One thread's slices, whatever their state, sorted.
    pub fn of_thread_any(&self, thread: usize) -> Vec<(u64, u64)> {
        self.intervals(|s| s.thread() == thread)
    }

    pub fn total(&self, thread: usize, state: SliceState) -> u64 {
        self.of_thread(thread, state)
            .iter()
            .map(|(a, b)| b - a)
            .sum()
    }

    /// Every thread's running time.
    pub fn running_ns(&self) -> u64 {
        (0..self.rec.threads.len())
            .map(|t| self.total(t, SliceState::Running))
            .sum()
    }

    /// Running slices on `core`, in start order, each with its thread.
    pub fn running_on(&self, core: usize) -> Vec<&'a SchedSlice> {
        let mut on: Vec<_> = self
            .slices
            .iter()
            .filter(|s| s.state == SliceState::Running && s.core() == core)
            .collect();
        on.sort_by_key(|s| s.start_ns);
        on
    }

    /// How long threads 0 and 1 ran at the same instant.
    pub fn ran_together_ns(&self) -> u64 {
        let running = |t| self.of_thread(t, SliceState::Running);
        overlap_ns(&running(0), &running(1))
    }

    /// Asserts that the threads took turns: their running slices overlap
    /// for at most a share of their running time: `exact` where perf's
    /// exact switches are judged (the caller says why), 12.5 % for procfs,
    /// which places each thread's edges within its ~1 ms sampling interval
    /// on its own (1-16 % of one thread's time, of two, was seen to overlap).
    pub fn assert_took_turns(&self, exact: f64) {
        let bound = match self.source {
            SchedSource::Perf => exact,
            _ => 0.125,
        };
        let (together, running) = (self.ran_together_ns(), self.running_ns());
        assert!(
            together as f64 <= bound * running as f64,
            "ran together {together} ns of {running} ns running ({:?})",
            self.source
        );
    }

    /// Thread `t`'s waits for a CPU within `[from, to)`: in all, and while
    /// a sibling worker ran on the core it waited for.
    fn waits(&self, t: usize, from: u64, to: u64) -> (u64, u64) {
        let mut by_core: BTreeMap<usize, Vec<(u64, u64)>> = BTreeMap::new();
        for s in self.slices.iter().filter(|s| {
            s.thread() == t && s.state == SliceState::Runnable && s.start_ns < to && s.end_ns > from
        }) {
            by_core
                .entry(s.core())
                .or_default()
                .push((s.start_ns.max(from), s.end_ns.min(to)));
        }
        let (mut all, mut for_siblings) = (0, 0);
        for (core, mut waits) in by_core {
            waits.sort_unstable();
            let siblings = union(self.intervals(|o| {
                o.thread() != t && o.state == SliceState::Running && o.core() == core
            }));
            all += waits.iter().map(|(a, b)| b - a).sum::<u64>();
            for_siblings += overlap_ns(&waits, &siblings);
        }
        (all, for_siblings)
    }

    /// How long the threads waited for a CPU that one of them held: on one
    /// core, about as long as they ran; on a core each, never.
    pub fn waited_for_each_other_ns(&self) -> u64 {
        (0..self.rec.threads.len())
            .map(|t| self.waits(t, 0, u64::MAX).1)
            .sum()
    }

    /// The wall time net of the time the threads waited for a CPU that
    /// other programs held, for a job split evenly among the threads: each
    /// task's lifetime less its thread's waits for strangers during it
    /// (waiting for a sibling stays in: that is the cost of sharing a core),
    /// summed, over the thread count. Per task, so that it does not matter
    /// which thread took which task (tasks go to whichever thread is free,
    /// and other load can starve one thread of its share). On an idle
    /// machine it is about the wall.
    pub fn net_wall_ns(&self) -> u64 {
        let net: u64 = self
            .rec
            .tasks
            .iter()
            .map(|task| {
                let (all, for_siblings) =
                    self.waits(task.thread as usize, task.start_ns, task.end_ns);
                task.duration_ns() - (all - for_siblings)
            })
            .sum();
        net / self.rec.threads.len().max(1) as u64
    }

    /// Σ running / net wall: how many cores the threads kept busy at once,
    /// counting only the time they could have had a CPU.
    pub fn net_parallelism(&self) -> f64 {
        self.running_ns() as f64 / self.net_wall_ns() as f64
    }
}

/// Sorted intervals merged where they overlap.
fn union(sorted: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(sorted.len());
    for (a, b) in sorted {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// The first allowed core, and the first two when there are two.
pub fn cores() -> (usize, Option<usize>) {
    let allowed = &Topology::get().allowed;
    (allowed[0], allowed.get(1).copied())
}

/// Runs the `corelanes` binary as a user would. One that runs past 180 s (a
/// window that never closes, say) is killed and fails the test, not CI.
///
/// The binary is Cargo's build of it, or the copy named by
/// `CORELANES_TEST_BIN`: CI's unprivileged passes run a copy of this test
/// binary as `nobody`, who cannot reach root's build folder.
pub fn corelanes(args: &[&str]) -> Output {
    finish(command(args).spawn().expect("the binary starts"), args)
}

/// The `corelanes` binary with these arguments, its output captured.
pub fn command(args: &[&str]) -> Command {
    let binary = std::env::var_os("CORELANES_TEST_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_corelanes").into());
    let mut command = Command::new(binary);
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Waits for a started `corelanes` (see [`corelanes`]) and returns its output.
pub fn finish(child: Child, args: &[&str]) -> Output {
    finish_within(child, args, Duration::from_secs(180))
}

/// Each thread of process `pid`: its name, state, the kernel function it
/// waits in, its system call and (where this process may read it) its
/// kernel stack, so that a run that hangs says where.
fn where_threads_wait(pid: u32) -> String {
    let read = |path: String| std::fs::read_to_string(path).unwrap_or_default();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return "(its threads could not be listed)\n".into();
    };
    let mut out = String::new();
    for task in tasks.flatten() {
        let dir = task.path().display().to_string();
        let state = read(format!("{dir}/status"))
            .lines()
            .find(|l| l.starts_with("State:"))
            .unwrap_or_default()
            .to_owned();
        out += &format!(
            "{} {}: {state}, in {}, syscall {}\n{}",
            task.file_name().to_string_lossy(),
            read(format!("{dir}/comm")).trim(),
            read(format!("{dir}/wchan")),
            read(format!("{dir}/syscall")).trim(),
            read(format!("{dir}/stack"))
        );
    }
    out
}

pub fn finish_within(mut child: Child, args: &[&str], limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child
        .try_wait()
        .expect("the child can be waited for")
        .is_none()
    {
        if Instant::now() > deadline {
            let threads = where_threads_wait(child.id());
            let _ = child.kill();
            let out = child
                .wait_with_output()
                .expect("the killed child is reaped");
            panic!(
                "corelanes {args:?} ran longer than {limit:?}; where its threads were:\n{threads}stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child
        .wait_with_output()
        .expect("the child's output is read")
}

/// Waits until `child` has a worker thread (its run has started), for at most 60 s.
pub fn wait_for_workers(child: &mut Child) {
    let tasks = format!("/proc/{}/task", child.id());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let names = std::fs::read_dir(&tasks).into_iter().flatten().flatten();
        let working = names
            .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
            .any(|name| name.starts_with("worker-"));
        if working {
            return;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "corelanes ended before its run started"
        );
        assert!(Instant::now() < deadline, "no worker thread after 60 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sends `signal` ("INT", "TERM") to `child`, as a terminal or a service manager would.
pub fn signal(child: &Child, signal: &str) {
    let sent = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill -{signal} failed");
}

/// A command line written as one string (the tests' arguments have no spaces).
/// An export of `rec`, written into memory as it would be into a file.
pub fn exported(render: corelanes::export::Render, rec: &Recording) -> String {
    let mut out = Vec::new();
    render(rec, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

pub fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}
