//! The figures a run is judged by (names and formulas from the design).

use crate::telemetry::events::{TaskRecord, ThreadRecord};
use crate::telemetry::sched::slices::Totals;
use crate::telemetry::sched::{SchedSlice, SliceState};

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

/// Sums over a run's finished tasks, kept as tasks arrive so that figures
/// cost nothing per frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TaskTotals {
    pub cpu_ns: u64,
    /// Σ lifetimes (end − start).
    pub lifetime_ns: u64,
    pub ok: u64,
    /// Every task recorded, ok or not.
    pub recorded: u64,
}

impl TaskTotals {
    pub fn add(&mut self, task: &TaskRecord) {
        self.cpu_ns += task.cpu_ns;
        self.lifetime_ns += task.duration_ns();
        self.ok += u64::from(task.ok);
        self.recorded += 1;
    }
}

/// What a run's figures are computed from.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    /// From the run's origin until its end, or until now while it runs.
    pub wall_ns: u64,
    /// The threads ended: their own counters are final.
    pub threads_ended: bool,
    pub threads: &'a [ThreadRecord],
    pub tasks: TaskTotals,
    /// Σ lifetimes so far of the tasks not finished yet.
    pub unfinished_ns: u64,
    /// While the run goes on: the totals of the kernel's slices streamed so far.
    pub live_sched: Option<&'a Totals>,
}

impl Metrics {
    /// The figures of a run, so far while it runs: finished tasks, the
    /// unfinished ones up to the moment observed, and the kernel's slices
    /// streamed so far; once ended, the threads' own counters.
    pub fn of(i: &Inputs) -> Metrics {
        let tasks = &i.tasks;
        let sum = |f: fn(&ThreadRecord) -> u64| -> u64 { i.threads.iter().map(f).sum() };
        let cpu_ns = match i.live_sched {
            _ if i.threads_ended => sum(|t| t.cpu_ns).max(tasks.cpu_ns),
            Some(live) => live.sum(|t| t.running_ns).max(tasks.cpu_ns),
            None => tasks.cpu_ns,
        };
        let (voluntary, involuntary, run_delay, migrations) = match i.live_sched {
            Some(live) if !i.threads_ended => (
                live.sum(|t| t.switches_out_blocked),
                live.sum(|t| t.switches_out_preempted),
                live.sum(|t| t.runnable_ns),
                live.sum(|t| t.migrations),
            ),
            _ => (
                sum(|t| t.voluntary_switches),
                sum(|t| t.involuntary_switches),
                sum(|t| t.run_delay_ns),
                sum(|t| t.migrations),
            ),
        };
        Metrics {
            wall_ns: i.wall_ns,
            cpu_ns,
            parallelism: ratio(cpu_ns, i.wall_ns),
            concurrency: ratio(tasks.lifetime_ns + i.unfinished_ns, i.wall_ns),
            tasks_ok: tasks.ok,
            tasks_failed: tasks.recorded - tasks.ok,
            voluntary_switches: voluntary,
            involuntary_switches: involuntary,
            run_delay_ns: run_delay,
            migrations,
        }
    }
}

/// Figures from the kernel's slices alone, for a program with no task
/// stamps (`corelanes record`).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KernelFigures {
    /// Σ running / wall: the average number of the threads running.
    pub parallelism: f64,
    /// Σ (running + waiting for a CPU) / wall: the average number that
    /// wanted a CPU, whether they had one or not.
    pub concurrency: f64,
    /// `profile_ns[k]`: the time during which exactly k threads were running
    /// (Visual Studio's CPU utilisation view, as a histogram), within the wall.
    pub profile_ns: Vec<u64>,
}

/// The number of `slices` in `state` at each instant that number changes,
/// as `(time_ns, count)` in time order (slices are half-open, `[start,
/// end)`, so one ending as another starts changes nothing). The first is at
/// time 0, the start of the run.
pub fn count_changes(slices: &[SchedSlice], state: SliceState) -> CountChanges {
    // Two sorted lists of instants and a merge: 16 B a slice in state, where
    // sorting (time, ±1) pairs would take 16 B a boundary.
    let (mut starts, mut ends): (Vec<u64>, Vec<u64>) = slices
        .iter()
        .filter(|s| s.state == state)
        .map(|s| (s.start_ns, s.end_ns.max(s.start_ns)))
        .unzip();
    // Slices come by thread, each thread's in start order, so these are a
    // few sorted runs: a stable sort merges them where an unstable one
    // would sort from scratch.
    starts.sort();
    ends.sort();
    let zero_first = starts.first().is_none_or(|&t| t > 0);
    CountChanges {
        starts,
        ends,
        s: 0,
        e: 0,
        count: 0,
        shown: None,
        zero_first,
    }
}

/// See [`count_changes`].
pub struct CountChanges {
    starts: Vec<u64>,
    ends: Vec<u64>,
    s: usize,
    e: usize,
    count: i64,
    shown: Option<i64>,
    /// Whether a 0 at time 0 is still to come first.
    zero_first: bool,
}

impl Iterator for CountChanges {
    type Item = (u64, i64);

    fn next(&mut self) -> Option<(u64, i64)> {
        if std::mem::take(&mut self.zero_first) {
            self.shown = Some(0);
            return Some((0, 0));
        }
        while self.e < self.ends.len() {
            let end = self.ends[self.e];
            let now = self.starts.get(self.s).map_or(end, |&t| t.min(end));
            while self.starts.get(self.s) == Some(&now) {
                self.count += 1;
                self.s += 1;
            }
            while self.ends.get(self.e) == Some(&now) {
                self.count -= 1;
                self.e += 1;
            }
            if self.shown != Some(self.count) {
                self.shown = Some(self.count);
                return Some((now, self.count));
            }
        }
        None
    }
}

impl KernelFigures {
    pub fn of(slices: &[SchedSlice], wall_ns: u64) -> KernelFigures {
        let sum = |keep: fn(SliceState) -> bool| -> u64 {
            slices
                .iter()
                .filter(|s| keep(s.state))
                .map(|s| s.end_ns.min(wall_ns).saturating_sub(s.start_ns))
                .sum()
        };
        let running = sum(|s| s == SliceState::Running);
        let wanting = sum(|s| s != SliceState::Blocked);
        // Time at each level of the running count, clipped to the wall.
        let mut profile_ns = vec![0u64; 1];
        let (mut level, mut at) = (0usize, 0u64);
        for (t, count) in count_changes(slices, SliceState::Running) {
            let t = t.min(wall_ns);
            profile_ns[level] += t - at;
            (level, at) = (count as usize, t);
            if profile_ns.len() <= level {
                profile_ns.resize(level + 1, 0);
            }
        }
        profile_ns[level] += wall_ns.saturating_sub(at);
        KernelFigures {
            parallelism: ratio(running, wall_ns),
            concurrency: ratio(wanting, wall_ns),
            profile_ns,
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

/// The `q` quantile (0–1) of `sorted` (ascending), by nearest rank; 0 when empty.
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    let i = ((sorted.len() as f64 - 1.0) * q.clamp(0.0, 1.0)).round() as usize;
    sorted.get(i).copied().unwrap_or(0)
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
    fn kernel_figures_count_threads_running_at_each_instant() {
        let slice = |thread, state, start_ns, end_ns| {
            SchedSlice::new(thread, thread, state, start_ns, end_ns)
        };
        use SliceState::{Blocked, Runnable, Running};
        // Over 100 ns: thread 0 runs 0-60, thread 1 waits 0-20, runs 20-80,
        // blocks 80-100; nothing runs 80-100.
        let slices = [
            slice(0, Running, 0, 60),
            slice(0, Blocked, 60, 100),
            slice(1, Runnable, 0, 20),
            slice(1, Running, 20, 80),
            slice(1, Blocked, 80, 120),
        ];
        let k = KernelFigures::of(&slices, 100);
        assert_eq!(k.profile_ns, vec![20, 40, 40], "0, 1 and 2 running");
        assert!((k.parallelism - 1.2).abs() < 1e-9, "{k:?}");
        assert!((k.concurrency - 1.4).abs() < 1e-9, "{k:?}");
        assert_eq!(KernelFigures::of(&[], 50).profile_ns, vec![50]);
    }

    #[test]
    fn a_run_in_progress_is_measured_so_far() {
        use crate::telemetry::sched::{SchedSlice, SliceState};
        // 1 s in: one task of 400 ms done, one in flight for 600 ms, and the
        // kernel saw 900 ms of running, 300 ms waiting, one preemption.
        let mut live = Totals::default();
        let slice = |state, start_ns, end_ns| SchedSlice::new(0, 0, state, start_ns, end_ns);
        live.add(&slice(SliceState::Running, 0, 900_000_000), true);
        live.add(
            &slice(SliceState::Runnable, 900_000_000, 1_200_000_000),
            true,
        );
        let mut tasks = TaskTotals::default();
        tasks.add(&TaskRecord {
            id: 0,
            thread: 0,
            start_ns: 0,
            end_ns: 400_000_000,
            core_at_start: 0,
            core_at_end: 0,
            cpu_ns: 350_000_000,
            ok: true,
        });
        let m = Metrics::of(&Inputs {
            wall_ns: 1_000_000_000,
            threads_ended: false,
            threads: &[],
            tasks,
            unfinished_ns: 600_000_000,
            live_sched: Some(&live),
        });
        assert!((m.parallelism - 0.9).abs() < 1e-9, "{m:?}");
        assert!((m.concurrency - 1.0).abs() < 1e-9, "{m:?}");
        assert_eq!((m.run_delay_ns, m.involuntary_switches), (300_000_000, 1));
        assert_eq!((m.tasks_ok, m.tasks_failed), (1, 0));
    }

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
