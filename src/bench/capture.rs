//! `corelanes bench --capture`, the high-switch case: what the scheduler
//! capture costs an io run that switches ~80 000 times a second, beside
//! what `perf sched record` costs the same run.
//!
//! Each run is a child process (`corelanes run … --json -`), so that all
//! three are measured alike: wall is the run's own (`wall_ns` of its summary,
//! start-up left out), CPU is the child's whole process by `getrusage`
//! (with `perf sched record`, perf's own process too). Runs alternate (off,
//! capture, perf sched) so that drift in the machine's load hits each alike,
//! and each figure is the median over the rounds of on ÷ off.
//!
//! Each round also times what a many-CPU machine would add to a capture
//! whose events the threads inherit, one per CPU: the same run on one core,
//! with and without [`MORE_CPUS`] events more on the other core, inherited
//! from this process (the kernel walks them all at each switch and skips
//! them, as it would those of a big machine's other CPUs), and what it
//! costs an unpinned run on this machine's CPUs that its workers inherit one
//! event per CPU rather than each opening one of its own.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::median;
use crate::metrics::human_ns;
use crate::sys;
use crate::topology::Topology;

/// 4 threads on 2 cores, tasks of 10 µs (a sleep: each task blocks and wakes).
const THREADS: usize = 4;
const TASK_MS: f64 = 0.01;
/// The events a 256-CPU machine adds to each thread of an inherited capture.
const MORE_CPUS: usize = 254;

/// One run's cost.
#[derive(Clone, Copy, Debug)]
struct Cost {
    wall_ns: u64,
    /// The child process's CPU time, all in (its outputs' writing included).
    cpu_ns: u64,
    /// Its CPU time over the run alone (the summary's `run_cpu_ns`).
    run_cpu_ns: u64,
    /// Of that, the workers' own (`threads[].cpu_ns`): with capture on it
    /// includes the kernel's work for the perf events at each of their switches.
    workers_cpu_ns: u64,
    /// Of the rest, the capture's own thread's (`sched.capture_cpu_ns`).
    capture_cpu_ns: u64,
    switches: u64,
    /// The perf events each worker carried.
    events_per_thread: u64,
}

/// How a run is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Capture {
    Off,
    Ours,
    PerfSched,
}

pub struct Figures {
    /// Median over the rounds of capture ÷ off − 1, for wall and CPU.
    pub ours: (f64, f64),
    /// The same for the CPU time over the run alone, before the outputs
    /// (which, with capture, hold every slice).
    pub ours_run_cpu: f64,
    /// That CPU time's growth split, each part ÷ the run CPU with capture
    /// off: the workers' own (the kernel's per-switch work for the events),
    /// the drain thread's, and the rest (the recording taking the slices in,
    /// building the report).
    pub ours_split: (f64, f64, f64),
    /// The same for `perf sched record`, or why it was not measured.
    pub perf_sched: Result<(f64, f64), String>,
    /// What [`MORE_CPUS`] events more on each thread cost the capture's run:
    /// the median ratio − 1 of the workers' CPU, the run's CPU and wall.
    pub more_cpus: Result<(f64, f64, f64), String>,
    /// An unpinned run of no more workers than this machine's CPUs, each
    /// inheriting one event per CPU against each opening its own: the
    /// median ratio − 1 of the workers' CPU, the run's CPU and wall; the
    /// workers, the CPUs, and the events per worker each way.
    pub own_events: (f64, f64, f64),
    pub own_events_case: (usize, usize, u64, u64),
    pub off_wall_ns: u64,
    pub off_cpu_ns: u64,
    pub switches_per_s: f64,
    pub tasks: usize,
    pub rounds: usize,
}

/// Measures `rounds` alternating rounds of `tasks` tasks.
pub fn measure(tasks: usize, rounds: usize) -> anyhow::Result<Figures> {
    let topo = Topology::get();
    let [a, b, ..] = topo.allowed[..] else {
        anyhow::bail!("the high-switch case needs 2 allowed cores, this process has 1");
    };
    let exe = std::env::current_exe()?;
    let dir = tempfile::tempdir()?;
    let run_args = |threads: usize, placement: &str, sched: &str| {
        let text = format!(
            "run --workload io --threads {threads} --tasks {tasks} --task-ms {TASK_MS} \
             --placement {placement} --sched {sched} --json -"
        );
        text.split(' ').map(str::to_owned).collect::<Vec<_>>()
    };
    let args = |sched: &str| run_args(THREADS, &format!("{a},{b},{a},{b}"), sched);
    let perf_sched = perf_sched_allowed(dir.path());
    let (mut off, mut ours, mut perf) = (Vec::new(), Vec::new(), Vec::new());
    // Many CPUs, emulated: the threads all on one core, carrying events for
    // the other that never match where they run, as a big machine's would.
    let one_core = run_args(THREADS, &format!("{a},{a},{a},{a}"), "perf");
    let (mut plain, mut loaded) = (Vec::new(), Vec::new());
    // This machine's CPUs, all watched: workers that each open their own
    // event against the same run inheriting one per CPU.
    let cpus = topo.allowed.len();
    let unpinned = run_args(THREADS.min(cpus), "unpinned", "perf");
    let inheriting = [&unpinned[..], &["--inherited-events".to_owned()]].concat();
    let (mut own, mut inherited) = (Vec::new(), Vec::new());
    let mut more_cpus = Ok(());
    for _ in 0..rounds {
        off.push(one(&exe, &args("off"), Capture::Off, dir.path())?);
        ours.push(one(&exe, &args("perf"), Capture::Ours, dir.path())?);
        if perf_sched.is_ok() {
            perf.push(one(&exe, &args("off"), Capture::PerfSched, dir.path())?);
        }
        own.push(one(&exe, &unpinned, Capture::Ours, dir.path())?);
        inherited.push(one(&exe, &inheriting, Capture::Ours, dir.path())?);
        if more_cpus.is_ok() {
            plain.push(one(&exe, &one_core, Capture::Ours, dir.path())?);
            match sys::perf::inherited_load(b, MORE_CPUS) {
                Ok(load) => {
                    loaded.push(one(&exe, &one_core, Capture::Ours, dir.path())?);
                    drop(load);
                }
                Err(e) => {
                    more_cpus = Err(format!(
                        "{MORE_CPUS} events more were refused: {}",
                        e.source
                    ));
                }
            }
        }
    }
    let overhead = |on: &[Cost]| {
        (
            growth(on, &off, |c| c.wall_ns),
            growth(on, &off, |c| c.cpu_ns),
            growth(on, &off, |c| c.run_cpu_ns),
        )
    };
    let (wall, cpu, run_cpu) = overhead(&ours);
    let part = |f: fn(&Cost) -> u64| {
        paired_median(&ours, &off, |on, off| {
            (f(on) as f64 - f(off) as f64) / off.run_cpu_ns.max(1) as f64
        })
    };
    let split = (
        part(|c| c.workers_cpu_ns),
        part(|c| c.capture_cpu_ns),
        part(|c| {
            c.run_cpu_ns
                .saturating_sub(c.workers_cpu_ns + c.capture_cpu_ns)
        }),
    );
    let med =
        |f: fn(&Cost) -> u64| median(&mut off.iter().map(|c| f(c) as f64).collect::<Vec<_>>());
    let off_wall = med(|c| c.wall_ns);
    let more_cpus = more_cpus.map(|()| {
        (
            growth(&loaded, &plain, |c| c.workers_cpu_ns),
            growth(&loaded, &plain, |c| c.run_cpu_ns),
            growth(&loaded, &plain, |c| c.wall_ns),
        )
    });
    Ok(Figures {
        ours: (wall, cpu),
        ours_run_cpu: run_cpu,
        ours_split: split,
        perf_sched: perf_sched.map(|()| {
            let (wall, cpu, _) = overhead(&perf);
            (wall, cpu)
        }),
        more_cpus,
        own_events: (
            growth(&inherited, &own, |c| c.workers_cpu_ns),
            growth(&inherited, &own, |c| c.run_cpu_ns),
            growth(&inherited, &own, |c| c.wall_ns),
        ),
        own_events_case: (
            THREADS.min(cpus),
            cpus,
            own[0].events_per_thread,
            inherited[0].events_per_thread,
        ),
        off_wall_ns: off_wall as u64,
        off_cpu_ns: med(|c| c.cpu_ns) as u64,
        switches_per_s: med(|c| c.switches) / (off_wall / 1e9),
        tasks,
        rounds,
    })
}

/// The median over the rounds of `f(on) ÷ f(base) − 1`, each round's runs paired.
fn growth(on: &[Cost], base: &[Cost], f: fn(&Cost) -> u64) -> f64 {
    paired_median(on, base, |on, base| {
        f(on) as f64 / f(base).max(1) as f64 - 1.0
    })
}

/// The median over the rounds of `f(on, off)`, each round's runs paired.
fn paired_median(on: &[Cost], off: &[Cost], f: impl Fn(&Cost, &Cost) -> f64) -> f64 {
    median(
        &mut on
            .iter()
            .zip(off)
            .map(|(on, off)| f(on, off))
            .collect::<Vec<_>>(),
    )
}

/// Prints the figures as `corelanes bench --capture` does.
pub fn print(f: &Figures) {
    println!(
        "io run, {THREADS} threads on 2 cores, {} tasks of 10 µs ({:.0} switches/s with capture off), \
         median of {} alternating rounds, capture on vs off:",
        f.tasks, f.switches_per_s, f.rounds
    );
    println!(
        "  capture off: wall {}, process CPU {}",
        human_ns(f.off_wall_ns),
        human_ns(f.off_cpu_ns)
    );
    println!(
        "  corelanes perf capture: wall {:+.1} %, CPU {:+.1} % over the run ({:+.1} % all in, with a JSON of every slice written)   \
         (target ≤ 3 %, below perf sched's)",
        f.ours.0 * 100.0,
        f.ours_run_cpu * 100.0,
        f.ours.1 * 100.0
    );
    println!(
        "    of the run's CPU with capture off: {:+.1} % in the workers (the kernel's perf work at each of their switches), \
         {:+.1} % in the drain thread (reading the rings, building slices), {:+.1} % elsewhere (taking them in, the report)",
        f.ours_split.0 * 100.0,
        f.ours_split.1 * 100.0,
        f.ours_split.2 * 100.0
    );
    match &f.perf_sched {
        Ok((wall, cpu)) => println!(
            "  perf sched record:      wall {:+.1} %, CPU {:+.1} % (its own process included)",
            wall * 100.0,
            cpu * 100.0
        ),
        Err(why) => println!("  perf sched record: not measured: {why}"),
    }
    match &f.more_cpus {
        Ok((workers, run, wall)) => println!(
            "  {MORE_CPUS} perf events more on each thread (what an inherited capture adds on a 256-CPU machine; \
             emulated: all 4 threads on one core, the events on the other): workers' CPU {:+.1} %, run CPU {:+.1} %, wall {:+.1} %. \
             Where a run has no more workers than the CPUs it watches, each opens one event of its own instead",
            workers * 100.0,
            run * 100.0,
            wall * 100.0
        ),
        Err(why) => println!("  {MORE_CPUS} perf events more on each thread: not measured: {why}"),
    }
    let (workers, cpus, own, inherited) = f.own_events_case;
    let (w, r, wall) = f.own_events;
    println!(
        "  unpinned, {workers} threads over this machine's {cpus} CPUs: {inherited} inherited perf events per worker \
         against {own} of its own: workers' CPU {:+.1} %, run CPU {:+.1} %, wall {:+.1} %",
        w * 100.0,
        r * 100.0,
        wall * 100.0
    );
}

/// Runs one child and reads its cost.
fn one(exe: &Path, args: &[String], capture: Capture, dir: &Path) -> anyhow::Result<Cost> {
    let mut command = match capture {
        Capture::PerfSched => {
            let mut c = Command::new("perf");
            c.args(["sched", "record", "-q", "-o"])
                .arg(dir.join("perf.data"))
                .arg("--")
                .arg(exe);
            c
        }
        Capture::Off | Capture::Ours => Command::new(exe),
    };
    let cpu_before = sys::children_cpu_ns();
    let out = command.args(args).stderr(Stdio::piped()).output()?;
    let cpu_ns = sys::children_cpu_ns() - cpu_before;
    if !out.status.success() {
        anyhow::bail!(
            "{capture:?} run failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    if capture == Capture::Ours && summary["sched"]["source"] != "perf" {
        anyhow::bail!("the perf capture was refused: {}", summary["sched"]["note"]);
    }
    let threads = || summary["threads"].as_array().into_iter().flatten();
    let switches = threads()
        .map(|t| {
            t["voluntary_switches"].as_u64().unwrap_or(0)
                + t["involuntary_switches"].as_u64().unwrap_or(0)
        })
        .sum();
    Ok(Cost {
        wall_ns: summary["wall_ns"].as_u64().unwrap_or(0),
        cpu_ns,
        run_cpu_ns: summary["run_cpu_ns"].as_u64().unwrap_or(0),
        workers_cpu_ns: threads().filter_map(|t| t["cpu_ns"].as_u64()).sum(),
        capture_cpu_ns: summary["sched"]["capture_cpu_ns"].as_u64().unwrap_or(0),
        switches,
        events_per_thread: summary["sched"]["events_per_thread"].as_u64().unwrap_or(0),
    })
}

/// Whether `perf sched record` can run here: root (it records every CPU's
/// tracepoint) and `perf` installed and working; else why not.
fn perf_sched_allowed(dir: &Path) -> Result<(), String> {
    if !sys::is_root() {
        return Err("perf sched record needs root (CPU-wide tracepoints)".into());
    }
    let data: PathBuf = dir.join("probe.data");
    match Command::new("perf")
        .args(["sched", "record", "-q", "-o"])
        .arg(&data)
        .args(["--", "true"])
        .stdout(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "perf sched record failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("perf is not installed or not runnable ({e})")),
    }
}
