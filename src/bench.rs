//! `corelanes bench`: the engine's own costs, printed as figures (the
//! store's and the UI frame's are in `gui::bench`). The same measurements
//! run under criterion in `benches/`; this command gives a quick reading
//! without it. A leaf: it uses the engine, nothing uses it but the shells.

pub mod capture;
mod long;
pub(crate) mod sessions;

pub use long::{LongRun, print_long};

pub use sessions::{heap_bytes, measure, synthetic_run};

use std::process::ExitCode;
use std::time::Instant;

use crate::metrics::human_ns;
use crate::sys;
use crate::telemetry::events::{RunEvent, TaskRecord, TaskSink};
use crate::telemetry::sched::SchedMode;

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Task events recorded for the worker-side cost.
    #[arg(long, default_value_t = 2_000_000)]
    pub events: usize,
    /// Also time runs with scheduler capture on and off: cpu runs in this
    /// process, and an io run switching ~80 000 times a second as child
    /// processes beside `perf sched record` where root may run it, and
    /// what 254 perf events more per thread (a 256-CPU machine's) cost it (~1.5 min).
    #[arg(long)]
    pub capture: bool,
    /// Also save, open and export a synthetic run of 1 M tasks and 5 M
    /// kernel slices, with time and peak memory (takes ~1 min, ~2 GB).
    #[arg(long)]
    pub sessions: bool,
    /// Only the memory of a one-hour run at 80 000 context switches a
    /// second, by synthetic ingest (288 M switches; about a minute).
    #[arg(long)]
    pub long: bool,
    /// With --long: the simulated length in seconds.
    #[arg(long, default_value_t = 3600, requires = "long")]
    pub long_seconds: u64,
}

/// The `i`-th task record of a synthetic run, as workers send them: in
/// batches of [`TaskSink::BATCH`] from one thread, each thread's tasks back to back.
pub fn sample_task(i: usize, threads: usize) -> TaskRecord {
    let thread = (i / TaskSink::BATCH) % threads;
    let t = (i as u64) * 1000;
    TaskRecord {
        id: i as u32,
        thread: thread as u32,
        start_ns: t,
        end_ns: t + 900,
        core_at_start: thread as u32,
        core_at_end: thread as u32,
        cpu_ns: 900,
        ok: true,
    }
}

/// Median ns to record one task event on the worker side: one clock read and
/// a push into the thread-local batch (with the batch's channel sends amortised).
pub fn record_cost_ns(events: usize) -> f64 {
    const CHUNK: usize = 1000;
    sys::sync_fast_clock();
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut sink = TaskSink::new(tx);
    let mut per_event = Vec::with_capacity(events / CHUNK + 1);
    let mut i = 0;
    while i < events {
        let t0 = Instant::now();
        for _ in 0..CHUNK {
            let now = sys::fast_monotonic_ns();
            sink.record(TaskRecord {
                start_ns: now - 900,
                end_ns: now,
                ..sample_task(i, 2)
            });
            i += 1;
        }
        per_event.push(t0.elapsed().as_nanos() as f64 / CHUNK as f64);
        // The collector drains as the run goes; keep memory flat like it would.
        while rx.try_recv().is_ok() {}
    }
    median(&mut per_event)
}

/// A task that does nothing: what is left of a run is the worker's own cost.
struct Nothing;

impl crate::workload::TaskBody for Nothing {
    fn run(&self, _task: usize, _cancel: &std::sync::atomic::AtomicBool) -> Result<(), String> {
        Ok(())
    }
}

/// The worker-side cost of one task, all in (taking it from the queue, the
/// stamps with the CPU number, the CPU-time path the capture implies, the
/// live slot, the record and its batch's send), from `tasks` empty tasks on
/// one pinned worker of a real run.
pub struct TaskCost {
    /// Median over runs of 1000 consecutive tasks of the time from one's
    /// start stamp to the next's.
    pub wall_ns: f64,
    /// The worker thread's CPU time over the tasks it ran, spawn included:
    /// what a preemption on a busy machine cannot inflate.
    pub cpu_ns: f64,
    /// Where the tasks' CPU times came from.
    pub path: crate::telemetry::events::TaskCpu,
}

pub fn task_cost_ns(
    sched: crate::telemetry::sched::SchedMode,
    tasks: usize,
) -> anyhow::Result<TaskCost> {
    const CHUNK: usize = 1000;
    let topo = crate::topology::Topology::get();
    let config = crate::run::RunConfig {
        threads: 1,
        tasks,
        placement: crate::run::Placement::OneCore(topo.allowed[0]),
        sched,
        ..crate::run::RunConfig::defaults(topo)
    };
    let plan = crate::workload::Plan {
        tasks,
        serial_first: false,
        body: std::sync::Arc::new(Nothing),
    };
    let mut rec = crate::run::Recording::new(config.clone());
    let handle = crate::run::start_plan(config.validate(topo)?, Ok(plan));
    for event in handle.events() {
        rec.ingest(event);
    }
    handle.join();
    if let Some(why) = rec.failures.first() {
        anyhow::bail!("{why}");
    }
    // One worker: task ids are its order.
    rec.tasks.sort_unstable_by_key(|t| t.id);
    let mut per_task: Vec<f64> = rec
        .tasks
        .chunks_exact(CHUNK + 1)
        .map(|c| (c[CHUNK].start_ns - c[0].start_ns) as f64 / CHUNK as f64)
        .collect();
    let cpu_ns = rec.threads[0].cpu_ns as f64 / rec.threads[0].tasks_done.max(1) as f64;
    Ok(TaskCost {
        wall_ns: median(&mut per_task),
        cpu_ns,
        path: rec.task_cpu,
    })
}

pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

pub fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    if args.long {
        // Alone, so that the process's peak is this ingest's.
        print_long(80_000, args.long_seconds);
        return Ok(ExitCode::SUCCESS);
    }
    let cost = record_cost_ns(args.events);
    println!("record one task event (worker side): {cost:.1} ns median   (target ≤ 25 ns)");
    let t0 = sys::thread_cpu_ns();
    let reads = 100_000;
    for _ in 0..reads {
        std::hint::black_box(sys::thread_cpu_ns());
    }
    let cpu_read = (sys::thread_cpu_ns() - t0) as f64 / reads as f64;
    println!(
        "  (plus per task: thread CPU-time read {cpu_read:.0} ns, done twice per task where capture is not perf)"
    );
    println!(
        "stamps: {:?} ({})",
        sys::stamp_path(),
        match sys::stamp_path() {
            sys::StampPath::Rdtscp => "one rdtscp: TSC onto CLOCK_MONOTONIC, CPU from TSC_AUX",
            sys::StampPath::Portable => "clock, then sched_getcpu",
        }
    );
    let per_call = |read: fn() -> sys::Stamp| {
        // Thread CPU time, so that a preemption does not count.
        let calls = 1_000_000;
        let t0 = sys::thread_cpu_ns();
        for _ in 0..calls {
            std::hint::black_box(read());
        }
        (sys::thread_cpu_ns() - t0) as f64 / f64::from(calls)
    };
    println!(
        "one stamp (time + CPU), thread CPU time per call: stamp() {:.1} ns, portable (clock + sched_getcpu) {:.1} ns",
        per_call(sys::stamp),
        per_call(sys::portable_stamp)
    );
    for sched in [SchedMode::Perf, SchedMode::Off] {
        match task_cost_ns(sched, 500_000) {
            Ok(cost) => println!(
                "per task, worker side, all in (queue, one stamp per task boundary with the CPU number, record), \
                 --sched {sched}: {:.1} ns median wall, {:.1} ns of the worker's CPU time; task CPU from {}   \
                 (target ≤ 50 ns with capture on)",
                cost.wall_ns,
                cost.cpu_ns,
                cost.path.label()
            ),
            Err(why) => println!("per task with --sched {sched}: not measured: {why}"),
        }
    }
    match live_latency() {
        Ok(l) => println!(
            "live: a finished task reaches the watcher in {} p50, {} p99; a kernel slice in {} p50, {} p99 \
             ({} slices)   (targets ≤ 50 ms and ≤ 100 ms p99; 2 threads × 4 tasks of 500 ms on one core)",
            human_ns(Latency::quantile(&l.tasks, 0.5)),
            human_ns(Latency::quantile(&l.tasks, 0.99)),
            human_ns(Latency::quantile(&l.slices, 0.5)),
            human_ns(Latency::quantile(&l.slices, 0.99)),
            l.slices.len()
        ),
        Err(why) => println!("live latency not measured: {why}"),
    }
    if args.capture {
        let (off, on) = capture_overhead();
        println!(
            "cpu run wall, scheduler capture off: {}  on: {}  overhead {:+.1} %   (target ≤ 2 %)",
            human_ns(off),
            human_ns(on),
            (on as f64 / off as f64 - 1.0) * 100.0
        );
        match capture::measure(IO_TASKS, 7) {
            Ok(figures) => capture::print(&figures),
            Err(why) => println!("high-switch io case not measured: {why}"),
        }
    }
    if args.sessions {
        let dir = tempfile::tempdir()?;
        sessions::print_figures(1_000_000, 5_000_000, dir.path())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Tasks of the high-switch io case: about a second at ~80 000 switches/s.
const IO_TASKS: usize = 60_000;

/// When what a run produced reached whoever watches it: (end, arrival)
/// in ns since the run's origin, for each task and each live kernel slice.
#[derive(Clone, Debug, Default)]
pub struct Latency {
    pub tasks: Vec<(u64, u64)>,
    pub slices: Vec<(u64, u64)>,
    pub wall_ns: u64,
}

impl Latency {
    /// The `q` quantile (0–1) of arrival − end over `of`.
    pub fn quantile(of: &[(u64, u64)], q: f64) -> u64 {
        let mut late: Vec<u64> = of.iter().map(|&(end, at)| at.saturating_sub(end)).collect();
        late.sort_unstable();
        crate::metrics::quantile(&late, q)
    }
}

/// Runs 2 threads × 4 tasks of 500 ms on one core with perf capture and
/// stamps every task and slice as it arrives.
pub fn live_latency() -> anyhow::Result<Latency> {
    let topo = crate::topology::Topology::get();
    live_latency_of(crate::run::RunConfig {
        threads: 2,
        tasks: 4,
        task_ms: 500.0,
        placement: crate::run::Placement::OneCore(topo.allowed[0]),
        sched: crate::telemetry::sched::SchedMode::Perf,
        ..crate::run::RunConfig::defaults(topo)
    })
}

/// As [`live_latency`], for any run.
pub fn live_latency_of(config: crate::run::RunConfig) -> anyhow::Result<Latency> {
    let valid = config.validate(crate::topology::Topology::get())?;
    let handle = crate::run::start(valid);
    let (mut origin, mut out, mut failure) = (0, Latency::default(), None);
    for event in handle.events() {
        let now = sys::monotonic_ns().saturating_sub(origin);
        match event {
            RunEvent::Started { origin_ns, .. } => origin = origin_ns,
            RunEvent::Tasks(batch) => out.tasks.extend(batch.iter().map(|t| (t.end_ns, now))),
            RunEvent::Slices(batch) => out.slices.extend(batch.iter().map(|s| (s.end_ns, now))),
            RunEvent::Failure(why) => failure = Some(why),
            RunEvent::Finished { wall_ns, .. } => out.wall_ns = wall_ns,
            _ => {}
        }
    }
    handle.join();
    match failure {
        Some(why) => anyhow::bail!("{why}"),
        None => Ok(out),
    }
}

/// Median wall of a 2-thread spread cpu run with scheduler capture off and on
/// (alternating, 7 pairs, so drift in machine load hits both sides alike).
pub fn capture_overhead() -> (u64, u64) {
    use crate::run::{Placement, RunConfig};
    use crate::telemetry::sched::SchedMode;
    let topo = crate::topology::Topology::get();
    let config = |sched| RunConfig {
        tasks: 4 * topo.allowed.len(),
        task_ms: 100.0,
        placement: Placement::Spread,
        sched,
        ..RunConfig::defaults(topo)
    };
    let wall = |sched| {
        let valid = config(sched).validate(topo).expect("defaults are valid");
        crate::run::run_to_end(valid).wall_ns as f64
    };
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        off.push(wall(SchedMode::Off));
        on.push(wall(SchedMode::Auto));
    }
    (median(&mut off) as u64, median(&mut on) as u64)
}
