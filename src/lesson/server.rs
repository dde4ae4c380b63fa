//! Lesson 5: a server uses both concurrency and parallelism. The same
//! requests (each a wait, then computation) served by K threads on P cores:
//! more threads overlap the waiting, more cores share the computing.

use std::collections::BTreeMap;

use serde_json::json;

use super::{Chart, Interrupted, Judged, Lab, Series, SeriesStyle};
use crate::metrics::quantile;
use crate::run::{Placement, RunConfig};
use crate::telemetry::sched::SchedMode;
use crate::workload::{SERVER_COMPUTE_SHARE, WorkloadKind};

/// Requests per run, all queued at the start.
const REQUESTS: usize = 48;
/// One request: 4/5 waiting, then 1/5 computing (the `server` workload).
const REQUEST_MS: f64 = 20.0;
/// Thread counts tried on each core count.
const THREADS: [usize; 3] = [1, 4, 16];
/// The thresholds: gains from threads on one core, then from cores.
const THREAD_GAIN: f64 = 2.5;
const CORE_GAIN: f64 = 1.5;

pub(super) const CLAIM: &str = "A server uses both: more threads fix the waiting (requests wait at the same time, even on one core), more cores fix the computing (requests compute at the same time).";

fn criterion() -> String {
    format!(
        "{REQUESTS} requests of {REQUEST_MS} ms ({} ms waiting, then {} ms computing), all queued at the start: throughput with 16 threads on 1 core is ≥ {THREAD_GAIN}× that of 1 thread on 1 core, and with 16 threads on all P allowed cores (P ≥ 2) ≥ {CORE_GAIN}× that with 16 threads on 1 core. Why these bounds: 1 thread takes {REQUESTS} × {REQUEST_MS} ms; 16 threads on 1 core overlap the waits but not the computing, at best one wait plus all the computing, so the ideal gain is {:.1}× ({:.0}× for endless requests) and the bound asks for about half; on P cores the computing splits P ways, an ideal gain of {:.2}× on 2 cores, of which the bound asks about 80 %.",
        wait_ms(),
        compute_ms(),
        thread_ideal(),
        1.0 / SERVER_COMPUTE_SHARE,
        core_ideal(2),
    )
}

fn wait_ms() -> f64 {
    REQUEST_MS * (1.0 - SERVER_COMPUTE_SHARE)
}

fn compute_ms() -> f64 {
    REQUEST_MS * SERVER_COMPUTE_SHARE
}

/// The shortest wall with 16 threads on `cores` cores: one wait (nothing
/// to compute before it), then all the computing shared by the cores, or
/// each thread's requests one after another, whichever is longer.
fn ideal_wall_ms(cores: usize) -> f64 {
    let per_thread = REQUESTS.div_ceil(THREADS[2]) as f64 * REQUEST_MS;
    (wait_ms() + REQUESTS as f64 * compute_ms() / cores as f64).max(per_thread)
}

fn thread_ideal() -> f64 {
    REQUESTS as f64 * REQUEST_MS / ideal_wall_ms(1)
}

fn core_ideal(cores: usize) -> f64 {
    ideal_wall_ms(1) / ideal_wall_ms(cores)
}

/// One cell of the grid.
struct Cell {
    threads: usize,
    cores: usize,
    wall_ns: u64,
    /// Each request's latency: its end since the run's start, ascending.
    latency_ns: Vec<u64>,
    parallelism: f64,
}

impl Cell {
    fn throughput(&self) -> f64 {
        REQUESTS as f64 / (self.wall_ns as f64 / 1e9)
    }

    fn latency_ms(&self, q: f64) -> f64 {
        quantile(&self.latency_ns, q) as f64 / 1e6
    }
}

pub(super) fn run(lab: &mut Lab) -> Judged {
    let all = lab.topo.allowed.len();
    let core_counts: Vec<usize> = if all >= 2 { vec![1, all] } else { vec![1] };
    let mut cells = Vec::new();
    for &cores in &core_counts {
        for &threads in &THREADS {
            lab.step(format!(
                "{REQUESTS} requests served by {threads} thread{} on {cores} core{}…",
                plural(threads),
                plural(cores)
            ));
            match serve(lab, threads, cores) {
                Ok(cell) => cells.push(cell),
                Err(why) => {
                    return Judged::cut_short(CLAIM, criterion(), why);
                }
            }
            lab.charts(&charts(&cells));
        }
    }
    judge(&cells, all)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn serve(lab: &mut Lab, threads: usize, cores: usize) -> Result<Cell, Interrupted> {
    let placement = if cores == 1 {
        Placement::OneCore(lab.topo.allowed[0])
    } else {
        Placement::Spread
    };
    let rec = lab.run(RunConfig {
        workload: WorkloadKind::Server,
        threads,
        tasks: REQUESTS,
        task_ms: REQUEST_MS,
        placement,
        serial: 0.0,
        sched: SchedMode::Auto,
        system_wide: false,
        ..RunConfig::defaults(crate::topology::Topology::get())
    })?;
    let mut latency_ns: Vec<u64> = rec.tasks.iter().map(|t| t.end_ns).collect();
    latency_ns.sort_unstable();
    Ok(Cell {
        threads,
        cores,
        wall_ns: rec.wall_ns.max(1),
        latency_ns,
        parallelism: rec.metrics().parallelism,
    })
}

/// Throughput and latency against threads, one series per core count.
fn charts(cells: &[Cell]) -> Vec<Chart> {
    let mut core_counts: Vec<usize> = cells.iter().map(|c| c.cores).collect();
    core_counts.dedup();
    let series = |name: &dyn Fn(usize) -> String, y: &dyn Fn(&Cell) -> f64| -> Vec<Series> {
        core_counts
            .iter()
            .map(|&cores| Series {
                name: name(cores),
                style: SeriesStyle::Points,
                points: cells
                    .iter()
                    .filter(|c| c.cores == cores)
                    .map(|c| [c.threads as f64, y(c)])
                    .collect(),
            })
            .collect()
    };
    let on = |cores: usize| format!("{cores} core{}", plural(cores));
    let mut latency = series(&|cores| format!("p50, {}", on(cores)), &|c| {
        c.latency_ms(0.5)
    });
    latency.extend(series(&|cores| format!("p99, {}", on(cores)), &|c| {
        c.latency_ms(0.99)
    }));
    vec![
        Chart {
            title: "Server throughput".into(),
            x_label: "threads".into(),
            y_label: "requests / s".into(),
            series: series(&on, &Cell::throughput),
        },
        Chart {
            title: "Request latency (all queued at the start)".into(),
            x_label: "threads".into(),
            y_label: "latency (ms)".into(),
            series: latency,
        },
    ]
}

fn judge(cells: &[Cell], all: usize) -> Judged {
    let mut figures = BTreeMap::new();
    figures.insert("requests".into(), json!(REQUESTS));
    figures.insert("request_ms".into(), json!(REQUEST_MS));
    figures.insert("wait_ms".into(), json!(wait_ms()));
    figures.insert("compute_ms".into(), json!(compute_ms()));
    figures.insert("allowed_cores".into(), json!(all));
    for c in cells {
        let k = format!("k{}_p{}", c.threads, c.cores);
        figures.insert(format!("{k}_wall_ms"), json!(c.wall_ns as f64 / 1e6));
        figures.insert(format!("{k}_throughput_per_s"), json!(c.throughput()));
        figures.insert(format!("{k}_latency_p50_ms"), json!(c.latency_ms(0.5)));
        figures.insert(format!("{k}_latency_p99_ms"), json!(c.latency_ms(0.99)));
        figures.insert(format!("{k}_parallelism"), json!(c.parallelism));
    }
    let cell = |threads, cores| {
        cells
            .iter()
            .find(|c| c.threads == threads && c.cores == cores)
            .expect("every cell of the grid was measured")
    };
    let (one, many) = (cell(1, 1), cell(THREADS[2], 1));
    let thread_gain = many.throughput() / one.throughput();
    figures.insert("thread_gain".into(), json!(thread_gain));
    figures.insert("thread_gain_ideal".into(), json!(thread_ideal()));
    let threads_ok = thread_gain >= THREAD_GAIN;
    let mut verdict = format!(
        "1 thread on 1 core served {:.0} requests/s (p99 latency {:.0} ms); 16 threads on 1 core {:.0}/s (p99 {:.0} ms): {thread_gain:.2}× ({} {THREAD_GAIN}×, ideal {:.1}×), {}.",
        one.throughput(),
        one.latency_ms(0.99),
        many.throughput(),
        many.latency_ms(0.99),
        if threads_ok { "≥" } else { "<" },
        thread_ideal(),
        if threads_ok {
            "threads fixed the waiting"
        } else {
            "threads did not overlap the waiting as promised"
        },
    );
    let (holds, reason) = if all >= 2 {
        let (alone, spread) = (cell(1, all), cell(THREADS[2], all));
        let core_gain = spread.throughput() / many.throughput();
        figures.insert("core_gain".into(), json!(core_gain));
        figures.insert("core_gain_ideal".into(), json!(core_ideal(all)));
        let cores_ok = core_gain >= CORE_GAIN;
        verdict.push_str(&format!(
            " On {all} cores 16 threads served {:.0}/s (p99 {:.0} ms): {core_gain:.2}× the 1-core rate ({} {CORE_GAIN}×, ideal {:.2}×), {}; 1 thread on {all} cores served {:.0}/s, since one thread computes on one core at a time.",
            spread.throughput(),
            spread.latency_ms(0.99),
            if cores_ok { "≥" } else { "<" },
            core_ideal(all),
            if cores_ok {
                "cores fixed the computing"
            } else {
                "cores did not share the computing as promised"
            },
            alone.throughput(),
        ));
        (Some(threads_ok && cores_ok), None)
    } else {
        let why = "this machine allows 1 core, so the gain from more cores cannot be measured here";
        verdict.push_str(&format!(" {why}."));
        // Half a claim measured does not hold it; a half that failed fails it.
        if threads_ok {
            (None, Some(why.to_string()))
        } else {
            (Some(false), None)
        }
    };
    Judged {
        claim: CLAIM.into(),
        criterion: criterion(),
        holds,
        reason,
        verdict,
        figures,
        charts: charts(cells),
    }
}
