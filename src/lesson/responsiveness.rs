//! Lesson 4: time-slicing keeps a program responsive. A latency probe
//! thread wakes every 10 ms (absolute deadlines) and records how late it
//! woke: alone on a core, beside CPU hogs pinned to that core, and beside
//! the same hogs at nice 19.
//!
//! Each condition is one corelanes run on one core whose first task is the
//! probe and whose other tasks are the hogs, so the timeline shows the
//! probe's short turns between the hogs' long ones (and the run lands in the
//! history) while the probe measures its own lateness on its own thread.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::json;

use super::{Chart, Interrupted, Judged, Lab, Series, SeriesStyle};
use crate::metrics::quantile;
use crate::run::{Placement, RunConfig};
use crate::sys;
use crate::telemetry::sched::SchedMode;
use crate::telemetry::thread_stats;
use crate::workload::{Calibration, Plan, TaskBody, WorkloadKind, spin};

/// The probe's period.
const PERIOD_NS: u64 = 10_000_000;
/// How long the probe measures each condition.
const MEASURE_MS: f64 = 2_500.0;
/// CPU hogs beside the probe.
const HOGS: usize = 2;
/// The longest a runnable thread holds a core against a waking one before
/// the kernel switches: EEVDF's base slice is at most 3 ms (0.75 ms ×
/// (1 + log2 of up to 8 CPUs)), and without a high-resolution tick a slice
/// ends at the next scheduler tick, 4 ms at the common HZ=250.
const TURN_MS: f64 = 4.0;
/// Histogram bars: this wide, up to this lateness (later wakes go in the last bar).
const BIN_MS: f64 = 0.25;
const BINS: usize = 32;

pub(super) const CLAIM: &str = "Time-slicing keeps a program responsive: a thread that wakes every 10 ms gets the core within a few scheduler slices even beside CPU hogs on its core, and sooner still when the hogs run at nice 19.";

fn criterion() -> String {
    format!(
        "A probe waking every 10 ms for {:.1} s on one core: beside {HOGS} CPU hogs at nice 0 its p99 lateness is ≤ {:.0} ms ({HOGS} hogs × one {TURN_MS:.0} ms turn: each hog may finish one slice, ended at the latest by a 4 ms tick, before the probe runs), and beside the same hogs at nice 19 it is ≤ {TURN_MS:.0} ms (a nice-19 thread weighs 15 against nice 0's 1024, so its virtual deadline is always later than the waking probe's and the probe waits for no more than the current turn). Alone is the reference, not judged.",
        MEASURE_MS / 1000.0,
        HOGS as f64 * TURN_MS,
    )
}

/// One condition the probe is measured in.
struct Condition {
    key: &'static str,
    label: &'static str,
    hogs: usize,
    /// The hogs' nice value, set by each hog on itself (`None`: inherited).
    hog_nice: Option<i32>,
}

const CONDITIONS: [Condition; 3] = [
    Condition {
        key: "alone",
        label: "alone",
        hogs: 0,
        hog_nice: None,
    },
    Condition {
        key: "hogs_nice0",
        label: "beside hogs at nice 0",
        hogs: HOGS,
        hog_nice: None,
    },
    Condition {
        key: "hogs_nice19",
        label: "beside hogs at nice 19",
        hogs: HOGS,
        hog_nice: Some(19),
    },
];

/// What the probe measured in one condition.
struct Measured {
    /// Lateness of each wake, ns, ascending.
    late_ns: Vec<u64>,
    /// Deadlines skipped because the probe woke after the next one.
    missed: usize,
    /// The hogs' nice values as the kernel reported them while they ran.
    hog_nices: Vec<i32>,
}

impl Measured {
    fn ms(&self, q: f64) -> f64 {
        quantile(&self.late_ns, q) as f64 / 1e6
    }
}

pub(super) fn run(lab: &mut Lab) -> Judged {
    let core = lab.topo.allowed[0];
    let mut measured = Vec::new();
    let mut charts = Vec::new();
    for condition in &CONDITIONS {
        lab.step(format!(
            "Probe waking every 10 ms on core {core} for {:.1} s, {}…",
            MEASURE_MS / 1000.0,
            condition.label
        ));
        match measure(lab, core, condition) {
            Ok(m) => measured.push(m),
            Err(why) => {
                return Judged::cut_short(CLAIM, criterion(), why);
            }
        }
        charts = vec![histogram(&measured)];
        lab.charts(&charts);
    }
    judge(core, &measured, charts)
}

/// Runs one condition: the probe and its hogs as one run on `core`.
fn measure(lab: &mut Lab, core: usize, condition: &Condition) -> Result<Measured, Interrupted> {
    let body = Arc::new(ProbeBeside::new(condition.hogs, condition.hog_nice));
    let plan = Plan {
        tasks: 1 + condition.hogs,
        serial_first: false,
        body: body.clone(),
    };
    // What the history calls the run: CPU work on one core, one task per thread.
    let config = RunConfig {
        workload: WorkloadKind::Cpu,
        threads: 1 + condition.hogs,
        tasks: 1 + condition.hogs,
        task_ms: MEASURE_MS,
        placement: Placement::OneCore(core),
        serial: 0.0,
        sched: SchedMode::Auto,
        system_wide: false,
        ..RunConfig::defaults(crate::topology::Topology::get())
    };
    lab.run_plan(config, Ok(plan))?;
    let mut late_ns = std::mem::take(&mut *lock(&body.late_ns));
    late_ns.sort_unstable();
    if late_ns.is_empty() {
        return Err(Interrupted::Failed(
            "the latency probe recorded no wake-ups".into(),
        ));
    }
    Ok(Measured {
        late_ns,
        missed: body.missed.load(Ordering::Relaxed),
        hog_nices: std::mem::take(&mut *lock(&body.hog_nices)),
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Task 0 is the probe; tasks 1..=hogs are CPU hogs that spin until the
/// probe has finished. The run has one thread per task, so each runs on
/// its own thread.
struct ProbeBeside {
    hogs: usize,
    hog_nice: Option<i32>,
    /// Hogs spinning so far: the probe starts measuring once all are.
    hogs_started: AtomicUsize,
    probe_done: AtomicBool,
    late_ns: Mutex<Vec<u64>>,
    missed: AtomicUsize,
    hog_nices: Mutex<Vec<i32>>,
    /// About 1 ms of [`spin`]: how often a hog looks at `probe_done`.
    chunk_iters: u64,
}

impl ProbeBeside {
    fn new(hogs: usize, hog_nice: Option<i32>) -> ProbeBeside {
        ProbeBeside {
            hogs,
            hog_nice,
            hogs_started: AtomicUsize::new(0),
            probe_done: AtomicBool::new(false),
            late_ns: Mutex::new(Vec::new()),
            missed: AtomicUsize::new(0),
            hog_nices: Mutex::new(Vec::new()),
            chunk_iters: Calibration::get().iters_for_ms(1.0),
        }
    }

    fn probe(&self, cancel: &AtomicBool) {
        while self.hogs_started.load(Ordering::Acquire) < self.hogs {
            if cancel.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let start = sys::monotonic_ns();
        let end = start + (MEASURE_MS * 1e6) as u64;
        let mut late = Vec::with_capacity((MEASURE_MS * 1e6) as usize / PERIOD_NS as usize + 1);
        let mut deadline = start + PERIOD_NS;
        while deadline <= end && !cancel.load(Ordering::Relaxed) {
            sys::sleep_until_monotonic_ns(deadline);
            let woke = sys::monotonic_ns();
            late.push(woke.saturating_sub(deadline));
            deadline += PERIOD_NS;
            // A wake later than a whole period skips the deadlines it
            // missed, rather than waking at once to catch up (which would
            // count one delay several times).
            while deadline <= woke {
                if deadline <= end {
                    self.missed.fetch_add(1, Ordering::Relaxed);
                }
                deadline += PERIOD_NS;
            }
        }
        *lock(&self.late_ns) = late;
    }

    fn hog(&self, task: usize, cancel: &AtomicBool) -> Result<(), String> {
        let tid = sys::gettid();
        let niced = match self.hog_nice {
            Some(nice) => sys::set_thread_nice(tid, nice)
                .map_err(|e| format!("could not set a CPU hog to nice {nice}: {e}")),
            None => Ok(()),
        };
        if let Some(nice) = thread_stats::nice_of(tid) {
            lock(&self.hog_nices).push(nice);
        }
        // Counted even after a failure, so that the probe never waits for it.
        self.hogs_started.fetch_add(1, Ordering::Release);
        niced?;
        let mut x = task as u64;
        while !self.probe_done.load(Ordering::Relaxed) && !cancel.load(Ordering::Relaxed) {
            x = spin(self.chunk_iters, x, cancel);
        }
        std::hint::black_box(x);
        Ok(())
    }
}

impl TaskBody for ProbeBeside {
    fn run(&self, task: usize, cancel: &AtomicBool) -> Result<(), String> {
        if task == 0 {
            // Set however the probe ends, so the hogs never outlive it.
            let _done = SetOnDrop(&self.probe_done);
            self.probe(cancel);
            Ok(())
        } else {
            self.hog(task, cancel)
        }
    }
}

struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The share of wakes per lateness bar, one series per condition measured.
fn histogram(measured: &[Measured]) -> Chart {
    let series = measured
        .iter()
        .zip(&CONDITIONS)
        .map(|(m, c)| {
            let mut counts = [0usize; BINS];
            for &ns in &m.late_ns {
                let bin = (ns as f64 / 1e6 / BIN_MS) as usize;
                counts[bin.min(BINS - 1)] += 1;
            }
            let n = m.late_ns.len() as f64;
            Series {
                name: c.label.into(),
                style: SeriesStyle::Bars,
                points: counts
                    .iter()
                    .enumerate()
                    .map(|(i, &k)| [(i as f64 + 0.5) * BIN_MS, 100.0 * k as f64 / n])
                    .collect(),
            }
        })
        .collect();
    Chart {
        title: "How late the 10 ms probe woke".into(),
        x_label: format!(
            "lateness (ms, bars {BIN_MS} ms wide; the last holds all ≥ {} ms)",
            BIN_MS * (BINS - 1) as f64
        ),
        y_label: "wakes (%)".into(),
        series,
    }
}

fn judge(core: usize, measured: &[Measured], charts: Vec<Chart>) -> Judged {
    let mut figures = BTreeMap::new();
    figures.insert("core".into(), json!(core));
    figures.insert("hogs".into(), json!(HOGS));
    figures.insert("period_ms".into(), json!(PERIOD_NS as f64 / 1e6));
    for (m, c) in measured.iter().zip(&CONDITIONS) {
        let k = c.key;
        figures.insert(format!("{k}_wakes"), json!(m.late_ns.len()));
        figures.insert(format!("{k}_missed"), json!(m.missed));
        figures.insert(format!("{k}_p50_ms"), json!(m.ms(0.5)));
        figures.insert(format!("{k}_p99_ms"), json!(m.ms(0.99)));
        figures.insert(format!("{k}_max_ms"), json!(m.ms(1.0)));
        if c.hogs > 0 {
            figures.insert(format!("{k}_hog_nice"), json!(m.hog_nices));
        }
    }
    let [alone, nice0, nice19] = measured else {
        unreachable!("one measurement per condition")
    };
    let nice0_bound = HOGS as f64 * TURN_MS;
    figures.insert("nice0_bound_ms".into(), json!(nice0_bound));
    figures.insert("nice19_bound_ms".into(), json!(TURN_MS));
    let nice0_ok = nice0.ms(0.99) <= nice0_bound;
    let nice19_ok = nice19.ms(0.99) <= TURN_MS;
    let holds = nice0_ok && nice19_ok;
    let line = |m: &Measured| {
        format!(
            "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            m.ms(0.5),
            m.ms(0.99),
            m.ms(1.0)
        )
    };
    let verdict = format!(
        "The probe woke late by {} alone; {} beside {HOGS} hogs at nice 0 (p99 {} {nice0_bound:.0} ms); {} beside them at nice 19 (p99 {} {TURN_MS:.0} ms): {}.",
        line(alone),
        line(nice0),
        if nice0_ok { "≤" } else { ">" },
        line(nice19),
        if nice19_ok { "≤" } else { ">" },
        match (nice0_ok, nice19_ok) {
            (true, true) =>
                "time-slicing kept it responsive beside the hogs, and priorities kept it more so",
            (false, _) => "the hogs kept the probe waiting longer than time-slicing promises",
            (true, false) =>
                "time-slicing kept it responsive, but nice 19 did not bring it within one turn",
        }
    );
    Judged::measured(CLAIM, criterion(), holds, verdict, figures, charts)
}
