//! Lesson: threads are not parallelism. The lock workload on all allowed
//! cores: P threads, one per core, yet about one core busy at a time; the
//! run's hand-offs (`Recording::handoffs`) say which release unblocked
//! which acquire. The same threads without the lock, for contrast.

use serde_json::json;

use super::evidence::{self, Overlap, ms, percent};
use super::{Chart, Judged, Lab, Series, SeriesStyle, figures};
use crate::metrics::Metrics;
use crate::run::{Placement, Recording};
use crate::workload::WorkloadKind;

const TASKS_PER_THREAD: usize = 4;
const TASK_MS: f64 = 40.0;
/// The lock run's parallelism may be at most this.
const MAX_PARALLELISM: f64 = 1.1;
/// With perf's exact switches, the overlap allowed: each hand-over leaves
/// the µs in which the releaser records its task while the woken one starts.
const EXACT_OVERLAP: f64 = 0.01;

pub(super) const CLAIM: &str = "A multi-threaded program is not automatically parallel: threads that take \
                     turns holding one lock keep about one core busy, however many cores they run on.";

pub(super) fn run(lab: &mut Lab) -> Judged {
    let p = lab.topo.allowed.len();
    let tasks = TASKS_PER_THREAD * p;
    let criterion = format!(
        "{p} threads, one per allowed core, run {tasks} tasks that each compute {TASK_MS} ms while \
         holding one shared mutex: their parallelism (Σ CPU time / wall) is at most \
         {MAX_PARALLELISM}, and their running slices overlap for at most {} of their running \
         time (perf's exact switches; {} where only /proc sampling is available), so that other \
         load, which lowers the parallelism, cannot hide threads running at once.",
        percent(EXACT_OVERLAP),
        percent(evidence::PROCFS_OVERLAP_BOUND)
    );
    if p < 2 {
        return Judged::cannot_run(
            CLAIM,
            criterion,
            format!(
                "this process may use only core {}, and a lock can only be seen to serialise \
                 threads on 2 or more cores",
                lab.topo.allowed_text()
            ),
        );
    }
    let cores = lab.topo.allowed_text();
    let config = |lab: &Lab, workload| lab.config(workload, p, tasks, TASK_MS, Placement::Spread);
    lab.step(format!(
        "{p} threads on cores {cores}, each task holding one lock for {TASK_MS} ms…"
    ));
    let locked = match lab.run(config(lab, WorkloadKind::Lock)) {
        Ok(rec) => rec,
        Err(why) => {
            return Judged::cut_short(CLAIM, criterion, why);
        }
    };
    let m = locked.metrics();
    lab.charts(&[chart(p, &m, None)]);
    lab.step(format!(
        "the same {p} threads on cores {cores} without the lock, for contrast…"
    ));
    let free = match lab.run(config(lab, WorkloadKind::Cpu)) {
        Ok(rec) => rec.metrics(),
        Err(why) => {
            return Judged::interrupted(
                CLAIM,
                criterion,
                why,
                lock_figures(&locked, &m),
                vec![chart(p, &m, None)],
            );
        }
    };
    let Some(overlap) = Overlap::of(&locked, EXACT_OVERLAP) else {
        return Judged {
            figures: lock_figures(&locked, &m),
            ..Judged::cannot_run(CLAIM, criterion, evidence::no_slices(&locked))
        };
    };
    let source = evidence::source_name(overlap.source);
    let holds = m.parallelism <= MAX_PARALLELISM && overlap.took_turns();
    let verdict = format!(
        "{p} threads on {p} cores kept {:.2} cores busy on average with the lock ({} hand-offs, \
         each unblocking a waiting thread) and {:.2} without it, and with it the kernel ran two \
         of them at once for {} of their running time ({source}){}",
        m.parallelism,
        locked.handoffs.len(),
        free.parallelism,
        percent(overlap.share()),
        if holds {
            ": the lock made them take turns, threads without parallelism."
        } else {
            ": more than one at a time, so the lock did not serialise them as claimed."
        }
    );
    let mut figures = lock_figures(&locked, &m);
    figures.extend(super::figures(json!({
        "cores": p,
        "tasks": tasks,
        "task_ms": TASK_MS,
        "parallelism_max": MAX_PARALLELISM,
        "parallelism_free": free.parallelism,
        "wall_free_ms": ms(free.wall_ns),
        "overlap_share": overlap.share(),
        "overlap_bound": overlap.bound,
        "slices_source": source,
    })));
    let charts = vec![chart(p, &m, Some(&free))];
    Judged::measured(CLAIM, criterion, holds, verdict, figures, charts)
}

fn lock_figures(
    rec: &Recording,
    m: &Metrics,
) -> std::collections::BTreeMap<String, serde_json::Value> {
    let mut waits: Vec<u64> = rec
        .handoffs
        .iter()
        .map(|h| h.acquire_ns - h.release_ns)
        .collect();
    waits.sort_unstable();
    figures(json!({
        "parallelism_lock": m.parallelism,
        "concurrency_lock": m.concurrency,
        "wall_lock_ms": ms(m.wall_ns),
        "handoffs": rec.handoffs.len(),
        "handoff_median_us": waits.get(waits.len() / 2).map(|&ns| ns as f64 / 1e3),
    }))
}

/// Cores busy at once with and without the lock, against the cores there are.
fn chart(p: usize, locked: &Metrics, free: Option<&Metrics>) -> Chart {
    let mut series = vec![
        Series::new(
            "with one lock",
            SeriesStyle::Bars,
            vec![[1.0, locked.parallelism]],
        ),
        Series::new(
            format!("{p} cores"),
            SeriesStyle::Line,
            vec![[0.5, p as f64], [2.5, p as f64]],
        ),
    ];
    if let Some(free) = free {
        series.insert(
            1,
            Series::new(
                "without the lock",
                SeriesStyle::Bars,
                vec![[2.0, free.parallelism]],
            ),
        );
    }
    Chart::new(
        &format!("Cores busy at once, {p} threads on {p} cores"),
        "",
        "parallelism (Σ CPU / wall)",
        series,
    )
}
