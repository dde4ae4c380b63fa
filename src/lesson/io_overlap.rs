//! Lesson: waiting work gains from concurrency even on one core. The same
//! eight waiting (I/O-bound) tasks on 1..8 threads pinned to one core: the
//! wall falls as 1/threads while parallelism stays about 0.

use serde_json::json;

use super::evidence::{self, ms};
use super::{Chart, Interrupted, Judged, Lab, Series, SeriesStyle, figures};
use crate::metrics::Metrics;
use crate::run::Placement;
use crate::workload::WorkloadKind;

const MAX_THREADS: usize = 8;
const TASKS: usize = 8;
const TASK_MS: f64 = 100.0;
/// wall(8) must be at most this share of wall(1).
const SHARE: f64 = 0.2;

pub(super) const CLAIM: &str = "Tasks that wait (for a disk, a network, a timer) finish sooner with more \
                     threads even on one core: their waits overlap, and waiting needs no CPU.";

pub(super) fn run(lab: &mut Lab) -> Judged {
    let core = lab.topo.allowed[0];
    let criterion = format!(
        "The same {TASKS} tasks, each a {TASK_MS} ms blocking wait, on 1 to {MAX_THREADS} \
         threads pinned to core {core}: the wall with {MAX_THREADS} threads is at most {SHARE} × \
         the wall with 1 thread."
    );
    let mut runs: Vec<(usize, Metrics)> = Vec::new();
    if let Err(why) = measure(lab, core, &mut runs) {
        let (figures, charts) = (run_figures(&runs), charts(core, &runs));
        return Judged::interrupted(CLAIM, criterion, why, figures, charts);
    }
    let (one, many) = (&runs[0].1, &runs[MAX_THREADS - 1].1);
    let ratio = many.wall_ns as f64 / one.wall_ns.max(1) as f64;
    let holds = ratio <= SHARE;
    let verdict = format!(
        "{TASKS} waits on 1 core took {} with 1 thread and {} with {MAX_THREADS} threads \
         ({:.2} of it), using {:.2} cores on average while {:.1} tasks were in flight{}",
        crate::metrics::human_ns(one.wall_ns),
        crate::metrics::human_ns(many.wall_ns),
        ratio,
        many.parallelism,
        many.concurrency,
        if holds {
            ": the waits overlapped, concurrent without parallelism."
        } else {
            ": more than the criterion allows, so the waits did not overlap as claimed."
        }
    );
    let mut figures = run_figures(&runs);
    figures.extend(super::figures(json!({
        "core": core,
        "tasks": TASKS,
        "task_ms": TASK_MS,
        "wall_1_ms": ms(one.wall_ns),
        "wall_8_ms": ms(many.wall_ns),
        "wall_ratio": ratio,
        "wall_ratio_max": SHARE,
        "parallelism_8": many.parallelism,
        "concurrency_8": many.concurrency,
    })));
    let charts = charts(core, &runs);
    Judged::measured(CLAIM, criterion, holds, verdict, figures, charts)
}

/// The runs on 1..=8 threads, each added to `runs` (and charted) as it ends.
fn measure(
    lab: &mut Lab,
    core: usize,
    runs: &mut Vec<(usize, Metrics)>,
) -> Result<(), Interrupted> {
    for threads in 1..=MAX_THREADS {
        lab.step(format!(
            "{} on core {core}: {TASKS} waits of {TASK_MS} ms…",
            evidence::threads(threads)
        ));
        let placement = Placement::OneCore(core);
        let rec = lab.run(lab.config(WorkloadKind::Io, threads, TASKS, TASK_MS, placement))?;
        runs.push((threads, rec.metrics()));
        lab.charts(&charts(core, runs));
    }
    Ok(())
}

fn run_figures(runs: &[(usize, Metrics)]) -> std::collections::BTreeMap<String, serde_json::Value> {
    figures(json!({
        "threads": runs.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        "wall_ms": runs.iter().map(|(_, m)| ms(m.wall_ns)).collect::<Vec<_>>(),
        "parallelism": runs.iter().map(|(_, m)| m.parallelism).collect::<Vec<_>>(),
        "concurrency": runs.iter().map(|(_, m)| m.concurrency).collect::<Vec<_>>(),
    }))
}

/// Wall against threads beside 1/threads, then concurrency and parallelism.
fn charts(core: usize, runs: &[(usize, Metrics)]) -> Vec<Chart> {
    let xy = |f: fn(&Metrics) -> f64| -> Vec<[f64; 2]> {
        runs.iter().map(|(n, m)| [*n as f64, f(m)]).collect()
    };
    let mut wall = vec![Series::new(
        "measured",
        SeriesStyle::Points,
        xy(|m| ms(m.wall_ns)),
    )];
    if let Some((_, one)) = runs.first() {
        wall.push(Series::new(
            "wall(1) / threads",
            SeriesStyle::Line,
            (1..=MAX_THREADS)
                .map(|n| [n as f64, ms(one.wall_ns) / n as f64])
                .collect(),
        ));
    }
    vec![
        Chart::new(
            &format!("Wall time of {TASKS} waiting tasks on core {core}"),
            "threads",
            "wall (ms)",
            wall,
        ),
        Chart::new(
            "Concurrency rises, parallelism stays near 0",
            "threads",
            "tasks in flight / cores busy",
            vec![
                Series::new(
                    "concurrency (tasks in flight)",
                    SeriesStyle::Points,
                    xy(|m| m.concurrency),
                ),
                Series::new(
                    "parallelism (cores busy)",
                    SeriesStyle::Points,
                    xy(|m| m.parallelism),
                ),
            ],
        ),
    ]
}
