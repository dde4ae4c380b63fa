//! Lesson 7: concurrency without threads. M async tasks on one
//! `current_thread` tokio runtime against M OS threads: waiting work
//! overlaps on one thread, CPU work does not speed up, and one long CPU
//! task holds up the others' timers until it yields (cooperative, not
//! preemptive).
//!
//! Each async measurement is one corelanes run whose single worker thread
//! hosts the runtime, so it lands in the history as one lane beside the
//! OS-thread runs it is compared with.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{Chart, Interrupted, Judged, Lab, Series, SeriesStyle};
use crate::run::{Placement, Recording, RunConfig};
use crate::sys;
use crate::telemetry::sched::SchedMode;
use crate::workload::{Calibration, Plan, TaskBody, WorkloadKind, spin};

/// Tasks (async) or threads (OS) compared.
const M: usize = 4;
/// (a) Each task's wait.
const WAIT_MS: f64 = 100.0;
/// (a) Both walls at most this many waits: overlapped, not one after another (M waits).
const WAIT_BOUND: f64 = 1.5;
/// (b) Each task's computation.
const CPU_MS: f64 = 50.0;
/// (b) Async wall ≥ this share of M tasks' computation, and threads' speedup
/// ≥ this share of min(M, cores).
const CPU_SHARE: f64 = 0.8;
/// (c) The long CPU loop, the timer's period, and how often the polite loop yields.
const LOOP_MS: f64 = 200.0;
const TIMER_MS: u64 = 1;
const YIELD_EVERY_MS: f64 = 1.0;
/// (c) How many of the loop's 1 ms chunks run during one 1 ms sleep of the
/// timer task: without yields at least half the loop's chunks; with a yield
/// after each, at most the one the timer sleeps through, the one under way
/// when it comes due, and one for the timer's 1 ms resolution.
const BLOCKED_SHARE: f64 = 0.5;
const YIELDING_CHUNKS: u64 = 3;

fn loop_chunks() -> u64 {
    (LOOP_MS / YIELD_EVERY_MS) as u64
}

pub(super) const CLAIM: &str = "Async tasks are concurrency without threads: on one OS thread, waiting tasks overlap as threads do, but CPU work gets no speedup, and a task that computes without yielding holds up every other task (cooperative, not preemptive).";

fn criterion() -> String {
    let chunks = loop_chunks();
    format!(
        "{M} async tasks on one current_thread runtime against {M} OS threads: (a) {M} waits of {WAIT_MS} ms take ≤ {WAIT_BOUND} waits of wall each way ({M} waits if they did not overlap), the async ones all on 1 OS thread; (b) {M} computations of {CPU_MS} ms take ≥ {CPU_SHARE} × {M} × {CPU_MS} ms async (no speedup), while {M} threads on P ≥ 2 cores are ≥ {CPU_SHARE} × min({M}, P) times faster than async (not judged on 1 core); (c) beside a {TIMER_MS} ms timer task, a CPU loop of {chunks} chunks of {YIELD_EVERY_MS} ms computes ≥ {:.0} chunks during one timer sleep when it never yields (the runtime cannot take its only thread back until the loop returns), and ≤ {YIELDING_CHUNKS} when it yields after every chunk (the chunk the timer sleeps through, the one under way when it comes due, one for the timer's 1 ms resolution). (c) counts the loop's work, not wall time, so other programs' load cannot change it.",
        BLOCKED_SHARE * chunks as f64,
    )
}

pub(super) fn run(lab: &mut Lab) -> Judged {
    match measure(lab) {
        Ok((m, charts)) => judge(lab.topo.allowed.len(), &m, charts),
        Err(why) => Judged::cut_short(CLAIM, criterion(), why),
    }
}

/// Everything measured, in ms unless named otherwise.
#[derive(Default)]
struct Measured {
    async_wait_ms: f64,
    async_wait_threads: usize,
    threads_wait_ms: f64,
    async_cpu_ms: f64,
    threads_cpu_ms: f64,
    /// (c) The timer's wakes beside the loop, without and with yields.
    blocked: Vec<Wake>,
    yielding: Vec<Wake>,
}

fn measure(lab: &mut Lab) -> Result<(Measured, Vec<Chart>), Interrupted> {
    let core = lab.topo.allowed[0];
    let mut m = Measured::default();
    let mut charts = Vec::new();

    lab.step(format!(
        "{M} async tasks waiting {WAIT_MS} ms each on one thread…"
    ));
    let waits = Arc::new(AsyncJob::new(Job::Waits));
    run_async(lab, core, WorkloadKind::Io, WAIT_MS, &waits)?;
    let (wall, tids) = waits.result();
    m.async_wait_ms = wall;
    m.async_wait_threads = tids;
    lab.step(format!(
        "{M} OS threads waiting {WAIT_MS} ms each on core {core}…"
    ));
    m.threads_wait_ms = task_span_ms(&lab.run(os_threads(
        WorkloadKind::Io,
        WAIT_MS,
        Placement::OneCore(core),
    ))?);
    charts.push(walls_chart(
        "Waiting work: wall time",
        &[m.async_wait_ms, m.threads_wait_ms],
    ));
    lab.charts(&charts);

    lab.step(format!(
        "{M} async tasks computing {CPU_MS} ms each on one thread…"
    ));
    let spins = Arc::new(AsyncJob::new(Job::Spins));
    run_async(lab, core, WorkloadKind::Cpu, M as f64 * CPU_MS, &spins)?;
    m.async_cpu_ms = spins.result().0;
    lab.step(format!(
        "{M} OS threads computing {CPU_MS} ms each on all allowed cores…"
    ));
    m.threads_cpu_ms =
        task_span_ms(&lab.run(os_threads(WorkloadKind::Cpu, CPU_MS, Placement::Spread))?);
    charts.push(walls_chart(
        "CPU work: wall time",
        &[m.async_cpu_ms, m.threads_cpu_ms],
    ));
    lab.charts(&charts);

    for yields in [false, true] {
        lab.step(if yields {
            format!("A {LOOP_MS} ms CPU loop that yields every {YIELD_EVERY_MS} ms, beside a {TIMER_MS} ms timer task…")
        } else {
            format!("A {LOOP_MS} ms CPU loop that never yields, beside a {TIMER_MS} ms timer task…")
        });
        let job = Arc::new(AsyncJob::new(Job::Blocking { yields }));
        run_async(lab, core, WorkloadKind::Cpu, LOOP_MS, &job)?;
        let wakes = std::mem::take(&mut *lock(&job.wakes));
        if yields {
            m.yielding = wakes;
        } else {
            m.blocked = wakes;
        }
        charts.truncate(2);
        charts.push(timer_chart(&m));
        lab.charts(&charts);
    }
    Ok((m, charts))
}

/// M OS threads, one task each: the runs the async ones are compared with.
fn os_threads(workload: WorkloadKind, task_ms: f64, placement: Placement) -> RunConfig {
    RunConfig {
        workload,
        threads: M,
        tasks: M,
        task_ms,
        placement,
        serial: 0.0,
        sched: SchedMode::Auto,
        system_wide: false,
        ..RunConfig::defaults(crate::topology::Topology::get())
    }
}

/// Runs `job` as the one task of a one-thread run on `core`; the history
/// calls it `workload` of `task_ms`, which is what the runtime's thread did.
fn run_async(
    lab: &mut Lab,
    core: usize,
    workload: WorkloadKind,
    task_ms: f64,
    job: &Arc<AsyncJob>,
) -> Result<Recording, Interrupted> {
    let config = RunConfig {
        threads: 1,
        tasks: 1,
        placement: Placement::OneCore(core),
        ..os_threads(workload, task_ms, Placement::OneCore(core))
    };
    let plan = Plan {
        tasks: 1,
        serial_first: false,
        body: job.clone(),
    };
    lab.run_plan(config, Ok(plan))
}

/// From the first task's start to the last task's end, ms.
fn task_span_ms(rec: &Recording) -> f64 {
    let start = rec.tasks.iter().map(|t| t.start_ns).min().unwrap_or(0);
    let end = rec.tasks.iter().map(|t| t.end_ns).max().unwrap_or(0);
    end.saturating_sub(start) as f64 / 1e6
}

/// One wake of the timer task beside the loop.
#[derive(Clone, Copy)]
struct Wake {
    /// When it was due, ms since the loop began (negative: before it).
    due_ms: f64,
    late_ms: f64,
    /// The loop's chunks computed while it slept.
    chunks: u64,
}

/// The most chunks, and the most ms late, of any wake.
fn worst(wakes: &[Wake]) -> (u64, f64) {
    wakes.iter().fold((0, 0.0), |(c, l), w| {
        (c.max(w.chunks), f64::max(l, w.late_ms))
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Clone, Copy)]
enum Job {
    /// M tasks each sleep WAIT_MS.
    Waits,
    /// M tasks each compute CPU_MS without awaiting anything.
    Spins,
    /// A timer task beside a LOOP_MS computation, with or without yields.
    Blocking { yields: bool },
}

/// A task body that builds a `current_thread` runtime on the worker's own
/// thread and runs one job on it.
struct AsyncJob {
    job: Job,
    /// Measured before the run (the first use measures it), not inside the job's timing.
    calibration: Calibration,
    /// Wall from the first spawn to the last task's end, ms.
    wall_ms: Mutex<f64>,
    /// The OS threads the async tasks ran on.
    tids: Mutex<BTreeSet<i32>>,
    /// (c): the timer task's wakes.
    wakes: Mutex<Vec<Wake>>,
}

impl AsyncJob {
    fn new(job: Job) -> AsyncJob {
        AsyncJob {
            job,
            calibration: Calibration::get(),
            wall_ms: Mutex::new(0.0),
            tids: Mutex::new(BTreeSet::new()),
            wakes: Mutex::new(Vec::new()),
        }
    }

    /// (wall ms, distinct OS threads).
    fn result(&self) -> (f64, usize) {
        (*lock(&self.wall_ms), lock(&self.tids).len())
    }
}

impl TaskBody for AsyncJob {
    /// A job ignores Stop: it is short (≤ 0.4 s), and the run reports
    /// itself stopped once it ends.
    fn run(&self, _task: usize, _cancel: &AtomicBool) -> Result<(), String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| format!("cannot build a tokio runtime: {e}"))?;
        // The tasks borrow nothing: what they share is behind Arcs.
        let shared = Arc::new(Shared {
            tids: Mutex::new(BTreeSet::new()),
            wakes: Mutex::new(Vec::new()),
            chunks: AtomicU64::new(0),
        });
        let start = Instant::now();
        runtime.block_on(job(self.job, shared.clone(), self.calibration));
        *lock(&self.wall_ms) = start.elapsed().as_secs_f64() * 1e3;
        *lock(&self.tids) = std::mem::take(&mut *lock(&shared.tids));
        *lock(&self.wakes) = std::mem::take(&mut *lock(&shared.wakes));
        Ok(())
    }
}

/// What the async tasks of one job share.
struct Shared {
    tids: Mutex<BTreeSet<i32>>,
    wakes: Mutex<Vec<Wake>>,
    /// (c): the loop's chunks done so far.
    chunks: AtomicU64,
}

impl Shared {
    fn note_thread(&self) {
        lock(&self.tids).insert(sys::gettid());
    }
}

/// The job's tasks.
async fn job(job: Job, shared: Arc<Shared>, cal: Calibration) {
    let iters = cal.iters_for_ms(CPU_MS);
    match job {
        Job::Waits | Job::Spins => {
            let tasks: Vec<_> = (0..M)
                .map(|i| {
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        shared.note_thread();
                        if matches!(job, Job::Waits) {
                            tokio::time::sleep(Duration::from_secs_f64(WAIT_MS / 1e3)).await;
                        } else {
                            let never = AtomicBool::new(false);
                            std::hint::black_box(spin(iters, i as u64, &never));
                        }
                    })
                })
                .collect();
            for task in tasks {
                let _ = task.await;
            }
        }
        Job::Blocking { yields } => blocking(yields, shared, cal).await,
    }
}

async fn blocking(yields: bool, shared: Arc<Shared>, cal: Calibration) {
    let begin = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let timer = {
        let (done, shared) = (done.clone(), shared.clone());
        tokio::spawn(async move {
            let period = Duration::from_millis(TIMER_MS);
            while !done.load(Ordering::Relaxed) {
                let chunks = shared.chunks.load(Ordering::Relaxed);
                let due = Instant::now() + period;
                tokio::time::sleep_until(due.into()).await;
                let woke = Instant::now();
                lock(&shared.wakes).push(Wake {
                    due_ms: due.duration_since(begin).as_secs_f64() * 1e3,
                    late_ms: woke.duration_since(due).as_secs_f64() * 1e3,
                    chunks: shared.chunks.load(Ordering::Relaxed) - chunks,
                });
            }
        })
    };
    // Let the timer settle into its rhythm first.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let loop_start = begin.elapsed().as_secs_f64() * 1e3;
    // A task of its own, as the timer is: the runtime polls `block_on`'s
    // own future before its tasks, which would favour a loop run there.
    let looping = {
        let shared = shared.clone();
        tokio::spawn(async move {
            let (never, chunk) = (AtomicBool::new(false), cal.iters_for_ms(YIELD_EVERY_MS));
            for i in 0..loop_chunks() {
                std::hint::black_box(spin(chunk, i, &never));
                shared.chunks.fetch_add(1, Ordering::Relaxed);
                if yields {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    let _ = looping.await;
    done.store(true, Ordering::Relaxed);
    let _ = timer.await;
    // Due times from the loop's start, for the chart.
    for w in lock(&shared.wakes).iter_mut() {
        w.due_ms -= loop_start;
    }
}

/// Wall time of the async run against the OS threads' run.
fn walls_chart(title: &str, walls: &[f64; 2]) -> Chart {
    Chart {
        title: title.into(),
        x_label: format!("0: {M} async tasks on 1 thread, 1: {M} OS threads"),
        y_label: "wall (ms)".into(),
        series: vec![Series {
            name: "wall".into(),
            style: SeriesStyle::Bars,
            points: walls
                .iter()
                .enumerate()
                .map(|(i, &w)| [i as f64, w])
                .collect(),
        }],
    }
}

/// (c): each timer wake's lateness against when it was due, around the loop.
fn timer_chart(m: &Measured) -> Chart {
    let series = |name: &str, wakes: &[Wake]| Series {
        name: name.into(),
        style: SeriesStyle::Points,
        points: wakes.iter().map(|w| [w.due_ms, w.late_ms]).collect(),
    };
    Chart {
        title: format!("A {TIMER_MS} ms timer task beside a {LOOP_MS} ms CPU loop"),
        x_label: "due (ms since the loop began)".into(),
        y_label: "lateness (ms)".into(),
        series: vec![
            series("loop never yields", &m.blocked),
            series(
                &format!("loop yields every {YIELD_EVERY_MS} ms"),
                &m.yielding,
            ),
        ],
    }
}

fn judge(cores: usize, m: &Measured, charts: Vec<Chart>) -> Judged {
    let mut figures = BTreeMap::new();
    figures.insert("tasks".into(), json!(M));
    figures.insert("wait_ms".into(), json!(WAIT_MS));
    figures.insert("async_wait_wall_ms".into(), json!(m.async_wait_ms));
    figures.insert("async_wait_os_threads".into(), json!(m.async_wait_threads));
    figures.insert("threads_wait_wall_ms".into(), json!(m.threads_wait_ms));
    figures.insert("cpu_ms".into(), json!(CPU_MS));
    figures.insert("async_cpu_wall_ms".into(), json!(m.async_cpu_ms));
    figures.insert("threads_cpu_wall_ms".into(), json!(m.threads_cpu_ms));
    figures.insert("allowed_cores".into(), json!(cores));
    figures.insert("loop_ms".into(), json!(LOOP_MS));
    let (blocked_chunks, blocked_late) = worst(&m.blocked);
    let (yielding_chunks, yielding_late) = worst(&m.yielding);
    figures.insert("loop_chunks".into(), json!(loop_chunks()));
    figures.insert("timer_chunks_no_yield".into(), json!(blocked_chunks));
    figures.insert("timer_chunks_yielding".into(), json!(yielding_chunks));
    figures.insert("timer_late_no_yield_ms".into(), json!(blocked_late));
    figures.insert("timer_late_yielding_ms".into(), json!(yielding_late));

    let wait_bound = WAIT_BOUND * WAIT_MS;
    let waits_ok = m.async_wait_ms <= wait_bound
        && m.threads_wait_ms <= wait_bound
        && m.async_wait_threads == 1;
    let async_floor = CPU_SHARE * M as f64 * CPU_MS;
    let no_async_speedup = m.async_cpu_ms >= async_floor;
    let thread_speedup = m.async_cpu_ms / m.threads_cpu_ms.max(1e-9);
    figures.insert("threads_cpu_speedup".into(), json!(thread_speedup));
    let parallel = M.min(cores);
    let threads_ok = (parallel >= 2).then_some(thread_speedup >= CPU_SHARE * parallel as f64);
    let blocked_ok = blocked_chunks as f64 >= BLOCKED_SHARE * loop_chunks() as f64;
    let yielding_ok = yielding_chunks <= YIELDING_CHUNKS;
    let holds =
        waits_ok && no_async_speedup && threads_ok != Some(false) && blocked_ok && yielding_ok;

    let mark = |ok: bool| if ok { "as claimed" } else { "NOT as claimed" };
    let verdict = format!(
        "(a) {M} waits of {WAIT_MS} ms took {:.0} ms as async tasks on {} OS thread{} and {:.0} ms on {M} threads (bound {wait_bound:.0} ms): {}. (b) {M} computations of {CPU_MS} ms took {:.0} ms async (floor {async_floor:.0} ms: no speedup, {}) and {:.0} ms on {M} threads, {thread_speedup:.2}× faster{}. (c) During one sleep of a {TIMER_MS} ms timer task the loop computed up to {blocked_chunks} of its {} chunks when it never yielded (≥ {:.0} claimed; the timer was {blocked_late:.1} ms late) and {yielding_chunks} when it yielded after each (≤ {YIELDING_CHUNKS} claimed; {yielding_late:.1} ms late): {}.",
        m.async_wait_ms,
        m.async_wait_threads,
        if m.async_wait_threads == 1 { "" } else { "s" },
        m.threads_wait_ms,
        mark(waits_ok),
        m.async_cpu_ms,
        mark(no_async_speedup),
        m.threads_cpu_ms,
        match threads_ok {
            Some(ok) => format!(
                " (≥ {:.1}× claimed on {parallel} cores: {})",
                CPU_SHARE * parallel as f64,
                mark(ok)
            ),
            None => " (one allowed core: threads cannot be faster here, not judged)".into(),
        },
        loop_chunks(),
        BLOCKED_SHARE * loop_chunks() as f64,
        if blocked_ok && yielding_ok {
            "cooperative, not preemptive"
        } else {
            "NOT as claimed"
        },
    );
    Judged::measured(CLAIM, criterion(), holds, verdict, figures, charts)
}
