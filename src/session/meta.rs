//! What a session stores about a run besides its tasks and running slices:
//! the JSON of the metadata event's `corelanes` debug annotation.

use crate::environment::Environment;
use crate::metrics::Metrics;
use crate::run::{RunConfig, RunStatus};
use crate::telemetry::events::ThreadRecord;
use crate::telemetry::sched::{OtherSlice, OtherTotal, SchedSlice, SchedSource, ThreadSched};

use super::Machine;

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct RunMeta {
    /// Read first, on its own, so a newer file is refused by version rather
    /// than by whatever field it changed.
    pub format: u32,
    pub config: RunConfig,
    pub status: RunStatus,
    /// `CLOCK_MONOTONIC` ns of the run's origin.
    pub origin_ns: u64,
    /// BOOTTIME − MONOTONIC, as in the clock snapshot: what was added to the
    /// ftrace timestamps.
    pub boottime_offset_ns: u64,
    pub wall_ns: u64,
    /// The process's CPU time over the run (absent from older files and
    /// from runs that did not measure it).
    #[serde(default)]
    pub run_cpu_ns: Option<u64>,
    pub machine: Machine,
    /// The figures as the run showed them (the reader recomputes its own from
    /// the rebuilt run; these are for other tools and for checking).
    pub metrics: Metrics,
    pub threads: Vec<ThreadRecord>,
    pub sched_source: SchedSource,
    pub sched_note: Option<String>,
    pub sched: Option<SchedMeta>,
    pub failures: Vec<String>,
    /// How many tasks follow: a file cut at a packet boundary is told from a
    /// short run by these counts.
    pub tasks: usize,
    /// The machine at the run's start (absent from files saved before it was recorded).
    #[serde(default)]
    pub environment: Option<Environment>,
    /// For a recorded program: its pid and exit, named by its first
    /// thread's comm, never by its command line (sessions are shared).
    #[serde(default)]
    pub program: Option<crate::record::ProgramInfo>,
    /// Where the tasks' CPU times came from (files saved before it was
    /// recorded: the thread clock, the only path then).
    #[serde(default)]
    pub task_cpu: crate::telemetry::events::TaskCpu,
    /// A long run kept only its last raw tasks and slices: how many were
    /// dropped before those saved, and before when (the part before is
    /// summary-only: its figures are in `metrics` and `task_totals`).
    #[serde(default)]
    pub dropped_tasks: crate::retention::Dropped,
    #[serde(default)]
    pub dropped_slices: crate::retention::Dropped,
    /// The sums over every task, dropped ones included (absent from older files).
    #[serde(default)]
    pub task_totals: Option<crate::metrics::TaskTotals>,
}

/// The parts of the kernel report that the `sched_switch` pairs do not carry.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct SchedMeta {
    pub source: SchedSource,
    pub lost_records: u64,
    pub note: Option<String>,
    pub per_thread: Vec<ThreadSched>,
    /// How many slices the report holds.
    pub slices: usize,
    /// Runnable/blocked slices the switches do not imply (a thread's wait
    /// before its first run, its last one before the capture stopped)…
    pub extra: Vec<SchedSlice>,
    /// …and implied ones that were not there: (thread, start_ns).
    pub not_there: Vec<(usize, u64)>,
    /// `--system-wide`: whether other tasks were captured, and their slices.
    #[serde(default)]
    pub system_wide: bool,
    #[serde(default)]
    pub others: Vec<OtherSlice>,
    /// …and the time of those a long capture no longer kept.
    #[serde(default)]
    pub others_before: Vec<OtherTotal>,
    /// Slices the capture itself no longer kept (see `SchedReport::dropped`).
    #[serde(default)]
    pub dropped: crate::retention::Dropped,
    /// What the capture's own thread cost (see `SchedReport::capture_cpu_ns`;
    /// absent from older files).
    #[serde(default)]
    pub capture_cpu_ns: Option<u64>,
    /// Perf events per thread (see `SchedReport::events_per_thread`).
    #[serde(default)]
    pub events_per_thread: Option<usize>,
}

/// Reads only the version, so that a newer layout is named as such.
#[derive(serde::Deserialize)]
pub struct Version {
    pub format: u32,
}
