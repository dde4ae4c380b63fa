//! The figures a run is judged by (names and formulas from the design).

use crate::run::Recording;

/// Measured figures of one run.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Metrics {
    /// From the run's origin until every worker ended.
    pub wall_ns: u64,
    /// Σ on-CPU time of the run's threads.
    pub cpu_ns: u64,
    /// Σ on-CPU time / wall: the average number of cores busy at once.
    pub parallelism: f64,
    /// Σ task lifetimes / wall: the average number of tasks in flight.
    pub concurrency: f64,
    pub tasks_ok: u64,
    pub tasks_failed: u64,
    pub voluntary_switches: u64,
    pub involuntary_switches: u64,
    /// Σ time the threads waited runnable for a CPU.
    pub run_delay_ns: u64,
    pub migrations: u64,
}

impl Metrics {
    /// The figures of a run, so far while it runs: finished tasks, the
    /// unfinished ones up to the moment observed, and the kernel's slices
    /// streamed so far; once ended, the threads' own counters.
    pub fn of(rec: &Recording) -> Metrics {
        let wall_ns = rec.elapsed_ns();
        let tasks = &rec.task_totals;
        let ended = !rec.is_running() && !rec.threads.is_empty();
        let live = &rec.live_sched;
        let streaming = rec.is_running() && !rec.live_slices.is_empty();
        let sum = |f: fn(&crate::telemetry::events::ThreadRecord) -> u64| -> u64 {
            rec.threads.iter().map(f).sum()
        };
        let cpu_ns = if ended {
            sum(|t| t.cpu_ns).max(tasks.cpu_ns)
        } else if streaming {
            live.sum(|t| t.running_ns).max(tasks.cpu_ns)
        } else {
            tasks.cpu_ns
        };
        let unfinished: u64 = rec
            .in_flight
            .iter()
            .flatten()
            .map(|t| rec.seen_ns.saturating_sub(t.start_ns))
            .sum();
        let (voluntary, involuntary, run_delay, migrations) = if streaming {
            (
                live.sum(|t| t.switches_out_blocked),
                live.sum(|t| t.switches_out_preempted),
                live.sum(|t| t.runnable_ns),
                live.sum(|t| t.migrations),
            )
        } else {
            (
                sum(|t| t.voluntary_switches),
                sum(|t| t.involuntary_switches),
                sum(|t| t.run_delay_ns),
                sum(|t| t.migrations),
            )
        };
        Metrics {
            wall_ns,
            cpu_ns,
            parallelism: ratio(cpu_ns, wall_ns),
            concurrency: ratio(tasks.lifetime_ns + unfinished, wall_ns),
            tasks_ok: tasks.ok,
            tasks_failed: rec.tasks.len() as u64 - tasks.ok,
            voluntary_switches: voluntary,
            involuntary_switches: involuntary,
            run_delay_ns: run_delay,
            migrations,
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// wall(1 thread) / wall(N threads) for the same total work.
pub fn speedup(base_wall_ns: u64, wall_ns: u64) -> f64 {
    ratio(base_wall_ns, wall_ns)
}

/// Speedup per core used (not per thread: threads beyond the cores add no
/// parallelism): 1.0 is perfect scaling.
pub fn efficiency(speedup: f64, cores: usize) -> f64 {
    speedup / cores.max(1) as f64
}

/// Amdahl's law: the speedup on `n` threads when a fraction `p` of the work parallelises.
pub fn amdahl(p: f64, n: usize) -> f64 {
    1.0 / ((1.0 - p) + p / n.max(1) as f64)
}

/// Karp–Flatt: the serial fraction implied by a measured speedup on `n` threads
/// (`None` for one thread, where it is undefined).
pub fn karp_flatt(speedup: f64, n: usize) -> Option<f64> {
    (n > 1 && speedup > 0.0).then(|| {
        let n = n as f64;
        (1.0 / speedup - 1.0 / n) / (1.0 - 1.0 / n)
    })
}

/// Formats nanoseconds for people: "850 µs", "12.3 ms", "1.52 s".
pub fn human_ns(ns: u64) -> String {
    let ns = ns as f64;
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.1} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laws_agree_with_each_other() {
        assert!((amdahl(1.0, 4) - 4.0).abs() < 1e-12);
        assert!((amdahl(0.0, 4) - 1.0).abs() < 1e-12);
        // Karp–Flatt recovers the serial fraction from Amdahl's speedup.
        let s = amdahl(0.9, 8);
        assert!((karp_flatt(s, 8).unwrap() - 0.1).abs() < 1e-9);
        assert_eq!(karp_flatt(1.0, 1), None);
        assert!((efficiency(speedup(200, 100), 2) - 1.0).abs() < 1e-12);
        assert_eq!(human_ns(12_345_678), "12.3 ms");
    }
}
