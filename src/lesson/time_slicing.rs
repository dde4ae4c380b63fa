//! Lesson: time-slicing (the barista). N CPU-bound threads pinned to one
//! core take turns on it: the core runs one at a time, so together they take
//! about N times as long as one alone, each waiting (N−1)/N of the time.

use serde_json::json;

use super::evidence::{self, Overlap, ms, percent};
use super::{Chart, Interrupted, Judged, Lab, Series, SeriesStyle, figures};
use crate::run::{Placement, Recording};
use crate::workload::WorkloadKind;

/// Threads sharing the core.
const N: usize = 2;
/// Each thread's one task: long enough that start-up is noise, short
/// enough that the lesson takes about a second.
const TASK_MS: f64 = 300.0;
/// Wall(N) must be at least this share of N × wall(1).
const WALL_SHARE: f64 = 0.8;
/// With perf's exact switches, the overlap allowed: the µs a new thread
/// runs before it pins itself.
const EXACT_OVERLAP: f64 = 0.001;

pub(super) const CLAIM: &str = "CPU-bound threads on one core take turns: the core runs one of them at a \
                     time, so two take about twice as long as one alone.";

pub(super) fn run(lab: &mut Lab) -> Judged {
    let core = lab.topo.allowed[0];
    let criterion = format!(
        "On core {core}, {N} threads' running slices overlap for at most {} of their running time \
         (perf's exact switches; {} where only /proc sampling is available), and their wall time \
         is at least {WALL_SHARE} × {N} = {:.1} times one thread's, both walls net of the time \
         other programs held the core while the threads waited.",
        percent(EXACT_OVERLAP),
        percent(evidence::PROCFS_OVERLAP_BOUND),
        WALL_SHARE * N as f64
    );
    let mut runs: Vec<Run> = Vec::new();
    if let Err(why) = measure(lab, core, &mut runs) {
        let raw: Vec<f64> = runs.iter().map(|(rec, _)| ms(rec.wall_ns)).collect();
        let figures = figures(json!({ "core": core, "wall_ms": raw }));
        return Judged::interrupted(
            CLAIM,
            criterion,
            why,
            figures,
            vec![wall_chart(core, &runs)],
        );
    }
    let [(one, Some(alone)), (many, Some(overlap))] = &runs[..] else {
        return Judged {
            charts: vec![wall_chart(core, &runs)],
            ..Judged::cannot_run(CLAIM, criterion, evidence::no_slices(&runs[1].0))
        };
    };
    let (net_one, net_many) = (
        alone.net_wall_ns(one.wall_ns),
        overlap.net_wall_ns(many.wall_ns),
    );
    let ratio = crate::metrics::speedup(net_many, net_one);
    let raw_ratio = crate::metrics::speedup(many.wall_ns, one.wall_ns);
    let wall_ok = ratio >= WALL_SHARE * N as f64;
    let holds = wall_ok && overlap.took_turns();
    let wait_share = overlap.sibling_wait_share();
    let source = evidence::source_name(overlap.source);
    let mut verdict = format!(
        "{N} threads on 1 core took {ratio:.2}× as long as 1 thread (net of other programs' \
         turns on the core; {raw_ratio:.2}× by the raw wall), the core ran two of them at once \
         for {} of their running time ({source}), and each waited for the other {} of the time",
        percent(overlap.share()),
        percent(wait_share),
    );
    verdict += &if holds {
        ": time-sliced, not parallel.".to_owned()
    } else if !overlap.took_turns() {
        format!(
            ": the kernel's slices overlap more than {} allows, so this does not show one thread at a time.",
            percent(overlap.bound)
        )
    } else {
        format!(
            ": less than {:.1}× as long, so they did not simply take turns.",
            WALL_SHARE * N as f64
        )
    };
    let m = many.metrics();
    let figures = figures(json!({
        "core": core,
        "threads": N,
        "task_ms": TASK_MS,
        "wall_1_ms": ms(one.wall_ns),
        "wall_n_ms": ms(many.wall_ns),
        "raw_wall_ratio": raw_ratio,
        "others_1_ms": ms(alone.others_ns),
        "others_n_ms": ms(overlap.others_ns),
        "net_wall_1_ms": ms(net_one),
        "net_wall_n_ms": ms(net_many),
        "wall_ratio": ratio,
        "wall_ratio_min": WALL_SHARE * N as f64,
        "running_ms": ms(overlap.running_ns),
        "together_ms": ms(overlap.together_ns),
        "overlap_share": overlap.share(),
        "overlap_bound": overlap.bound,
        "slices_source": source,
        "sibling_wait_share": wait_share,
        "wait_share_expected": (N - 1) as f64 / N as f64,
        "parallelism": m.parallelism,
        "concurrency": m.concurrency,
    }));
    let charts = vec![wall_chart(core, &runs), running_chart(core, overlap, many)];
    Judged::measured(CLAIM, criterion, holds, verdict, figures, charts)
}

/// A run, and the kernel's evidence of how its threads shared the core
/// (`None` without slices).
type Run = (Recording, Option<Overlap>);

/// One thread alone on `core`, then N: each run added to `runs` (and
/// charted) as it ends.
fn measure(lab: &mut Lab, core: usize, runs: &mut Vec<Run>) -> Result<(), Interrupted> {
    for threads in [1, N] {
        lab.step(format!(
            "{} on core {core}, CPU-bound, {TASK_MS} ms of work each…",
            evidence::threads(threads)
        ));
        let placement = Placement::OneCore(core);
        let rec = lab.run(lab.config(WorkloadKind::Cpu, threads, threads, TASK_MS, placement))?;
        let overlap = Overlap::of(&rec, EXACT_OVERLAP);
        runs.push((rec, overlap));
        lab.charts(&[wall_chart(core, runs)]);
    }
    Ok(())
}

/// Wall time against threads: measured (and net of other programs' turns),
/// beside what time-slicing predicts (N × one thread's) and what running in
/// parallel would give (one's).
fn wall_chart(core: usize, runs: &[Run]) -> Chart {
    let net = |(rec, overlap): &Run| overlap.as_ref().map(|o| o.net_wall_ns(rec.wall_ns));
    let points = |wall: &dyn Fn(&Run) -> Option<u64>| -> Vec<[f64; 2]> {
        runs.iter()
            .filter_map(|run| Some([run.0.config.threads as f64, ms(wall(run)?)]))
            .collect()
    };
    let mut series = vec![
        Series::new(
            "wall",
            SeriesStyle::Points,
            points(&|run| Some(run.0.wall_ns)),
        ),
        Series::new(
            "wall net of other programs' turns",
            SeriesStyle::Points,
            points(&net),
        ),
    ];
    if let Some(first) = runs.first() {
        let one = ms(net(first).unwrap_or(first.0.wall_ns));
        series.push(Series::new(
            "time-sliced: N × one thread",
            SeriesStyle::Line,
            vec![[1.0, one], [N as f64, N as f64 * one]],
        ));
        series.push(Series::new(
            "if they ran in parallel",
            SeriesStyle::Line,
            vec![[1.0, one], [N as f64, one]],
        ));
    }
    Chart::new(
        &format!("Wall time on core {core}"),
        "threads",
        "wall (ms)",
        series,
    )
}

/// How much of the run the kernel had 0, 1, 2… of the threads running.
fn running_chart(core: usize, overlap: &Overlap, rec: &Recording) -> Chart {
    let wall = rec.wall_ns.max(1) as f64;
    let bars = overlap
        .profile_ns
        .iter()
        .enumerate()
        .map(|(k, &ns)| [k as f64, 100.0 * ns as f64 / wall])
        .collect();
    Chart::new(
        &format!("Threads running at once on core {core} (the kernel's slices)"),
        "threads running",
        "% of the wall time",
        vec![Series::new(format!("{N} threads"), SeriesStyle::Bars, bars)],
    )
}
