//! Session and export costs at scale (`corelanes bench --sessions`): save
//! and open a `.pftrace`, write the Chrome trace, CSV and summary JSON, each
//! timed, with its peak memory beside the run's own size in memory.
//!
//! The run is synthetic (made by [`synthetic_run`], for scale only, never
//! shown as a run): 1 M tasks and 5 M kernel slices is beyond what a test
//! machine records in a few seconds.

use std::path::Path;
use std::time::Instant;

use crate::export;
use crate::run::{Placement, Recording, RunConfig};
use crate::session::{self, Machine};
use crate::telemetry::events::{RunEvent, TaskRecord, ThreadRecord};
use crate::telemetry::sched::{SchedReport, SchedSlice, SchedSource, SliceState};
use crate::topology::Topology;

/// Workers of the synthetic run: two per core, taking turns.
const THREADS: usize = 8;
/// Each running slice, and each wait between two, lasts 2 µs.
const TURN_NS: u64 = 2_000;

/// A finished synthetic run of `tasks` tasks and about `slices` kernel
/// slices: `THREADS` workers, two per core, each pair taking turns, so each
/// worker alternates running with waiting (runnable, every fourth wait
/// blocked), as a time-sliced run does. Tasks split each worker's time evenly.
pub fn synthetic_run(tasks: usize, slices: usize) -> Recording {
    let per_thread = (slices / THREADS).max(1) as u64;
    let wall_ns = per_thread * TURN_NS + TURN_NS;
    let mut all = Vec::with_capacity(per_thread as usize * THREADS);
    for thread in 0..THREADS {
        // The second of each pair starts one turn later, so the pair alternates.
        let first = (thread % 2) as u64;
        all.extend((0..per_thread).map(|k| {
            let turn = first + k;
            let state = match (k % 2, k % 8) {
                (0, _) => SliceState::Running,
                (_, 7) => SliceState::Blocked,
                _ => SliceState::Runnable,
            };
            SchedSlice::new(
                thread,
                thread / 2,
                state,
                turn * TURN_NS,
                (turn + 1) * TURN_NS,
            )
        }));
    }
    let per_task = (wall_ns / (tasks.div_ceil(THREADS) as u64).max(1)).max(1);
    let task = |i: usize| {
        let thread = i % THREADS;
        let start_ns = (i / THREADS) as u64 * per_task;
        TaskRecord {
            id: i as u32,
            thread: thread as u32,
            start_ns,
            end_ns: start_ns + per_task,
            core_at_start: (thread / 2) as u32,
            core_at_end: (thread / 2) as u32,
            cpu_ns: per_task / 2,
            ok: true,
        }
    };
    let mut rec = Recording::new(RunConfig {
        threads: THREADS,
        tasks,
        placement: Placement::Unpinned,
        ..RunConfig::defaults(Topology::get())
    });
    let threads = (0..THREADS)
        .map(|index| ThreadRecord {
            index,
            name: format!("corelanes-w{index}"),
            tid: 100_000 + index as i32,
            ..ThreadRecord::default()
        })
        .collect();
    rec.ingest(RunEvent::Started {
        origin_ns: 1_000_000_000,
        threads,
        sched_source: SchedSource::Perf,
        sched_note: None,
    });
    rec.ingest(RunEvent::Tasks((0..tasks).map(task).collect()));
    rec.ingest(RunEvent::Sched(SchedReport::of_slices(
        SchedSource::Perf,
        all,
        vec![Default::default(); THREADS],
    )));
    rec.ingest(RunEvent::Finished {
        wall_ns,
        cancelled: false,
    });
    rec
}

/// Bytes a recording holds on the heap: its tasks, slices and threads
/// (what scales with the run; the rest is a few hundred bytes).
pub fn heap_bytes(rec: &Recording) -> usize {
    let threads: usize = rec
        .threads
        .iter()
        .map(|t| size_of::<ThreadRecord>() + t.name.capacity())
        .sum();
    let slices = rec
        .sched
        .as_ref()
        .map_or(0, |s| s.slices.capacity() * size_of::<SchedSlice>());
    rec.tasks.capacity() * size_of::<TaskRecord>() + slices + threads
}

/// Resident memory now and its peak since the last reset, in bytes, from
/// `/proc/self/status` (`VmRSS`, `VmHWM`).
fn resident() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kib| kib * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// What one measured step cost: its time and the most memory it added.
pub struct Cost {
    pub secs: f64,
    /// Peak resident bytes above those resident before it; `None` where
    /// the kernel would not reset the peak (`/proc/self/clear_refs`).
    pub peak_bytes: Option<u64>,
}

/// Runs `step`, timing it and measuring its peak memory: the peak is reset
/// first (writing 5 to `/proc/self/clear_refs`), so `VmHWM` afterwards is
/// the step's own high-water mark. Free memory is handed back to the
/// kernel before, else a step reusing it would seem to cost nothing.
pub fn measure<T>(step: impl FnOnce() -> T) -> (T, Cost) {
    crate::sys::release_free_memory();
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let before = resident();
    let t0 = Instant::now();
    let out = step();
    let secs = t0.elapsed().as_secs_f64();
    let peak_bytes = match (reset, before, resident()) {
        (true, Some((rss, _)), Some((_, hwm))) => Some(hwm.saturating_sub(rss)),
        _ => None,
    };
    (out, Cost { secs, peak_bytes })
}

/// "1.23 s, peak +45.6 MiB (0.19× the run)".
fn shown(cost: &Cost, run_bytes: usize) -> String {
    let peak = cost.peak_bytes.map_or_else(
        || "peak not measured (clear_refs refused)".into(),
        |b| {
            format!(
                "peak +{:.1} MiB ({:.2}× the run)",
                b as f64 / f64::from(1 << 20),
                b as f64 / run_bytes as f64
            )
        },
    );
    format!("{:.2} s, {peak}", cost.secs)
}

/// Prints the session and export figures for a synthetic run of `tasks`
/// tasks and `slices` kernel slices, written in `dir`.
pub fn print_figures(tasks: usize, slices: usize, dir: &Path) -> anyhow::Result<()> {
    let rec = synthetic_run(tasks, slices);
    let run_bytes = heap_bytes(&rec);
    let slices = rec.slices().len();
    println!(
        "sessions: synthetic run of {} tasks and {slices} kernel slices, {:.1} MiB in memory",
        rec.tasks.len(),
        run_bytes as f64 / f64::from(1 << 20)
    );
    let machine = Machine::this();
    let path = dir.join("bench.pftrace");
    let (saved, cost) = measure(|| session::save(&path, &[(&rec, &machine)]));
    saved?;
    let size = std::fs::metadata(&path)?.len();
    println!(
        "  save .pftrace: {}, {:.1} MiB, {:.1} B per slice   (targets ≤ 2 s, ≤ 1.5×)",
        shown(&cost, run_bytes),
        size as f64 / f64::from(1 << 20),
        size as f64 / slices as f64
    );
    let (opened, cost) = measure(|| session::open(&path));
    let back = opened?;
    println!(
        "  open .pftrace: {}   (target ≤ 2 s)",
        shown(&cost, run_bytes)
    );
    anyhow::ensure!(
        back.len() == 1 && back[0].recording.tasks.len() == rec.tasks.len(),
        "the session did not read back whole"
    );
    drop(back);
    std::fs::remove_file(&path)?;
    let exports: [(&str, &str, export::Render); 3] = [
        (
            "Chrome trace JSON",
            "bench.trace.json",
            export::write_chrome_trace,
        ),
        ("tasks CSV", "bench.csv", export::write_tasks_csv),
        ("summary JSON", "bench.json", export::write_summary_json),
    ];
    for (what, file, render) in exports {
        let path = dir.join(file);
        let (written, cost) = measure(|| export::write_run(&path, &rec, render));
        written?;
        let size = std::fs::metadata(&path)?.len();
        println!(
            "  {what}: {}, {:.1} MiB",
            shown(&cost, run_bytes),
            size as f64 / f64::from(1 << 20)
        );
        std::fs::remove_file(&path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_synthetic_run_is_as_big_as_asked_and_reads_as_turns() {
        let rec = synthetic_run(1000, 8000);
        assert_eq!(rec.tasks.len(), 1000);
        assert_eq!(rec.slices().len(), 8000);
        // Each pair of workers shares a core, one running at a time.
        let mut running: Vec<_> = rec
            .slices()
            .iter()
            .filter(|s| s.state == SliceState::Running)
            .map(|s| (s.core, s.start_ns, s.end_ns))
            .collect();
        running.sort_unstable();
        for pair in running.windows(2) {
            assert!(
                pair[0].0 != pair[1].0 || pair[0].2 <= pair[1].1,
                "{pair:?} overlap on one core"
            );
        }
        assert!(rec.tasks.iter().all(|t| t.end_ns <= rec.wall_ns));
        assert!(heap_bytes(&rec) >= 8000 * size_of::<SchedSlice>());
    }

    #[test]
    fn a_step_is_timed_and_resident_memory_read() {
        let (rss, hwm) = resident().expect("/proc/self/status has VmRSS and VmHWM");
        assert!(rss > 0 && hwm >= rss, "rss {rss}, peak {hwm}");
        // The peak itself is left to `corelanes bench`: tests running beside
        // this one in the process move resident memory both ways.
        let (len, cost) = measure(|| std::hint::black_box(vec![1u8; 1 << 20]).len());
        assert_eq!(len, 1 << 20);
        assert!(cost.secs > 0.0);
    }
}
