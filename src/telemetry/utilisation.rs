//! System-wide per-core utilisation from sysinfo, sampled on a background
//! thread so that no frame ever waits for `/proc/stat`.
//!
//! The figures include every process on the machine: interference from other
//! programs is part of what a run measured, so it is shown, not hidden.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::sys;

/// Every core's busy percentage at one instant, or averaged over a bucket of time.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// `CLOCK_MONOTONIC` ns, the clock of a run's `origin_ns`; for an
    /// average, the mean time of the readings it stands for.
    pub t_ns: u64,
    /// Busy % (0–100) of each CPU the system lists, by CPU id.
    pub per_core: Vec<f32>,
    /// How many readings this averages (1: one reading as taken).
    pub readings: u32,
    /// The width of the bucket it averages; zero for a single reading.
    pub span_ns: u64,
}

impl Sample {
    /// One reading, as the sampler takes it.
    pub fn reading(t_ns: u64, per_core: Vec<f32>) -> Sample {
        Sample {
            t_ns,
            per_core,
            readings: 1,
            span_ns: 0,
        }
    }

    /// Folds `other` into this average, each weighted by its readings.
    fn absorb(&mut self, other: &Sample) {
        let (a, b) = (self.readings, other.readings);
        let total = a + b;
        let weigh = |x: f32, y: f32| (x * a as f32 + y * b as f32) / total as f32;
        for (mine, &theirs) in self.per_core.iter_mut().zip(&other.per_core) {
            *mine = weigh(*mine, theirs);
        }
        let t = (u128::from(self.t_ns) * u128::from(a) + u128::from(other.t_ns) * u128::from(b))
            / u128::from(total);
        self.t_ns = t as u64;
        self.readings = total;
    }
}

/// Busy CPUs, summed, over a stretch of time (sampled: see [`History::busy`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Busy {
    pub from_ns: u64,
    pub to_ns: u64,
    pub cores: f64,
}

impl Busy {
    /// The same stretch in ns since `origin_ns` (a run's times), `None` if
    /// it ended before then; a stretch across the origin is cut there.
    pub fn since(self, origin_ns: u64) -> Option<Busy> {
        (self.to_ns > origin_ns).then(|| Busy {
            from_ns: self.from_ns.saturating_sub(origin_ns),
            to_ns: self.to_ns - origin_ns,
            cores: self.cores,
        })
    }
}

/// How samples age: a tier keeps them until they are `age` older than the
/// newest, averaged into buckets `width` wide (zero: as read), then hands
/// them to the next. Widths divide each other, so a bucket's mean time
/// names the coarser bucket it belongs to.
struct Tier {
    age: Duration,
    width: Duration,
}

const MINUTE: u64 = 60;
const TIERS: [Tier; 4] = [
    Tier {
        age: Duration::from_secs(2 * MINUTE),
        width: Duration::ZERO,
    },
    Tier {
        age: Duration::from_secs(20 * MINUTE),
        width: Duration::from_secs(2),
    },
    Tier {
        age: Duration::from_secs(180 * MINUTE),
        width: Duration::from_secs(20),
    },
    Tier {
        age: Duration::MAX,
        width: Duration::from_secs(MINUTE),
    },
];

/// Every sample of the session, oldest first, thinned as it ages: the last
/// 2 minutes as read, then 2 s averages up to 20 minutes old, 20 s averages
/// up to 3 hours, and 1 minute averages beyond, so every run in the history
/// keeps its plot.
///
/// Memory: at sysinfo's fastest rate (one reading per 200 ms) a day-long
/// session keeps at most 600 + 540 + 480 + 1,260 = 2,880 samples (plus one
/// partial bucket per tier), about 0.3 MB with 16 CPUs; each further day
/// adds 1,440.
#[derive(Debug)]
pub struct History {
    /// Newest tier first; within a tier, oldest first.
    tiers: [VecDeque<Sample>; TIERS.len()],
}

impl Default for History {
    fn default() -> Self {
        History {
            tiers: std::array::from_fn(|_| VecDeque::new()),
        }
    }
}

impl History {
    /// Adds the newest sample and moves those that have aged into coarser tiers.
    pub fn push(&mut self, sample: Sample) {
        let newest = sample.t_ns;
        self.tiers[0].push_back(sample);
        for (i, tier) in TIERS.iter().enumerate().skip(1) {
            let keep_ns = u64::try_from(TIERS[i - 1].age.as_nanos()).unwrap_or(u64::MAX);
            let width_ns = tier.width.as_nanos() as u64;
            let [younger, older] = self.tiers.get_disjoint_mut([i - 1, i]).expect("two tiers");
            while let Some(aged) = younger.pop_front_if(|s| s.t_ns.saturating_add(keep_ns) < newest)
            {
                match older.back_mut() {
                    Some(bucket)
                        if bucket.t_ns / width_ns == aged.t_ns / width_ns
                            && bucket.per_core.len() == aged.per_core.len() =>
                    {
                        bucket.absorb(&aged);
                    }
                    _ => older.push_back(Sample {
                        span_ns: width_ns,
                        ..aged
                    }),
                }
            }
        }
    }

    /// Every sample kept, oldest first.
    pub fn samples(&self) -> impl DoubleEndedIterator<Item = &Sample> {
        self.tiers.iter().rev().flatten()
    }

    pub fn len(&self) -> usize {
        self.tiers.iter().map(VecDeque::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The samples from `from_ns` to `to_ns`, with the nearest one on each
    /// side, so that a line drawn through them crosses the whole window even
    /// where old samples are far apart.
    pub fn window(&self, from_ns: u64, to_ns: u64) -> Vec<&Sample> {
        let mut shown = Vec::new();
        let mut before = None;
        for sample in self.samples() {
            if sample.t_ns < from_ns {
                before = Some(sample);
                continue;
            }
            shown.extend(before.take());
            shown.push(sample);
            if sample.t_ns > to_ns {
                break;
            }
        }
        shown
    }

    /// How many of `cpus` were busy, summed, from `from_ns` to `to_ns`
    /// (`CLOCK_MONOTONIC`), as the stretches the samples measured: a reading
    /// the `period_ns` before it, an average the bucket it stands for.
    /// Read from the newest back, so a window of recent time costs what it holds.
    pub fn busy(&self, cpus: &[usize], period_ns: u64, from_ns: u64, to_ns: u64) -> Vec<Busy> {
        let mut busy: Vec<Busy> = self
            .samples()
            .rev()
            .map(|s| {
                let (from, to) = match s.span_ns {
                    0 => (s.t_ns.saturating_sub(period_ns), s.t_ns),
                    w => (s.t_ns / w * w, (s.t_ns / w + 1) * w),
                };
                let cores = cpus
                    .iter()
                    .filter_map(|&c| s.per_core.get(c))
                    .map(|&pct| f64::from(pct) / 100.0)
                    .sum();
                Busy {
                    from_ns: from,
                    to_ns: to,
                    cores,
                }
            })
            .take_while(|b| b.to_ns > from_ns)
            .filter(|b| b.from_ns < to_ns)
            .collect();
        busy.reverse();
        busy
    }

    /// How many CPUs the latest sample lists.
    pub fn cores(&self) -> usize {
        self.samples().next_back().map_or(0, |s| s.per_core.len())
    }
}

/// The background sampler. Dropping it stops and joins its thread.
pub struct Sampler {
    history: Arc<Mutex<History>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    period: Duration,
}

impl Sampler {
    /// Starts sampling every `period` (never faster than sysinfo's minimum,
    /// below which its figures are meaningless). `on_sample` runs after each
    /// sample, e.g. to ask a window to repaint.
    pub fn start(
        period: Duration,
        on_sample: impl Fn() + Send + 'static,
    ) -> std::io::Result<Sampler> {
        let period = period.max(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        let system = sysinfo::System::new().map_err(|e| std::io::Error::other(e.to_string()))?;
        let history = Arc::new(Mutex::new(History::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (shared, flag) = (history.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("corelanes-utilisation".into())
            .spawn(move || sample_until(system, &flag, period, &shared, on_sample))?;
        Ok(Sampler {
            history,
            stop,
            thread: Some(thread),
            period,
        })
    }

    pub fn period(&self) -> Duration {
        self.period
    }

    /// Reads the history under its lock (held only as long as `read` runs).
    pub fn with_history<R>(&self, read: impl FnOnce(&History) -> R) -> R {
        read(
            &self
                .history
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

fn sample_until(
    mut system: sysinfo::System,
    stop: &AtomicBool,
    period: Duration,
    history: &Mutex<History>,
    on_sample: impl Fn(),
) {
    // sysinfo's usage is a difference between two reads: the first one only primes it.
    system.refresh_cpu_usage();
    while !stop.load(Ordering::Relaxed) {
        std::thread::park_timeout(period);
        if stop.load(Ordering::Relaxed) {
            break;
        }
        system.refresh_cpu_usage();
        let sample = Sample::reading(
            sys::monotonic_ns(),
            system.cpus().iter().map(sysinfo::Cpu::usage).collect(),
        );
        history
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(sample);
        on_sample();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;
    /// sysinfo's fastest rate, the worst case for memory.
    const PERIOD_NS: u64 = 200_000_000;

    #[test]
    fn busy_cores_are_the_chosen_cpus_summed_over_what_each_sample_measured() {
        let mut h = History::default();
        // A reading at 0 s, aged into a 2 s bucket by one 200 s later.
        h.push(Sample::reading(0, vec![50.0, 100.0, 30.0]));
        h.push(Sample::reading(200 * SECOND, vec![10.0, 20.0, 100.0]));
        h.push(Sample::reading(
            200 * SECOND + PERIOD_NS,
            vec![0.0, 40.0, 100.0],
        ));
        let busy = h.busy(&[0, 1], PERIOD_NS, 0, 300 * SECOND);
        let got: Vec<(u64, u64, f64)> = busy
            .iter()
            .map(|b| (b.from_ns, b.to_ns, (b.cores * 100.0).round() / 100.0))
            .collect();
        assert_eq!(
            got,
            [
                (0, 2 * SECOND, 1.5),
                (200 * SECOND - PERIOD_NS, 200 * SECOND, 0.3),
                (200 * SECOND, 200 * SECOND + PERIOD_NS, 0.4),
            ]
        );
        // Only what overlaps the window asked for, cut at a run's origin.
        let later = h.busy(&[2], PERIOD_NS, 200 * SECOND, 300 * SECOND);
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].since(200 * SECOND).unwrap().to_ns, PERIOD_NS);
        assert_eq!(later[0].cores, 1.0);
    }

    /// Readings every 200 ms from `from_s` to `to_s`, each made by `busy(t_ns)`.
    fn feed(history: &mut History, from_s: u64, to_s: u64, busy: impl Fn(u64) -> Vec<f32>) {
        for t in (from_s * SECOND..to_s * SECOND).step_by(PERIOD_NS as usize) {
            history.push(Sample::reading(t, busy(t)));
        }
    }

    #[test]
    fn a_day_long_session_stays_within_the_stated_bound() {
        let mut history = History::default();
        let day = 24 * 3600;
        feed(&mut history, 0, day, |_| vec![50.0, 10.0]);
        // The doc comment's bound, plus one partial bucket per coarse tier.
        assert!(history.len() <= 2_880 + 3, "{} samples", history.len());
        let oldest = history.samples().next().unwrap();
        assert!(oldest.t_ns < 60 * SECOND, "the whole session is kept");
        assert_eq!(
            history.samples().next_back().unwrap().t_ns,
            day * SECOND - PERIOD_NS
        );
        let readings: u64 = history.samples().map(|s| u64::from(s.readings)).sum();
        assert_eq!(readings, day * SECOND / PERIOD_NS, "no reading is lost");
        assert!(history.samples().is_sorted_by_key(|s| s.t_ns));
        assert_eq!(history.cores(), 2);
    }

    #[test]
    fn averages_keep_the_mean_of_their_readings() {
        let mut history = History::default();
        // A pattern that does not repeat with any bucket width.
        let busy = |t: u64| vec![((t / PERIOD_NS) % 7) as f32 * 10.0];
        feed(&mut history, 0, 3600, busy);
        let (mut sum, mut n) = (0.0f64, 0u64);
        for s in history.samples() {
            sum += f64::from(s.per_core[0]) * f64::from(s.readings);
            n += u64::from(s.readings);
        }
        let exact: f64 = (0..3600 * SECOND / PERIOD_NS)
            .map(|k| f64::from(busy(k * PERIOD_NS)[0]))
            .sum::<f64>();
        assert_eq!(
            n,
            3600 * SECOND / PERIOD_NS,
            "every reading is counted once"
        );
        assert!((sum - exact).abs() < exact * 1e-5, "{sum} vs {exact}");
        // One 2 s bucket against the readings it stands for.
        let bucket = history
            .samples()
            .find(|s| s.span_ns == 2 * SECOND)
            .expect("the last 20 minutes but two are in 2 s buckets");
        let start = bucket.t_ns / (2 * SECOND) * (2 * SECOND);
        let inside: Vec<f32> = (start..start + 2 * SECOND)
            .step_by(PERIOD_NS as usize)
            .map(|t| busy(t)[0])
            .collect();
        let mean = inside.iter().sum::<f32>() / inside.len() as f32;
        assert_eq!(bucket.readings as usize, inside.len());
        assert!((bucket.per_core[0] - mean).abs() < 1e-3);
    }

    #[test]
    fn an_old_runs_window_still_has_its_samples() {
        let mut history = History::default();
        // A 30 s run at 100 % on core 0, ten minutes into a five-hour session.
        let (run_from, run_to) = (600 * SECOND, 630 * SECOND);
        feed(&mut history, 0, 5 * 3600, |t| {
            let busy = if (run_from..run_to).contains(&t) {
                100.0
            } else {
                0.0
            };
            vec![busy, 0.0]
        });
        let shown = history.window(run_from - 3 * SECOND, run_to + 3 * SECOND);
        assert!(shown.len() >= 2, "a line needs two points: {shown:?}");
        assert!(shown.first().unwrap().t_ns <= run_from && shown.last().unwrap().t_ns >= run_to);
        // By now its minute is one bucket: half of it was the run at 100 %.
        let run = shown
            .iter()
            .find(|s| s.per_core[0] > 0.0)
            .expect("the run's load is still there");
        assert_eq!(run.span_ns, 60 * SECOND);
        assert!((run.per_core[0] - 50.0).abs() < 1e-3, "{run:?}");
        assert!(shown.iter().all(|s| s.per_core[1] == 0.0));
    }

    #[test]
    fn sampler_reports_every_cpu_and_stops_when_dropped() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let sampler = Sampler::start(Duration::ZERO, move || {
            let _ = tx.send(());
        })
        .unwrap();
        assert!(sampler.period() >= sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        rx.recv_timeout(Duration::from_secs(10))
            .expect("a sample arrives");
        let (cores, busy) = sampler.with_history(|h| {
            let last = h.samples().next_back().unwrap();
            (
                h.cores(),
                last.per_core.iter().all(|p| (0.0..=100.5).contains(p)),
            )
        });
        assert!(cores >= 1 && busy);
        drop(sampler);
    }
}
