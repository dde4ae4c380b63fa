//! Lesson: Amdahl's limit. A serial fraction s caps the speedup at 1/s:
//! measured speedups for a few values of s against the formula, drawn out
//! to 64 cores with its ceiling so the limit shows even on 2 cores.

use serde_json::json;

use super::evidence;
use super::{Chart, Interrupted, Judged, Lab, Series, SeriesStyle, figures};
use crate::metrics;
use crate::run::{Placement, RunConfig};
use crate::workload::WorkloadKind;

/// The serial fractions shown.
const SERIAL: [f64; 3] = [0.1, 0.25, 0.5];
/// Work per run, whatever the thread count and serial fraction.
const TOTAL_MS: f64 = 800.0;
/// Each measured S(2) must be within this share of the formula's.
const TOLERANCE: f64 = 0.1;
/// The formula's curves go this far (or to the allowed cores, if more).
const CURVE_CORES: usize = 64;

pub(super) const CLAIM: &str = "If a share s of a job must run serially, no number of cores makes it more \
                     than 1/s times faster: S(n) = 1 / (s + (1 − s) / n).";

/// One measured speedup.
#[derive(Clone, Copy, Debug)]
struct Point {
    serial: f64,
    threads: usize,
    speedup: f64,
}

impl Point {
    fn formula(&self) -> f64 {
        metrics::amdahl(1.0 - self.serial, self.threads)
    }

    /// Measured over formula, less one: 0 where they agree.
    fn deviation(&self) -> f64 {
        self.speedup / self.formula() - 1.0
    }
}

pub(super) fn run(lab: &mut Lab) -> Judged {
    let p = lab.topo.allowed.len();
    let counts: Vec<usize> = if p > 2 { vec![1, 2, p] } else { vec![1, 2] };
    let tasks = 4 * p;
    let list = SERIAL.map(|s| s.to_string()).join(", ");
    let criterion = format!(
        "For serial fractions s = {list} of {TOTAL_MS} ms of CPU work (the rest in {tasks} \
         parallel tasks), each measured S(2) = wall(1 thread) / wall(2 threads) is within \
         {:.0} % of 1 / (s + (1 − s) / 2).",
        TOLERANCE * 100.0
    );
    if p < 2 {
        return Judged::cannot_run(
            CLAIM,
            criterion,
            format!(
                "this process may use only core {}, and S(2) needs 2",
                lab.topo.allowed_text()
            ),
        );
    }
    let mut points: Vec<Point> = Vec::new();
    if let Err(why) = measure(lab, &counts, tasks, &mut points) {
        let (figures, charts) = (point_figures(&points), vec![chart(p, &points)]);
        return Judged::interrupted(CLAIM, criterion, why, figures, charts);
    }
    let at_two: Vec<&Point> = points.iter().filter(|pt| pt.threads == 2).collect();
    let holds = at_two.iter().all(|pt| pt.deviation().abs() <= TOLERANCE);
    let each: Vec<String> = at_two
        .iter()
        .map(|pt| {
            format!(
                "{:.2} for s = {} (formula {:.2})",
                pt.speedup,
                pt.serial,
                pt.formula()
            )
        })
        .collect();
    let ceilings: Vec<String> = SERIAL.iter().map(|s| format!("{:.0}", 1.0 / s)).collect();
    let verdict = format!(
        "Measured S(2): {}; {}. The formula's ceilings 1/s = {} hold on any number of cores.",
        each.join(", "),
        if holds {
            format!("each within {:.0} % of Amdahl's formula", TOLERANCE * 100.0)
        } else {
            format!(
                "not all within {:.0} % of Amdahl's formula, so this run does not bear it out \
                 ({})",
                TOLERANCE * 100.0,
                evidence::slowed_by(evidence::others_busy(lab))
            )
        },
        ceilings.join(", ")
    );
    let mut figures = point_figures(&points);
    figures.extend(super::figures(json!({
        "cores": p,
        "total_ms": TOTAL_MS,
        "tasks": tasks,
        "tolerance": TOLERANCE,
        "others_busy_max": evidence::others_busy(lab),
        "max_deviation_at_2": at_two.iter().map(|pt| pt.deviation().abs()).fold(0.0, f64::max),
    })));
    let charts = vec![chart(p, &points)];
    Judged::measured(CLAIM, criterion, holds, verdict, figures, charts)
}

/// For each serial fraction, the runs on each of `counts` threads, each
/// speedup added to `points` (and charted) as it is measured.
fn measure(
    lab: &mut Lab,
    counts: &[usize],
    tasks: usize,
    points: &mut Vec<Point>,
) -> Result<(), Interrupted> {
    let task_ms = TOTAL_MS / tasks as f64;
    for serial in SERIAL {
        let mut base_wall = None;
        for &threads in counts {
            lab.step(format!(
                "serial fraction {serial}: {} on cores {}…",
                evidence::threads(threads),
                crate::topology::compact_ranges(&lab.topo.allowed[..threads])
            ));
            let config = RunConfig {
                serial,
                ..lab.config(
                    WorkloadKind::Amdahl,
                    threads,
                    tasks,
                    task_ms,
                    Placement::Spread,
                )
            };
            let rec = lab.run(config)?;
            let base = *base_wall.get_or_insert(rec.wall_ns);
            points.push(Point {
                serial,
                threads,
                speedup: metrics::speedup(base, rec.wall_ns),
            });
            lab.charts(&[chart(lab.topo.allowed.len(), points)]);
        }
    }
    Ok(())
}

/// Per measured point: its serial fraction, threads, speedup and the formula's.
fn point_figures(points: &[Point]) -> std::collections::BTreeMap<String, serde_json::Value> {
    let column = |f: fn(&Point) -> f64| -> Vec<f64> { points.iter().map(f).collect() };
    figures(json!({
        "serial": column(|pt| pt.serial),
        "threads": points.iter().map(|pt| pt.threads).collect::<Vec<_>>(),
        "speedup": column(|pt| pt.speedup),
        "formula": column(Point::formula),
        "deviation": column(Point::deviation),
    }))
}

/// For each s: the formula out to 64 cores, its ceiling 1/s, and the points
/// measured so far.
fn chart(p: usize, points: &[Point]) -> Chart {
    let reach = CURVE_CORES.max(p);
    let mut series = Vec::new();
    for s in SERIAL {
        series.push(Series::new(
            format!("s = {s}: 1 / (s + (1 − s) / n)"),
            SeriesStyle::Line,
            (1..=reach)
                .map(|n| [n as f64, metrics::amdahl(1.0 - s, n)])
                .collect(),
        ));
        series.push(Series::new(
            format!("s = {s}: ceiling 1/s = {:.0}", 1.0 / s),
            SeriesStyle::Line,
            vec![[1.0, 1.0 / s], [reach as f64, 1.0 / s]],
        ));
        let measured: Vec<[f64; 2]> = points
            .iter()
            .filter(|pt| pt.serial == s)
            .map(|pt| [pt.threads as f64, pt.speedup])
            .collect();
        series.push(Series::new(
            format!("s = {s}: measured"),
            SeriesStyle::Points,
            measured,
        ));
    }
    Chart::new(
        &format!("Amdahl's law to {reach} cores"),
        "cores",
        "speedup (× one core)",
        series,
    )
}
