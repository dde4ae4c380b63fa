//! A thread-count sweep: the same total work on 1..N threads, measured
//! speedup beside the ideal and Amdahl's law.

use crate::metrics::{self, human_ns};
use crate::run::{self, ConfigError, Recording, RunConfig};
use crate::topology::Topology;

/// One point of a sweep.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SweepPoint {
    pub threads: usize,
    pub wall_ns: u64,
    pub cpu_ns: u64,
    /// Tasks run: the same at every point (the work is fixed, not per thread).
    pub tasks: u64,
    pub speedup: f64,
    pub efficiency: f64,
    pub parallelism: f64,
    /// Serial fraction implied by this point's speedup (Karp–Flatt).
    pub karp_flatt: Option<f64>,
}

impl SweepPoint {
    /// The point of `rec`, a finished run on `cores` cores, against the wall
    /// of the sweep's first point (`None`: this is the first point).
    pub fn of(rec: &Recording, cores: usize, base_wall_ns: Option<u64>) -> SweepPoint {
        let m = rec.metrics();
        let threads = rec.config.threads;
        let speedup = metrics::speedup(base_wall_ns.unwrap_or(m.wall_ns), m.wall_ns);
        SweepPoint {
            threads,
            wall_ns: m.wall_ns,
            cpu_ns: m.cpu_ns,
            tasks: m.tasks_ok + m.tasks_failed,
            speedup,
            efficiency: metrics::efficiency(speedup, cores),
            parallelism: m.parallelism,
            karp_flatt: metrics::karp_flatt(speedup, threads),
        }
    }
}

/// Runs `base` with 1..=`max_threads` threads (same tasks, same task length),
/// calling `each` after every point. Stops at the first failed run.
pub fn sweep(
    base: &RunConfig,
    max_threads: usize,
    topo: &Topology,
    each: impl FnMut(&SweepPoint, &Recording),
) -> Result<Vec<SweepPoint>, SweepError> {
    sweep_until(base, max_threads, topo, &crossbeam_channel::never(), each)
}

/// [`sweep`], until `stop` is ready (see [`run::run_until`]): the points
/// measured by then. The stopped run is not one: it did less work.
pub fn sweep_until(
    base: &RunConfig,
    max_threads: usize,
    topo: &Topology,
    stop: &crossbeam_channel::Receiver<()>,
    mut each: impl FnMut(&SweepPoint, &Recording),
) -> Result<Vec<SweepPoint>, SweepError> {
    let mut points: Vec<SweepPoint> = Vec::new();
    for threads in 1..=max_threads {
        let config = RunConfig {
            threads,
            ..base.clone()
        };
        let cores = config.cores_used(topo);
        let rec = run::run_until(config.validate(topo)?, stop);
        if rec.status == run::RunStatus::Cancelled && rec.failures.is_empty() {
            break;
        }
        if let Some(why) = rec.failures.first() {
            return Err(SweepError::Run {
                threads,
                why: why.clone(),
            });
        }
        let point = SweepPoint::of(&rec, cores, points.first().map(|p| p.wall_ns));
        each(&point, &rec);
        points.push(point);
    }
    Ok(points)
}

/// The parallel fraction `p` whose Amdahl curve best fits the measured
/// speedups (least squares over a fine grid of p).
pub fn amdahl_fit(points: &[SweepPoint]) -> f64 {
    let error = |p: f64| -> f64 {
        points
            .iter()
            .map(|pt| (pt.speedup - metrics::amdahl(p, pt.threads)).powi(2))
            .sum()
    };
    (0..=1000)
        .map(|i| i as f64 / 1000.0)
        .min_by(|a, b| error(*a).total_cmp(&error(*b)))
        .unwrap_or(0.0)
}

pub fn table(points: &[SweepPoint]) -> String {
    let mut out = format!(
        "{:>7} {:>11} {:>8} {:>7} {:>10} {:>11} {:>8}\n",
        "threads", "wall", "speedup", "ideal", "efficiency", "parallelism", "amdahl"
    );
    let p = amdahl_fit(points);
    for pt in points {
        out += &format!(
            "{:>7} {:>11} {:>7.2}x {:>6}x {:>9.0}% {:>11.2} {:>7.2}x\n",
            pt.threads,
            human_ns(pt.wall_ns),
            pt.speedup,
            pt.threads,
            pt.efficiency * 100.0,
            pt.parallelism,
            metrics::amdahl(p, pt.threads)
        );
    }
    out += &format!(
        "Amdahl fit: parallel fraction p = {p:.3} (serial {:.1} %)\n",
        (1.0 - p) * 100.0
    );
    out
}

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the run with {threads} threads failed: {why}")]
    Run { threads: usize, why: String },
}
