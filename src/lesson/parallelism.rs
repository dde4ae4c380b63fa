//! Lesson: parallelism (more baristas). The same job on 1..P cores: its
//! speedup beside the ideal, Amdahl's fit, Karp–Flatt's serial fraction per
//! point, and the efficiency.

use serde_json::json;

use super::evidence::{self, ms};
use super::{Chart, Interrupted, Judged, Lab, Series, SeriesStyle, figures};
use crate::metrics;
use crate::run::Placement;
use crate::sweep::{SweepPoint, amdahl_fit};
use crate::workload::WorkloadKind;

/// The job: this much CPU work in all, whatever the thread count.
const TOTAL_MS: f64 = 1600.0;
/// S(P) must reach this share of P.
const SHARE: f64 = 0.8;

pub(super) const CLAIM: &str = "A job split into parts on P cores finishes about P times faster than on \
                     one: the parts run at the same instant.";

/// The thread counts swept on `p` allowed cores: 1, 2, 4, … and `p`.
pub(super) fn counts(p: usize) -> Vec<usize> {
    let mut counts: Vec<usize> = std::iter::successors(Some(1usize), |&c| c.checked_mul(2))
        .take_while(|&c| c < p)
        .collect();
    counts.push(p);
    counts
}

/// Tasks for `p` cores: four per thread at least, and a multiple of every
/// count swept (up to 64 cores), so that no point waits on a last, lone
/// task; at most 64 per core, so that tasks stay above the shortest allowed.
pub(super) fn tasks_for(p: usize) -> usize {
    let largest_power = counts(p).into_iter().filter(|c| c.is_power_of_two()).max();
    p * largest_power.unwrap_or(1).clamp(4, 64)
}

pub(super) fn run(lab: &mut Lab) -> Judged {
    let p = lab.topo.allowed.len();
    let tasks = tasks_for(p);
    let task_ms = TOTAL_MS / tasks as f64;
    let criterion = format!(
        "The same {tasks} CPU-bound tasks ({TOTAL_MS} ms of work in all) on 1 to {p} threads, one \
         per allowed core: on all {p} cores the speedup wall(1) / wall({p}) is at least {SHARE} × \
         {p} = {:.1}.",
        SHARE * p as f64
    );
    if p < 2 {
        return Judged::cannot_run(
            CLAIM,
            criterion,
            format!(
                "this process may use only core {}, and parallelism needs at least 2",
                lab.topo.allowed_text()
            ),
        );
    }
    let mut points: Vec<SweepPoint> = Vec::new();
    if let Err(why) = measure(lab, tasks, &mut points) {
        let (figures, charts) = (point_figures(&points), charts(p, &points));
        return Judged::interrupted(CLAIM, criterion, why, figures, charts);
    }
    let last = points.last().expect("at least two points");
    let (speedup, min) = (last.speedup, SHARE * p as f64);
    let holds = speedup >= min;
    let fit = amdahl_fit(&points);
    let serial = last.karp_flatt.unwrap_or(0.0);
    let verdict = if holds {
        format!(
            "The job ran {speedup:.2}× faster on {p} cores than on 1 (efficiency {:.0} %, \
             Amdahl fit {:.1} % parallel): the parts ran at the same instant, in parallel.",
            last.efficiency * 100.0,
            fit * 100.0
        )
    } else {
        format!(
            "The job ran only {speedup:.2}× faster on {p} cores than on 1, below {min:.1}× \
             (efficiency {:.0} %, Karp–Flatt serial fraction {serial:.2}): the cores did not \
             each run their part at full speed at once ({}).",
            last.efficiency * 100.0,
            evidence::slowed_by(evidence::others_busy(lab)),
        )
    };
    let mut figures = point_figures(&points);
    figures.extend(super::figures(json!({
        "cores": p,
        "tasks": tasks,
        "task_ms": task_ms,
        "speedup_at_cores": speedup,
        "speedup_min": min,
        "amdahl_parallel_fraction": fit,
        "others_busy_max": evidence::others_busy(lab),
    })));
    let charts = charts(p, &points);
    Judged::measured(CLAIM, criterion, holds, verdict, figures, charts)
}

/// The sweep, each point added to `points` (and charted) as it ends.
fn measure(lab: &mut Lab, tasks: usize, points: &mut Vec<SweepPoint>) -> Result<(), Interrupted> {
    let p = lab.topo.allowed.len();
    let task_ms = TOTAL_MS / tasks as f64;
    for threads in counts(p) {
        lab.step(format!(
            "{} on cores {}: {tasks} tasks of {task_ms:.1} ms…",
            evidence::threads(threads),
            crate::topology::compact_ranges(&lab.topo.allowed[..threads])
        ));
        let config = lab.config(
            WorkloadKind::Cpu,
            threads,
            tasks,
            task_ms,
            Placement::Spread,
        );
        let rec = lab.run(config)?;
        let first = points.first().map(|f| f.wall_ns);
        points.push(SweepPoint::of(&rec, threads, first));
        lab.charts(&charts(p, points));
    }
    Ok(())
}

/// The sweep's points, one array per figure, in thread-count order.
fn point_figures(points: &[SweepPoint]) -> std::collections::BTreeMap<String, serde_json::Value> {
    let column = |f: &dyn Fn(&SweepPoint) -> serde_json::Value| -> Vec<serde_json::Value> {
        points.iter().map(f).collect()
    };
    figures(json!({
        "threads": column(&|pt| json!(pt.threads)),
        "wall_ms": column(&|pt| json!(ms(pt.wall_ns))),
        "speedup": column(&|pt| json!(pt.speedup)),
        "efficiency": column(&|pt| json!(pt.efficiency)),
        "karp_flatt": column(&|pt| json!(pt.karp_flatt)),
        "parallelism": column(&|pt| json!(pt.parallelism)),
    }))
}

/// Speedup against cores (ideal, measured, Amdahl's fit), then efficiency
/// and Karp–Flatt's serial fraction per point.
fn charts(p: usize, points: &[SweepPoint]) -> Vec<Chart> {
    let xy = |f: &dyn Fn(&SweepPoint) -> Option<f64>| -> Vec<[f64; 2]> {
        points
            .iter()
            .filter_map(|pt| Some([pt.threads as f64, f(pt)?]))
            .collect()
    };
    let mut speedup = vec![
        Series::new(
            "ideal",
            SeriesStyle::Line,
            vec![[1.0, 1.0], [p as f64, p as f64]],
        ),
        Series::new("measured", SeriesStyle::Points, xy(&|pt| Some(pt.speedup))),
    ];
    if points.len() >= 2 {
        let fit = amdahl_fit(points);
        speedup.push(Series::new(
            format!("Amdahl fit, {:.1} % parallel", fit * 100.0),
            SeriesStyle::Line,
            (1..=p)
                .map(|n| [n as f64, metrics::amdahl(fit, n)])
                .collect(),
        ));
    }
    vec![
        Chart::new("Speedup", "cores", "speedup (× one core)", speedup),
        Chart::new(
            "Efficiency and serial fraction",
            "cores",
            "share",
            vec![
                Series::new(
                    "efficiency (speedup / cores)",
                    SeriesStyle::Points,
                    xy(&|pt| Some(pt.efficiency)),
                ),
                Series::new(
                    "Karp–Flatt serial fraction",
                    SeriesStyle::Points,
                    xy(&|pt| pt.karp_flatt),
                ),
            ],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_powers_of_two_then_all_cores_with_tasks_every_count_divides() {
        assert_eq!(counts(2), vec![1, 2]);
        assert_eq!(counts(6), vec![1, 2, 4, 6]);
        assert_eq!(counts(64), vec![1, 2, 4, 8, 16, 32, 64]);
        assert!(TOTAL_MS / tasks_for(crate::run::MAX_THREADS) as f64 >= crate::run::MIN_TASK_MS);
        for p in [2, 3, 6, 9, 12, 64] {
            let tasks = tasks_for(p);
            assert!(tasks >= 4 * p, "{p} cores: {tasks} tasks");
            for c in counts(p) {
                assert_eq!(tasks % c, 0, "{p} cores: {tasks} tasks on {c} threads");
            }
        }
    }
}
