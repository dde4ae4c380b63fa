//! The kernel's own scheduling, captured during real runs (issue: exact
//! context switches per core, without root). Perf-specific checks say
//! SKIPPED where the kernel refuses perf_event_open (a failure where CI sets
//! CORELANES_REQUIRE_PERF=1); the procfs fallback always runs, and where
//! perf is refused the fallback and its explanation are what is checked.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use corelanes::run::{Placement, Recording};
use corelanes::telemetry::events::{TaskCpu, TaskRecord};
use corelanes::telemetry::sched::Limits;
use corelanes::telemetry::sched::perf::Target;
use corelanes::telemetry::sched::{
    SchedMode, SchedSource, SliceState, check_perf_against_env, overlap_ns, perf_checks_apply,
};
use corelanes::topology::Topology;
use corelanes::workload::WorkloadKind::{Cpu, Io};

use super::{Kernel, config, corelanes, cores, exclusive, exported, run, words};

fn run_with(mut cfg: corelanes::run::RunConfig, sched: SchedMode) -> Recording {
    cfg.sched = sched;
    run(cfg)
}

/// Where perf was refused, the note says why; the perf checks then do not apply.
fn refusal(rec: &Recording) -> Option<&str> {
    (rec.sched_source != SchedSource::Perf).then(|| rec.sched_note.as_deref().unwrap_or("no note"))
}

fn within(a: u64, b: u64, rel: f64, abs: u64) -> bool {
    a.abs_diff(b) as f64 <= (rel * b as f64).max(abs as f64)
}

/// What the hypervisor took from one CPU since a reading: the steal column
/// of its `/proc/stat` line. In a virtual machine the kernel's slices are
/// wall time on the virtual CPU, so they include it, while a thread's CPU
/// clock (the scheduler's task clock) leaves it out. On a busy host the two
/// differ by that much: +50 % in one CI run, with nothing wrong in either.
struct Steal {
    cpu: usize,
    before: u64,
}

/// `/proc/stat` counts in `USER_HZ` ticks, 100 a second on Linux.
const STAT_TICK_NS: u64 = 10_000_000;

impl Steal {
    fn on(cpu: usize) -> Steal {
        Steal {
            cpu,
            before: steal_ticks(cpu),
        }
    }

    /// At most this much was taken since the reading. Each reading is
    /// rounded down to a tick, hence the one more; the kernel adds steal at
    /// its next tick, hence the short wait.
    fn bound_ns(&self) -> u64 {
        std::thread::sleep(Duration::from_millis(20));
        (steal_ticks(self.cpu) - self.before + 1) * STAT_TICK_NS
    }
}

fn steal_ticks(cpu: usize) -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let label = format!("cpu{cpu} ");
    let line = stat.lines().find(|l| l.starts_with(&label)).unwrap();
    line.split_whitespace().nth(8).unwrap().parse().unwrap()
}

/// Whether a thread's time from the kernel's slices agrees with its CPU
/// clock `clock`: within `rel` (or `abs`) below it, and above it by no more
/// than that and what the hypervisor took (see [`Steal`]).
fn agrees_with_clock(slices: u64, clock: u64, rel: f64, abs: u64, stolen: u64) -> bool {
    let slack = ((rel * clock as f64) as u64).max(abs);
    slices + slack >= clock && slices <= clock + slack + stolen
}

fn paranoid_at_most_2() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .is_ok_and(|s| s.trim().parse::<i32>().is_ok_and(|p| p <= 2))
}

#[test]
fn one_core_time_slices_never_overlap_and_account_for_cpu_time() {
    let _machine = exclusive();
    let (core, _) = cores();
    let steal = Steal::on(core);
    let rec = run_with(
        config(Cpu, 2, 4, 100.0, Placement::OneCore(core)),
        SchedMode::Auto,
    );
    if !perf_checks_apply(refusal(&rec)) {
        return;
    }
    let stolen = steal.bound_ns();
    let k = Kernel::of(&rec);
    let sched = rec.sched.as_ref().unwrap();
    assert_eq!(sched.lost_records, 0);
    let on_core = k.running_on(core);
    assert!(
        on_core.len() > 10,
        "the core alternated between the threads: {} slices",
        on_core.len()
    );
    for pair in on_core.windows(2) {
        assert!(
            pair[0].end_ns <= pair[1].start_ns,
            "overlap on core {core}: {pair:?}"
        );
    }
    assert!(
        on_core.windows(2).any(|p| p[0].thread != p[1].thread),
        "both threads ran there"
    );
    for (i, thread) in rec.threads.iter().enumerate() {
        let running = k.total(i, SliceState::Running);
        // The kernel's slices and the thread's CPU clock measure the same
        // thing: within 5 %, apart from what the hypervisor took.
        assert!(
            agrees_with_clock(running, thread.cpu_ns, 0.05, 2_000_000, stolen),
            "thread {i}: running {running} vs CPU {}, stolen at most {stolen}",
            thread.cpu_ns
        );
        assert!(thread.involuntary_switches > 0, "thread {i} was preempted");
        assert!(
            k.total(i, SliceState::Runnable) > 0,
            "thread {i} waited for the CPU"
        );
        // Counters agree with the kernel's own: preempted switch-outs ≈ getrusage involuntary
        // switches; runnable time ≈ schedstat run delay (both also count a few events around
        // registration, hence the absolute slack).
        let per = &sched.per_thread[i];
        assert!(
            per.switches_out_preempted
                .abs_diff(thread.involuntary_switches)
                <= 3 + thread.involuntary_switches / 5,
            "thread {i}: perf {} preempted vs getrusage {}",
            per.switches_out_preempted,
            thread.involuntary_switches
        );
        assert!(
            within(per.runnable_ns, thread.run_delay_ns, 0.15, 5_000_000),
            "thread {i}: perf runnable {} vs schedstat {}",
            per.runnable_ns,
            thread.run_delay_ns
        );
    }
}

#[test]
fn spread_threads_run_on_different_cores_at_the_same_time() {
    let (first, Some(second)) = cores() else {
        eprintln!("skipped: this process may use only one core");
        return;
    };
    let _machine = exclusive();
    let rec = run_with(
        config(Cpu, 2, 4, 100.0, Placement::List(vec![first, second])),
        SchedMode::Auto,
    );
    if !perf_checks_apply(refusal(&rec)) {
        return;
    }
    let k = Kernel::of(&rec);
    for (thread, core) in [(0, first), (1, second)] {
        let on_pin: u64 = k
            .running_on(core)
            .iter()
            .filter(|s| s.thread() == thread)
            .map(|s| s.end_ns - s.start_ns)
            .sum();
        // Workers are born on their core (see live.rs): all of it.
        assert_eq!(on_pin, k.total(thread, SliceState::Running));
    }
    // They never waited for a CPU the other held (on one core they wait
    // about as long as they run). How often they then ran at the same
    // instant depends on other load: see claims.rs.
    assert_eq!(k.waited_for_each_other_ns(), 0);
}

#[test]
fn sleeping_tasks_show_as_blocked_slices() {
    let _machine = exclusive();
    let rec = run_with(config(Io, 1, 4, 50.0, Placement::Spread), SchedMode::Auto);
    if !perf_checks_apply(refusal(&rec)) {
        return;
    }
    let k = Kernel::of(&rec);
    let blocked = k.total(0, SliceState::Blocked);
    let asleep: u64 = rec
        .tasks
        .iter()
        .map(corelanes::telemetry::events::TaskRecord::duration_ns)
        .sum();
    assert!(
        blocked as f64 > 0.9 * asleep as f64,
        "blocked {blocked} ns of {asleep} ns asleep"
    );
    // Every task's middle is a blocked moment.
    let sched = rec.sched.as_ref().unwrap();
    for task in &rec.tasks {
        let mid = (task.start_ns + task.end_ns) / 2;
        let state = sched
            .slices
            .iter()
            .find(|s| s.start_ns <= mid && mid < s.end_ns)
            .map(|s| s.state);
        assert_eq!(
            state,
            Some(SliceState::Blocked),
            "task {} at {mid}",
            task.id
        );
    }
    let voluntary = rec.threads[0].voluntary_switches;
    assert!(
        sched.per_thread[0].switches_out_blocked.abs_diff(voluntary) <= 3 + voluntary / 5,
        "perf blocked switch-outs {} vs getrusage voluntary {voluntary}",
        sched.per_thread[0].switches_out_blocked
    );
}

/// The sampled source's story in broad strokes. How well its slices match
/// what the kernel did is checked against the kernel's own record by
/// `procfs_slices_match_the_kernels_own_record` (ignored: needs root).
#[test]
fn the_procfs_fallback_tells_the_same_story() {
    let _machine = exclusive();
    let (core, _) = cores();
    let rec = run_with(
        config(Cpu, 2, 4, 100.0, Placement::OneCore(core)),
        SchedMode::Procfs,
    );
    assert_eq!(rec.sched_source, SchedSource::Procfs);
    assert!(
        rec.sched_note
            .as_deref()
            .is_some_and(|n| n.contains("1 kHz")),
        "labelled as sampled"
    );
    let k = Kernel::of(&rec);
    // Sampled at ~1 kHz, two running slices on one core can share a
    // sample's edge; but the core is not shown running both threads for
    // any real share of the run, as it would be if the picture were parallel.
    k.assert_took_turns(0.0);
    for i in 0..2 {
        assert!(
            k.total(i, SliceState::Runnable) > 0,
            "thread {i} waited for the CPU"
        );
    }
    let io = run_with(config(Io, 1, 4, 50.0, Placement::Spread), SchedMode::Procfs);
    let asleep: u64 = io
        .tasks
        .iter()
        .map(corelanes::telemetry::events::TaskRecord::duration_ns)
        .sum();
    // A sleep seen from user space holds the sleep (Blocked) and the wait
    // for a CPU after the wake-up (Runnable, long beside CPU load): the
    // thread was off the CPU nearly all of it, and mostly blocked.
    let k = Kernel::of(&io);
    let (blocked, runnable) = (
        k.total(0, SliceState::Blocked),
        k.total(0, SliceState::Runnable),
    );
    assert!(
        (blocked + runnable) as f64 > 0.9 * asleep as f64 && blocked > runnable,
        "blocked {blocked} ns, runnable {runnable} ns, of {asleep} ns asleep"
    );
}

/// Where perf is refused (`.ci/run` refuses it with a seccomp filter, as
/// Docker does), `auto` falls back to procfs and says why, and `--sched
/// perf` fails with that reason alone. Where perf works, both use it.
#[test]
fn where_perf_is_refused_auto_falls_back_and_perf_fails_with_the_reason() {
    let _machine = exclusive();
    let line = "run --workload cpu --threads 1 --tasks 1 --task-ms 5";
    let auto = corelanes(&words(&format!("{line} --sched auto")));
    let perf = corelanes(&words(&format!("{line} --sched perf")));
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let (auto_out, perf_out, perf_err) =
        (text(&auto.stdout), text(&perf.stdout), text(&perf.stderr));
    assert!(auto.status.success(), "{auto:?}");
    if auto_out.contains("scheduler capture: perf") {
        check_perf_against_env(None);
        assert!(perf.status.success(), "{perf:?}");
        assert!(perf_out.contains("scheduler capture: perf"), "{perf_out}");
        return;
    }
    check_perf_against_env(Some(&auto_out));
    assert!(auto_out.contains("scheduler capture: procfs"), "{auto_out}");
    assert!(auto_out.contains("note: Exact capture is off: the kernel refused perf_event_open"));
    // The cause named fits the machine: at paranoid ≤ 2 the level is not it.
    let cause = if paranoid_at_most_2() {
        "seccomp"
    } else {
        "sysctl kernel.perf_event_paranoid=2"
    };
    assert!(auto_out.contains(cause), "{auto_out}");
    if paranoid_at_most_2() {
        // Setting the level it already has would change nothing.
        assert!(!auto_out.contains("sysctl"), "{auto_out}");
    }
    // `--sched perf`: the error alone, no summary of a run that never started.
    assert_eq!(perf.status.code(), Some(2), "{perf:?}");
    assert_eq!(perf_out, "", "nothing on stdout");
    assert_eq!(perf_err.lines().count(), 1, "{perf_err}");
    assert!(
        perf_err.starts_with("error: the kernel refused perf_event_open")
            && perf_err.contains(cause),
        "{perf_err}"
    );
}

/// The CPU time of thread `i`'s tasks, summed.
fn tasks_cpu_ns(rec: &Recording, i: usize) -> u64 {
    rec.tasks
        .iter()
        .filter(|t| t.thread as usize == i)
        .map(|t| t.cpu_ns)
        .sum()
}

/// With perf's exact switches a task's CPU time is its thread's running
/// time inside it, summed after the run: per thread it adds up to the
/// thread's own CPU clock, less the moments between tasks.
#[test]
fn task_cpu_from_kernel_slices_adds_up_to_each_threads_cpu_clock() {
    let _machine = exclusive();
    let (core, _) = cores();
    let steal = Steal::on(core);
    // About 240 ms of CPU a thread, so the 10 ms ticks that bound steal are
    // small beside it.
    let rec = run_with(
        config(Cpu, 2, 8, 60.0, Placement::OneCore(core)),
        SchedMode::Auto,
    );
    let summary: serde_json::Value =
        serde_json::from_str(&exported(corelanes::export::write_summary_json, &rec)).unwrap();
    if !perf_checks_apply(refusal(&rec)) {
        // The fallback reads the thread clock on the worker, and says so.
        assert_eq!(rec.task_cpu, TaskCpu::ThreadClock);
        assert_eq!(summary["task_cpu"], "thread-clock");
        assert!(rec.tasks.iter().all(|t| t.cpu_ns > 0), "{:?}", rec.tasks);
        return;
    }
    assert_eq!(rec.task_cpu, TaskCpu::KernelSlices);
    assert_eq!(summary["task_cpu"], "kernel-slices");
    assert_eq!(rec.sched.as_ref().unwrap().lost_records, 0);
    let stolen = steal.bound_ns();
    for (i, thread) in rec.threads.iter().enumerate() {
        let tasks = tasks_cpu_ns(&rec, i);
        let err = (tasks as f64 - thread.cpu_ns as f64) / thread.cpu_ns as f64;
        eprintln!(
            "thread {i}: tasks' CPU from slices {tasks} ns, thread CPU clock {} ns ({:+.3} %), \
             the hypervisor took at most {stolen} ns",
            thread.cpu_ns,
            err * 100.0
        );
        assert!(
            agrees_with_clock(tasks, thread.cpu_ns, 0.02, 0, stolen),
            "thread {i}: {tasks} vs {}",
            thread.cpu_ns
        );
    }
    // Two threads on one core: each task waited while the other ran, and
    // its CPU time leaves that wait out.
    let cpu: u64 = rec.tasks.iter().map(|t| t.cpu_ns).sum();
    let lifetimes: u64 = rec.tasks.iter().map(TaskRecord::duration_ns).sum();
    assert!(
        (cpu as f64) < 0.8 * lifetimes as f64,
        "CPU {cpu} ns of {lifetimes} ns of lifetimes"
    );
}

/// Where a run has no more workers than the cores it watches, each worker
/// opens one perf event of its own that follows it, instead of inheriting
/// one per core (the kernel walks a thread's events at each of its
/// switches). Its slices say what inherited ones say: each thread ran on
/// its core, and its tasks' CPU from them adds up to its CPU clock.
#[test]
fn each_worker_watches_itself_where_they_are_no_more_than_the_cores() {
    let _machine = exclusive();
    let allowed = &Topology::get().allowed;
    let mut cfg = config(Cpu, 2, 8, 60.0, Placement::Spread);
    cfg.sched = SchedMode::Auto;
    let valid = cfg.validate(Topology::get()).unwrap();
    let cpus = valid.capture_cpus(allowed);
    if cpus.len() < 2 {
        // Spread over one core: one inherited event is already the fewest.
        assert_eq!(valid.capture_target(&cpus), Target::Own);
        return;
    }
    assert_eq!(valid.capture_target(&cpus), Target::Workers);
    for inherited in [false, true] {
        let run = if inherited {
            valid.clone().with_inherited_events()
        } else {
            valid.clone()
        };
        let steal: Vec<Steal> = cpus.iter().map(|&c| Steal::on(c)).collect();
        let rec = corelanes::run::run_to_end(run);
        assert!(rec.failures.is_empty(), "{:?}", rec.failures);
        if !perf_checks_apply(refusal(&rec)) {
            return;
        }
        let report = rec.sched.as_ref().unwrap();
        let events = if inherited { cpus.len() } else { 1 };
        assert_eq!(report.events_per_thread, Some(events));
        assert_eq!(report.lost_records, 0);
        let stolen: u64 = steal.iter().map(Steal::bound_ns).sum();
        for (i, thread) in rec.threads.iter().enumerate() {
            let core = thread.pinned_core.unwrap();
            let ran_on: std::collections::BTreeSet<usize> = report
                .slices
                .iter()
                .filter(|s| s.thread() == i && s.state == SliceState::Running)
                .map(corelanes::telemetry::sched::SchedSlice::core)
                .collect();
            let tasks = tasks_cpu_ns(&rec, i);
            eprintln!(
                "{events} event(s) a thread: thread {i} pinned to {core} ran on {ran_on:?}; \
                 tasks' CPU from slices {tasks} ns, CPU clock {} ns, the hypervisor took at most {stolen} ns",
                thread.cpu_ns
            );
            assert_eq!(ran_on, [core].into(), "thread {i}");
            assert!(
                agrees_with_clock(tasks, thread.cpu_ns, 0.02, 0, stolen),
                "thread {i}"
            );
        }
    }
}

/// A run's capture streams its slices and keeps no perf records of its
/// own, even well within its memory share: the slices arrive after the
/// switch (each task's CPU time, taken from them, adds up to its thread's
/// CPU clock), the report's totals are exactly those of the slices the
/// recording holds, and the records held between reads of the rings stay
/// below a few drains' worth (those read before the live view began).
#[test]
fn the_capture_streams_keeps_no_records_and_its_figures_stay_exact() {
    let _machine = exclusive();
    let (core, _) = cores();
    // Two threads taking turns on one core for 480 ms switch hundreds of
    // times: keeping their records would pass 32 of them.
    let limits = Limits::default();
    let held_at_most = 32 * std::mem::size_of::<corelanes::telemetry::sched::perf::PerfRecord>();
    let mut cfg = config(Cpu, 2, 8, 60.0, Placement::OneCore(core));
    cfg.sched = SchedMode::Auto;
    let steal = Steal::on(core);
    let valid = cfg
        .validate(Topology::get())
        .unwrap()
        .with_capture_limits(limits);
    let rec = corelanes::run::run_to_end(valid);
    assert!(rec.failures.is_empty(), "{:?}", rec.failures);
    if !perf_checks_apply(refusal(&rec)) {
        return;
    }
    let report = rec.sched.as_ref().unwrap();
    eprintln!(
        "streamed {}, {} slices, raw records held at most {} bytes, lost {}",
        report.streamed,
        report.slices.len(),
        report.raw_peak_bytes,
        report.lost_records
    );
    assert!(report.streamed, "the capture did not stream");
    assert!(report.raw_peak_bytes <= held_at_most);
    assert_eq!(report.lost_records, 0);
    assert!(
        rec.summarised_before_ns().is_none(),
        "the recording dropped nothing"
    );
    for (i, t) in report.per_thread.iter().enumerate() {
        let sum = |state| -> u64 {
            report
                .slices
                .iter()
                .filter(|s| s.thread() == i && s.state == state)
                .map(|s| s.end_ns - s.start_ns)
                .sum()
        };
        assert_eq!(
            (t.running_ns, t.runnable_ns, t.blocked_ns),
            (
                sum(SliceState::Running),
                sum(SliceState::Runnable),
                sum(SliceState::Blocked)
            ),
            "thread {i}'s totals"
        );
    }
    assert_eq!(rec.task_cpu, TaskCpu::KernelSlices);
    let stolen = steal.bound_ns();
    for (i, thread) in rec.threads.iter().enumerate() {
        let tasks = tasks_cpu_ns(&rec, i);
        let running = report.per_thread[i].running_ns;
        eprintln!(
            "thread {i}: tasks' CPU from slices {tasks} ns, running {running} ns, CPU clock {} ns, \
             the hypervisor took at most {stolen} ns",
            thread.cpu_ns
        );
        // As in task_cpu_from_kernel_slices_adds_up_to_each_threads_cpu_clock.
        assert!(
            agrees_with_clock(tasks, thread.cpu_ns, 0.02, 0, stolen),
            "thread {i}"
        );
        assert!(
            agrees_with_clock(running, thread.cpu_ns, 0.05, 0, stolen),
            "thread {i}"
        );
    }
}

#[test]
fn the_summary_and_trace_carry_the_kernel_view() {
    let _machine = exclusive();
    let (core, _) = cores();
    let rec = run_with(
        config(Cpu, 2, 2, 30.0, Placement::OneCore(core)),
        SchedMode::Auto,
    );
    let summary: serde_json::Value =
        serde_json::from_str(&exported(corelanes::export::write_summary_json, &rec)).unwrap();
    assert_eq!(
        summary["sched"]["source"],
        serde_json::to_value(rec.sched_source).unwrap()
    );
    assert!(summary["sched"]["lost_records"].is_u64());
    let first = &summary["sched"]["slices"][0];
    for key in ["thread", "core", "state", "start_ns", "end_ns"] {
        assert!(first.get(key).is_some(), "sched.slices[0].{key}");
    }
    assert!(
        summary["threads"][0]["run_delay_ns"].is_u64()
            && summary["threads"][0]["migrations"].is_u64()
    );
    let trace: serde_json::Value =
        serde_json::from_str(&exported(corelanes::export::write_chrome_trace, &rec)).unwrap();
    let core_track = trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["cat"] == "sched" && e["tid"] == core);
    assert!(core_track, "one track per core with the running slices");
}

/// `perf record` of every `sched_switch` on the machine, started and
/// stopped through its control FIFOs so that it is recording before the
/// run starts. Needs root (CPU-wide tracepoints).
struct PerfRecord {
    child: Child,
    ctl: std::fs::File,
    acks: mpsc::Receiver<String>,
    data: std::path::PathBuf,
}

impl PerfRecord {
    fn start(dir: &Path) -> PerfRecord {
        let (ctl, ack, data) = (dir.join("ctl"), dir.join("ack"), dir.join("perf.data"));
        for fifo in [&ctl, &ack] {
            assert!(Command::new("mkfifo").arg(fifo).status().unwrap().success());
        }
        let control = format!("fifo:{},{}", ctl.display(), ack.display());
        let child = Command::new("perf")
            .args(["record", "-q", "-e", "sched:sched_switch", "-a"])
            // The sampler's reads of /proc: when it took each sample.
            .args(["-e", "syscalls:sys_enter_pread64"])
            .args(["-k", "CLOCK_MONOTONIC", "-D", "-1", "--control", &control])
            // 16 MiB rings: perf itself may wait for a CPU on a busy machine.
            .args(["-m", "4096"])
            .arg("-o")
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("perf runs (Debian: linux-perf)");
        // Read-write opens never block, whether or not perf got this far.
        let rw = |p: &Path| {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(p)
                .unwrap()
        };
        let (tx, acks) = mpsc::channel();
        let ack_reader = BufReader::new(rw(&ack));
        std::thread::spawn(move || {
            for line in ack_reader.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut record = PerfRecord {
            child,
            ctl: rw(&ctl),
            acks,
            data,
        };
        record.command("enable");
        record
    }

    /// Sends a control command and waits for perf's ack.
    fn command(&mut self, what: &str) {
        writeln!(self.ctl, "{what}").unwrap();
        if self.acks.recv_timeout(Duration::from_secs(30)).is_err() {
            let _ = self.child.kill();
            let mut err = String::new();
            if let Some(mut stderr) = self.child.stderr.take() {
                let _ = stderr.read_to_string(&mut err);
            }
            panic!("perf record did not acknowledge `{what}`: {err}");
        }
    }

    /// Stops recording and returns what it recorded, in time order.
    fn finish(mut self) -> Vec<Recorded> {
        self.command("disable");
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-INT", &pid])
                .status()
                .unwrap()
                .success()
        );
        let mut said = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = stderr.read_to_string(&mut said);
        }
        let status = self.child.wait().unwrap();
        eprintln!("perf record ({status}): {said}");
        // Having written its file, perf re-raises the SIGINT it was stopped by.
        assert!(
            status.success() || status.signal() == Some(libc::SIGINT),
            "perf record: {status}"
        );
        let script = Command::new("perf")
            .args(["script", "--ns", "-F", "tid,time,event,trace", "-i"])
            .arg(&self.data)
            .output()
            .unwrap();
        assert!(script.status.success(), "{script:?}");
        // An incomplete record cannot judge anything.
        let warnings = String::from_utf8_lossy(&script.stderr);
        assert!(
            !warnings.to_lowercase().contains("lost"),
            "perf record lost events: {warnings}"
        );
        String::from_utf8_lossy(&script.stdout)
            .lines()
            .filter_map(Recorded::parse)
            .collect()
    }
}

/// One line of `perf script --ns -F tid,time,event,trace`, e.g.
/// `24046  8303.418978589:  sched:sched_switch: prev_comm=a prev_pid=1 prev_prio=120 prev_state=R ==> next_comm=b next_pid=2 next_prio=120`
/// or `24047  8303.420166510: syscalls:sys_enter_pread64: fd: 0x00000003, …`.
#[derive(Debug, PartialEq)]
enum Recorded {
    Switch(Switch),
    Read { tid: i32, time_ns: u64 },
}

#[derive(Debug, PartialEq)]
struct Switch {
    time_ns: u64,
    prev_pid: i32,
    preempted: bool,
    next_comm: String,
    next_pid: i32,
}

impl Recorded {
    fn parse(line: &str) -> Option<Recorded> {
        let (tid, rest) = line.trim_start().split_once(' ')?;
        let (time, rest) = rest.trim_start().split_once(": ")?;
        let (event, rest) = rest.trim_start().split_once(": ")?;
        let (secs, nanos) = time.split_once('.')?;
        let time_ns = secs.parse::<u64>().ok()? * 1_000_000_000 + nanos.parse::<u64>().ok()?;
        let field = |s: &'_ str, key: &str| -> Option<String> {
            let (_, v) = s.rsplit_once(key)?;
            Some(v.split_whitespace().next()?.to_owned())
        };
        match event {
            "sched:sched_switch" => {
                let (prev, next) = rest.split_once(" ==> ")?;
                Some(Recorded::Switch(Switch {
                    time_ns,
                    prev_pid: field(prev, " prev_pid=")?.parse().ok()?,
                    // "R" or "R+": switched out while runnable, i.e. preempted.
                    preempted: field(prev, " prev_state=")?.starts_with('R'),
                    next_comm: field(next, "next_comm=")?,
                    next_pid: field(next, " next_pid=")?.parse().ok()?,
                }))
            }
            "syscalls:sys_enter_pread64" => Some(Recorded::Read {
                tid: tid.parse().ok()?,
                time_ns,
            }),
            _ => None,
        }
    }
}

/// When the procfs sampler took its samples, relative to `origin`: the
/// first of each burst of its reads (a few µs for all workers; samples
/// are a millisecond or more apart).
fn sample_times(record: &[Recorded], origin: u64) -> Vec<u64> {
    let sampler: Vec<i32> = record
        .iter()
        .filter_map(|r| match r {
            Recorded::Switch(s) if s.next_comm == "corelanes-proc" => Some(s.next_pid),
            _ => None,
        })
        .collect();
    let mut times: Vec<u64> = Vec::new();
    let mut last = 0;
    for r in record {
        if let Recorded::Read { tid, time_ns } = *r
            && sampler.contains(&tid)
        {
            if time_ns > last + 200_000 {
                times.push(time_ns.saturating_sub(origin));
            }
            last = time_ns;
        }
    }
    times
}

/// One thread's running and runnable time by the kernel's record, relative
/// to `origin`, clipped to `window`.
fn truth(switches: &[&Switch], tid: i32, origin: u64, window: (u64, u64)) -> [Vec<(u64, u64)>; 2] {
    let (mut running, mut runnable) = (Vec::new(), Vec::new());
    let mut open: Option<(bool, u64)> = None; // (running?, since)
    for s in switches
        .iter()
        .filter(|s| s.prev_pid == tid || s.next_pid == tid)
    {
        let t = s.time_ns.saturating_sub(origin);
        if let Some((was_running, since)) = open.take() {
            let (a, b) = (since.max(window.0), t.min(window.1));
            if a < b {
                if was_running {
                    &mut running
                } else {
                    &mut runnable
                }
                .push((a, b));
            }
        }
        if s.next_pid == tid {
            open = Some((true, t));
        } else if s.preempted {
            open = Some((false, t));
        }
    }
    [running, runnable]
}

#[test]
fn perf_script_lines_parse() {
    let line = "26068  3032.962690009:  sched:sched_switch: prev_comm=sys::tests::a p prev_pid=26068 prev_prio=120 prev_state=R+ ==> next_comm=perf next_pid=30712 next_prio=120";
    assert_eq!(
        Recorded::parse(line),
        Some(Recorded::Switch(Switch {
            time_ns: 3_032_962_690_009,
            prev_pid: 26068,
            preempted: true,
            next_comm: "perf".into(),
            next_pid: 30712
        }))
    );
    let read = "  4047  8303.420166510: syscalls:sys_enter_pread64: fd: 0x00000003, buf: 0x7fff395788a0, count: 0x00000310, pos: 0x00000040";
    assert_eq!(
        Recorded::parse(read),
        Some(Recorded::Read {
            tid: 4047,
            time_ns: 8_303_420_166_510
        })
    );
    assert!(Recorded::parse("Events disabled").is_none());
}

/// The procfs slices against an independent source: the kernel's own
/// `sched_switch` record of the same run (`perf record -a`, root only).
/// Ignored by `cargo test`; `.ci/run` runs it as root with linux-perf. Run
/// anywhere else it fails rather than pass without checking.
#[test]
#[ignore = "needs root and linux-perf (perf record -e sched:sched_switch -a): run by .ci/run"]
fn procfs_slices_match_the_kernels_own_record() {
    let root = corelanes::sys::is_root();
    assert!(
        root,
        "perf record -a needs root: run this as root (.ci/run does)"
    );
    let _machine = exclusive();
    let (core, _) = cores();
    let dir = tempfile::tempdir().unwrap();
    let record = PerfRecord::start(dir.path());
    let rec = run_with(
        config(Cpu, 2, 4, 100.0, Placement::OneCore(core)),
        SchedMode::Procfs,
    );
    let recorded = record.finish();
    let switches: Vec<&Switch> = recorded
        .iter()
        .filter_map(|r| match r {
            Recorded::Switch(s) => Some(s),
            Recorded::Read { .. } => None,
        })
        .collect();
    let k = Kernel::of(&rec);
    let samples = sample_times(&recorded, rec.origin_ns);
    let span = switches.first().zip(switches.last()).map(|(a, b)| {
        (
            a.time_ns as i64 - rec.origin_ns as i64,
            b.time_ns as i64 - rec.origin_ns as i64,
        )
    });
    assert!(
        samples.len() > 100,
        "{} samples among {} switches recorded (from, to the run's origin: {span:?} ns; the run took {} ns)",
        samples.len(),
        switches.len(),
        rec.wall_ns
    );
    let total = |v: &[(u64, u64)]| v.iter().map(|(a, b)| b - a).sum::<u64>();
    // Running time up to `t`.
    let by = |v: &[(u64, u64)], t: u64| v.iter().map(|&(a, b)| b.min(t) - a.min(t)).sum::<u64>();
    let ms = |ns: u64| ns as f64 / 1e6;
    for (i, thread) in rec.threads.iter().enumerate() {
        let sampled = k.of_thread(i, SliceState::Running);
        let waited = k.of_thread(i, SliceState::Runnable);
        // Compared over what procfs saw: from the worker's own first sample
        // (at registration) to its last.
        let all = k.of_thread_any(i);
        let window = (all[0].0, all[all.len() - 1].1);
        let [running, runnable] = truth(&switches, thread.tid, rec.origin_ns, window);
        assert!(
            running.len() > 10,
            "perf recorded thread {i} (tid {}) time-sliced",
            thread.tid
        );
        let mut bounds = vec![window.0];
        bounds.extend(samples.iter().filter(|&&t| window.0 < t && t < window.1));
        bounds.push(window.1);
        // How far the sampled picture may be from the record: the CPU time
        // read at each sample is exact (the thread's CPU clock), so only
        // where in an interval the thread switched is unknown, and run
        // delay is credited when a wait ends: one interval at either end.
        let longest = bounds.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
        let resolution = 2 * longest;
        // Where one switch fell in an interval, the CPU time gained there
        // says where; only where two or more fell can sampling not tell.
        let mut edges: Vec<usize> = running
            .iter()
            .flat_map(|&(a, b)| [a, b])
            .filter(|&t| window.0 < t && t < window.1)
            .map(|t| bounds.partition_point(|&b| b <= t))
            .collect();
        edges.sort_unstable();
        let mut ambiguous: Vec<usize> = edges
            .windows(2)
            .filter(|w| w[0] == w[1])
            .map(|w| w[0])
            .collect();
        ambiguous.dedup();
        let unsure: u64 = ambiguous.iter().map(|&j| bounds[j] - bounds[j - 1]).sum();
        // Time one says Running and the other does not.
        let wrong = total(&sampled) + total(&running) - 2 * overlap_ns(&sampled, &running);
        let drift = sampled
            .iter()
            .chain(&running)
            .flat_map(|&(a, b)| [a, b])
            .map(|t| by(&sampled, t).abs_diff(by(&running, t)))
            .max()
            .unwrap_or(0);
        eprintln!(
            "thread {i}: running {:.1} ms sampled vs {:.1} ms recorded, runnable {:.1} vs {:.1} ms; \
             {} samples, longest interval {:.1} ms; running time apart by at most {:.1} ms; \
             {:.1} ms labelled wrong, of {:.1} ms of intervals where it switched twice or more",
            ms(total(&sampled)),
            ms(total(&running)),
            ms(total(&waited)),
            ms(total(&runnable)),
            bounds.len() - 2,
            ms(longest),
            ms(drift),
            ms(wrong),
            ms(unsure)
        );
        assert!(total(&sampled).abs_diff(total(&running)) <= resolution);
        assert!(total(&waited).abs_diff(total(&runnable)) <= resolution);
        assert!(drift <= resolution, "thread {i}: apart by {drift} ns");
        assert!(
            wrong <= unsure + resolution,
            "thread {i}: {wrong} ns labelled wrong"
        );
    }
}

#[test]
fn the_capture_says_what_its_own_thread_cost() {
    let _machine = exclusive();
    // 2 000 tasks of 20 µs that sleep: thousands of switches to read.
    let rec = run_with(
        config(Io, 2, 2_000, 0.02, Placement::Spread),
        SchedMode::Auto,
    );
    if !perf_checks_apply(refusal(&rec)) {
        return;
    }
    let own = rec.sched.as_ref().and_then(|s| s.capture_cpu_ns);
    let own = own.expect("perf's drain thread tells its CPU time");
    let workers: u64 = rec.threads.iter().map(|t| t.cpu_ns).sum();
    let run_cpu = rec.run_cpu_ns.expect("the run's CPU time");
    // It ran, and its time is part of the run's, beside the workers'.
    assert!(
        own > 0 && workers + own <= run_cpu,
        "drain thread {own} ns, workers {workers} ns, the run's process {run_cpu} ns"
    );
    // It is the drain thread's own, not a busier thread's: two threads each
    // spinning 2 × 60 ms switch a few hundred times, which the drain thread
    // reads in about a millisecond, a tenth of either worker's at most.
    let spin = run_with(config(Cpu, 2, 4, 60.0, Placement::Spread), SchedMode::Auto);
    let own = spin.sched.as_ref().and_then(|s| s.capture_cpu_ns);
    let own = own.expect("perf's drain thread tells its CPU time");
    let least = spin.threads.iter().map(|t| t.cpu_ns).min().unwrap_or(0);
    assert!(
        own * 10 < least,
        "drain thread {own} ns, the least busy worker {least} ns"
    );
}
