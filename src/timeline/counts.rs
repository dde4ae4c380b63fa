//! How many of a run's threads were running, and how many waited for a CPU,
//! over time: the many-core view's summary lane. Kept as thread-time per
//! fixed-width bucket, so slices may arrive in any order (a live capture
//! streams them by end, threads interleaved) and memory stays bounded
//! however long the run: when the run outgrows the buckets, their width
//! doubles and neighbours merge. A column's average count is its
//! buckets' thread-time over its width, each bucket spread evenly.

use crate::telemetry::sched::SliceState;
use crate::telemetry::utilisation::Busy;

/// Most buckets kept: 2 × 8 B each, 1 MiB in all.
const MAX_BUCKETS: usize = 1 << 16;
/// The finest bucket: below it a column's count is spread evenly anyway.
const FIRST_WIDTH_NS: u64 = 10_000;

#[derive(Clone, Copy)]
enum Series {
    Running,
    Runnable,
    Others,
}

#[derive(Clone, Debug)]
pub struct Counts {
    width_ns: u64,
    /// Thread-ns spent running, and runnable, in each bucket…
    running: Vec<u64>,
    runnable: Vec<u64>,
    /// …and core-ns other programs ran (system-wide capture only).
    others: Vec<u64>,
}

impl Default for Counts {
    fn default() -> Counts {
        Counts {
            width_ns: FIRST_WIDTH_NS,
            running: Vec::new(),
            runnable: Vec::new(),
            others: Vec::new(),
        }
    }
}

/// Average counts over one column.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Level {
    pub running: f64,
    pub runnable: f64,
    /// Cores busy with other programs (system-wide capture; else 0).
    pub others: f64,
}

impl Counts {
    /// The time each bucket covers: the resolution of the summary.
    pub fn resolution_ns(&self) -> u64 {
        self.width_ns
    }

    pub fn heap(&self) -> super::HeapBytes {
        [&self.running, &self.runnable, &self.others]
            .into_iter()
            .map(|v| super::HeapBytes::of(v, true))
            .sum()
    }

    pub fn shrink_to_fit(&mut self) {
        for v in [&mut self.running, &mut self.runnable, &mut self.others] {
            v.shrink_to_fit();
        }
    }

    /// Adds one thread's `[start_ns, end_ns)` in `state` (blocked time is not counted).
    pub fn add(&mut self, state: SliceState, start_ns: u64, end_ns: u64) {
        match state {
            SliceState::Running => self.spread(Series::Running, start_ns, end_ns),
            SliceState::Runnable => self.spread(Series::Runnable, start_ns, end_ns),
            SliceState::Blocked => {}
        }
    }

    /// Adds another program's time on one core.
    pub fn add_other(&mut self, start_ns: u64, end_ns: u64) {
        self.spread(Series::Others, start_ns, end_ns);
    }

    /// Forgets the other programs' time (before it is added again, whole).
    pub fn clear_others(&mut self) {
        self.others.fill(0);
    }

    fn spread(&mut self, series: Series, start_ns: u64, end_ns: u64) {
        if end_ns <= start_ns {
            return;
        }
        while end_ns.div_ceil(self.width_ns) as usize > MAX_BUCKETS {
            self.coarsen();
        }
        let needed = end_ns.div_ceil(self.width_ns) as usize;
        if self.running.len() < needed {
            for v in [&mut self.running, &mut self.runnable, &mut self.others] {
                v.resize(needed, 0);
            }
        }
        let into = match series {
            Series::Running => &mut self.running,
            Series::Runnable => &mut self.runnable,
            Series::Others => &mut self.others,
        };
        let w = self.width_ns;
        let mut t = start_ns;
        while t < end_ns {
            let b = (t / w) as usize;
            let edge = ((b as u64) + 1) * w;
            let upto = edge.min(end_ns);
            into[b] += upto - t;
            t = upto;
        }
    }

    /// Doubles the buckets' width, merging neighbours.
    fn coarsen(&mut self) {
        for v in [&mut self.running, &mut self.runnable, &mut self.others] {
            let merged: Vec<u64> = v.chunks(2).map(|c| c.iter().sum()).collect();
            *v = merged;
        }
        self.width_ns *= 2;
    }

    /// Each column's average counts: `bounds` ascending, `out` gets one less.
    pub fn columns(&self, bounds: &[u64], out: &mut Vec<Level>) {
        out.clear();
        out.extend(bounds.windows(2).map(|c| {
            let width = c[1].saturating_sub(c[0]).max(1) as f64;
            Level {
                running: self.integral(&self.running, c[0], c[1]) / width,
                runnable: self.integral(&self.runnable, c[0], c[1]) / width,
                others: self.integral(&self.others, c[0], c[1]) / width,
            }
        }));
    }

    /// Fills each column's `others` (columns between `bounds`, as
    /// [`Counts::columns`] made them) from sampled busy cores, for captures
    /// that do not see other programs: each stretch's busy cores less this
    /// run's threads running over that same stretch (never below zero), so
    /// both are taken at the sample's resolution, then spread over the
    /// columns the stretch covers. `busy`: in ns since the run's origin,
    /// in time order.
    pub fn others_sampled(&self, busy: &[Busy], bounds: &[u64], out: &mut [Level]) {
        // Only the stretches in view: a frame costs the window, not the run.
        let (Some(&from), Some(&to)) = (bounds.first(), bounds.last()) else {
            return;
        };
        let first = busy.partition_point(|b| b.to_ns <= from);
        let last = busy.partition_point(|b| b.from_ns < to).max(first);
        let others: Vec<(u64, u64, f64)> = busy[first..last]
            .iter()
            .filter(|b| b.to_ns > b.from_ns)
            .map(|b| {
                let running =
                    self.integral(&self.running, b.from_ns, b.to_ns) / (b.to_ns - b.from_ns) as f64;
                (b.from_ns, b.to_ns, (b.cores - running).max(0.0))
            })
            .collect();
        let mut first = 0;
        for (level, c) in out.iter_mut().zip(bounds.windows(2)) {
            let width = c[1].saturating_sub(c[0]).max(1) as f64;
            // Stretches wholly before this column are before every later one too.
            while others.get(first).is_some_and(|o| o.1 <= c[0]) {
                first += 1;
            }
            level.others = others[first..]
                .iter()
                .take_while(|o| o.0 < c[1])
                .map(|&(a, b, v)| v * b.min(c[1]).saturating_sub(a.max(c[0])) as f64)
                .sum::<f64>()
                / width;
        }
    }

    /// Thread-ns in `[a, b)`, a bucket's time spread evenly over it.
    fn integral(&self, buckets: &[u64], a: u64, b: u64) -> f64 {
        let w = self.width_ns;
        let first = (a / w) as usize;
        let last = (b.div_ceil(w) as usize).min(buckets.len());
        (first..last)
            .map(|i| {
                let (s, e) = (i as u64 * w, (i as u64 + 1) * w);
                let overlap = e.min(b).saturating_sub(s.max(a));
                buckets[i] as f64 * overlap as f64 / w as f64
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampled_other_work_is_the_busy_cores_less_the_run_over_each_sample() {
        let mut c = Counts::default();
        // One of the run's threads runs throughout the first second.
        c.add(SliceState::Running, 0, 1_000_000_000);
        let busy = |from_ms: u64, to_ms: u64, cores: f64| Busy {
            from_ns: from_ms * 1_000_000,
            to_ns: to_ms * 1_000_000,
            cores,
        };
        // 1.5 cores busy in the first half, 0.8 in the second (sampling
        // noise below the run's own thread must not go negative).
        let samples = [busy(0, 500, 1.5), busy(500, 1000, 0.8)];
        let bounds = [
            0,
            250_000_000,
            500_000_000,
            750_000_000,
            1_000_000_000,
            1_500_000_000,
        ];
        let mut out = Vec::new();
        c.columns(&bounds, &mut out);
        c.others_sampled(&samples, &bounds, &mut out);
        let others: Vec<f64> = out.iter().map(|l| l.others).collect();
        assert_eq!(others, [0.5, 0.5, 0.0, 0.0, 0.0]);
        // A column across both samples averages them over its width.
        c.columns(&[0, 1_000_000_000], &mut out);
        c.others_sampled(&samples, &[0, 1_000_000_000], &mut out);
        assert!((out[0].others - 0.25).abs() < 1e-9, "{:?}", out[0]);
    }

    #[test]
    fn counts_are_the_threads_on_average_in_any_order() {
        let mut c = Counts::default();
        // Two threads running over [0, 1 ms), a third waiting over [0.5, 1 ms), end first.
        c.add(SliceState::Runnable, 500_000, 1_000_000);
        c.add(SliceState::Running, 0, 1_000_000);
        c.add(SliceState::Running, 0, 1_000_000);
        c.add(SliceState::Blocked, 0, 1_000_000);
        let mut out = Vec::new();
        c.columns(&[0, 500_000, 1_000_000, 2_000_000], &mut out);
        assert_eq!(
            out[0],
            Level {
                running: 2.0,
                ..Level::default()
            }
        );
        assert_eq!(
            out[1],
            Level {
                running: 2.0,
                runnable: 1.0,
                others: 0.0
            }
        );
        assert_eq!(out[2], Level::default());
        // Another program on a core for the first half: half a core busy on average.
        c.add_other(0, 500_000);
        c.columns(&[0, 1_000_000], &mut out);
        assert_eq!(out[0].others, 0.5);
    }

    #[test]
    fn a_long_run_stays_within_its_buckets_and_keeps_its_time() {
        let mut c = Counts::default();
        let hour = 3_600_000_000_000;
        // Fine buckets first, then a run long enough to merge them many times.
        c.add(SliceState::Running, 0, 1_000_000);
        c.add(SliceState::Running, 1_000_000, hour);
        c.add(SliceState::Runnable, hour / 2, hour);
        assert!(c.running.len() <= MAX_BUCKETS, "{}", c.running.len());
        assert_eq!(
            c.running.iter().sum::<u64>(),
            hour,
            "no time lost in merging"
        );
        assert_eq!(c.runnable.iter().sum::<u64>(), hour / 2);
        let mut out = Vec::new();
        c.columns(&[0, hour / 2, hour], &mut out);
        // A bucket cut by a column's edge is spread evenly: each edge may
        // misplace up to one bucket's time.
        let slack = 2.0 * c.resolution_ns() as f64 / (hour / 2) as f64;
        let close = |a: f64, b: f64| (a - b).abs() <= slack;
        assert!(
            close(out[0].running, 1.0) && close(out[1].running, 1.0),
            "{out:?}"
        );
        assert!(
            close(out[0].runnable, 0.0) && close(out[1].runnable, 1.0),
            "{out:?}"
        );
    }
}
