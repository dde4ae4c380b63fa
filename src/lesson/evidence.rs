//! The kernel's evidence the lessons judge by: whether a run's threads ran
//! at the same instant, read from its scheduler slices.

use crate::metrics::KernelFigures;
use crate::run::Recording;
use crate::telemetry::sched::{SchedSlice, SchedSource, SliceState};

/// Where /proc sampling places each edge of a slice within its ~1 ms
/// interval, so two threads taking turns appear to overlap for up to a few
/// percent of their running time (1-16 % of one thread's, of two, was seen
/// by the claims tests): the bound used in place of an exact one.
pub const PROCFS_OVERLAP_BOUND: f64 = 0.125;

/// How long a run's threads ran at the same instant, against how long they ran.
#[derive(Clone, Debug)]
pub struct Overlap {
    /// Σ running time of the threads.
    pub running_ns: u64,
    /// Time during which two or more of them were running.
    pub together_ns: u64,
    pub source: SchedSource,
    /// The largest `together / running` that still means "one at a time" for
    /// this source: `exact` for perf, [`PROCFS_OVERLAP_BOUND`] for procfs.
    pub bound: f64,
    /// `profile_ns[k]`: the time during which exactly k threads ran.
    pub profile_ns: Vec<u64>,
    /// Time during which some of the threads waited for a CPU and none ran:
    /// on one core, the time other programs held it.
    pub others_ns: u64,
    /// Σ time the threads waited for a CPU while one of them ran (what
    /// sharing a core costs them, other programs' turns left out).
    pub sibling_wait_ns: u64,
}

impl Overlap {
    /// The overlap in `rec`'s slices, judged against `exact` where perf
    /// captured them; `None` where no slices were captured at all.
    pub fn of(rec: &Recording, exact: f64) -> Option<Overlap> {
        let bound = match rec.sched_source {
            SchedSource::Perf => exact,
            SchedSource::Procfs => PROCFS_OVERLAP_BOUND,
            SchedSource::Off => return None,
        };
        let k = KernelFigures::of(rec.slices(), rec.wall_ns);
        let weighted = |from: usize| -> u64 {
            k.profile_ns
                .iter()
                .enumerate()
                .skip(from)
                .map(|(n, ns)| n as u64 * ns)
                .sum()
        };
        let (others_ns, waiting_for_others_ns) = held_by_others(rec.slices(), rec.wall_ns);
        let runnable_ns: u64 = rec
            .slices()
            .iter()
            .filter(|s| s.state == SliceState::Runnable)
            .map(|s| s.end_ns.min(rec.wall_ns).saturating_sub(s.start_ns))
            .sum();
        Some(Overlap {
            running_ns: weighted(1),
            together_ns: k.profile_ns.iter().skip(2).sum(),
            source: rec.sched_source,
            bound,
            profile_ns: k.profile_ns,
            others_ns,
            sibling_wait_ns: runnable_ns.saturating_sub(waiting_for_others_ns),
        })
    }

    /// The wall less the time other programs held the core (see `others_ns`).
    pub fn net_wall_ns(&self, wall_ns: u64) -> u64 {
        wall_ns.saturating_sub(self.others_ns)
    }

    /// The threads' share of their time wanting a CPU spent waiting for
    /// one another: (N − 1) / N for N threads taking turns on one core.
    pub fn sibling_wait_share(&self) -> f64 {
        let wanting = self.running_ns + self.sibling_wait_ns;
        if wanting == 0 {
            0.0
        } else {
            self.sibling_wait_ns as f64 / wanting as f64
        }
    }

    /// `together / running`, 0 where nothing ran.
    pub fn share(&self) -> f64 {
        if self.running_ns == 0 {
            0.0
        } else {
            self.together_ns as f64 / self.running_ns as f64
        }
    }

    pub fn took_turns(&self) -> bool {
        self.share() <= self.bound
    }
}

/// Within `[0, wall_ns)`: how long some thread was runnable while none ran,
/// and Σ over that time of the number runnable (thread-time spent waiting
/// for others).
fn held_by_others(slices: &[SchedSlice], wall_ns: u64) -> (u64, u64) {
    // (time, Δrunning, Δrunnable), swept in time order.
    let mut edges: Vec<(u64, i64, i64)> = Vec::new();
    for s in slices {
        let d = match s.state {
            SliceState::Running => (1, 0),
            SliceState::Runnable => (0, 1),
            SliceState::Blocked => continue,
        };
        let (start, end) = (s.start_ns.min(wall_ns), s.end_ns.min(wall_ns));
        edges.push((start, d.0, d.1));
        edges.push((end, -d.0, -d.1));
    }
    edges.sort_unstable();
    let (mut running, mut runnable, mut at) = (0i64, 0i64, 0u64);
    let (mut held, mut waiting) = (0u64, 0u64);
    for (t, d_running, d_runnable) in edges {
        if running == 0 && runnable > 0 {
            held += t - at;
            waiting += (t - at) * runnable as u64;
        }
        (running, runnable, at) = (running + d_running, runnable + d_runnable, t);
    }
    (held, waiting)
}

/// The name of a scheduler source as the JSON writes it.
pub fn source_name(source: SchedSource) -> &'static str {
    match source {
        SchedSource::Perf => "perf",
        SchedSource::Procfs => "procfs",
        SchedSource::Off => "off",
    }
}

/// Why a lesson cannot judge by the kernel's slices: the run's own note.
pub fn no_slices(rec: &Recording) -> String {
    format!(
        "no scheduler slices were captured, so whether the threads ran at the same instant cannot be judged ({})",
        rec.sched_note.as_deref().unwrap_or("capture was off")
    )
}

/// The largest share of all CPUs' time other programs used just before one
/// of the lesson's runs so far (`None` where none was measured).
pub fn others_busy(lab: &super::Lab) -> Option<f64> {
    lab.runs
        .iter()
        .filter_map(|rec| rec.environment.as_ref()?.others_busy)
        .reduce(f64::max)
}

/// Why a claim about speed may have failed: other programs' load, where
/// it was seen, or cores that are not independent.
pub fn slowed_by(others_busy: Option<f64>) -> String {
    match others_busy {
        Some(busy) if busy >= 0.1 => format!(
            "other programs kept {} of the CPUs busy just before one of the runs",
            percent(busy)
        ),
        _ => "other load on the cores, or cores that share one physical core (a VM's vCPUs may)"
            .into(),
    }
}

/// "1 thread", "2 threads".
pub fn threads(n: usize) -> String {
    format!("{n} thread{}", if n == 1 { "" } else { "s" })
}

/// Nanoseconds as milliseconds, for figures and charts.
pub fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// A percentage with as many decimals as small shares need ("0.003 %", "12.5 %").
pub fn percent(share: f64) -> String {
    let p = share * 100.0;
    if p != 0.0 && p.abs() < 0.1 {
        format!("{p:.3} %")
    } else {
        format!("{p:.1} %")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::RunConfig;
    use crate::telemetry::sched::SchedReport;
    use crate::topology::Topology;

    fn recorded(source: SchedSource, slices: Vec<SchedSlice>, wall_ns: u64) -> Recording {
        Recording {
            sched_source: source,
            wall_ns,
            status: crate::run::RunStatus::Finished,
            sched: Some(SchedReport::of_slices(source, slices, Vec::new())),
            ..Recording::new(RunConfig::defaults(Topology::get()))
        }
    }

    fn slice(thread: usize, state: SliceState, start_ns: u64, end_ns: u64) -> SchedSlice {
        SchedSlice::on_core0(thread, state, start_ns, end_ns)
    }

    fn running(thread: usize, start_ns: u64, end_ns: u64) -> SchedSlice {
        slice(thread, SliceState::Running, start_ns, end_ns)
    }

    #[test]
    fn waits_split_into_waiting_for_each_other_and_for_other_programs() {
        use SliceState::Runnable;
        // One core over 100: thread 0 runs 0-30 and 60-80, thread 1 runs
        // 30-60; 80-100 another program holds it while both wait.
        let rec = recorded(
            SchedSource::Perf,
            vec![
                running(0, 0, 30),
                slice(0, Runnable, 30, 60),
                running(0, 60, 80),
                slice(0, Runnable, 80, 100),
                slice(1, Runnable, 0, 30),
                running(1, 30, 60),
                slice(1, Runnable, 60, 100),
            ],
            100,
        );
        let o = Overlap::of(&rec, 0.001).unwrap();
        assert_eq!(o.others_ns, 20, "80-100, nobody of ours ran");
        assert_eq!(o.net_wall_ns(100), 80);
        // Thread 0 waits 30 for thread 1, thread 1 waits 30 + 20 for thread
        // 0; the last 20 each are waits for the stranger.
        assert_eq!(o.sibling_wait_ns, 30 + 30 + 20);
        assert_eq!(o.running_ns, 80);
        assert!((o.sibling_wait_share() - 0.5).abs() < 1e-9);
    }

    #[test]
    fn overlap_is_the_time_two_or_more_ran_over_the_running_time() {
        // Thread 0 runs 0-60, thread 1 runs 50-100: together 10 of 110.
        let rec = recorded(
            SchedSource::Perf,
            vec![running(0, 0, 60), running(1, 50, 100)],
            100,
        );
        let o = Overlap::of(&rec, 0.001).unwrap();
        assert_eq!((o.together_ns, o.running_ns), (10, 110));
        assert!(!o.took_turns(), "9 % is not one at a time by perf's bound");
        let o = Overlap::of(
            &recorded(SchedSource::Procfs, rec.slices().to_vec(), 100),
            0.001,
        )
        .unwrap();
        assert!(o.took_turns(), "within the procfs bound");
        assert!(Overlap::of(&recorded(SchedSource::Off, Vec::new(), 100), 0.001).is_none());
        assert_eq!(percent(0.00002), "0.002 %");
        assert_eq!(percent(0.5), "50.0 %");
    }
}
