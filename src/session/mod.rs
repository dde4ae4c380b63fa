//! Sessions: runs saved as a Perfetto trace (`.pftrace`) that corelanes
//! reopens losslessly and ui.perfetto.dev shows with its own CPU view.
//!
//! One file, many runs: each run is one trusted packet sequence (id = its
//! position + 1). In each sequence, in this order:
//! - a `clock_snapshot` pairing BOOTTIME with MONOTONIC at the run's origin;
//! - a `process_tree` naming the worker threads (their comm, nothing else);
//! - track descriptors: a track for the run, and one child per worker;
//! - the metadata: an instant on the run's track whose `corelanes` debug
//!   annotation is JSON ([`meta::RunMeta`]): format version, configuration,
//!   figures, thread table, what the slices below cannot say;
//! - each task as a begin/end pair on its worker's track, in the run's order,
//!   annotated with its id, CPU time, ok and cores;
//! - where the kernel was captured, two counter tracks: how many of the
//!   run's threads were running, and how many runnable, at each change
//!   (derived from the slices, for Perfetto; the reader passes over them);
//! - the kernel's running slices as `sched_switch` pairs in per-CPU
//!   `ftrace_events` bundles.
//!
//! The tasks and slices live only in those track events and switches, the
//! same data Perfetto shows; the reader rebuilds each run by feeding the
//! [`RunEvent`](crate::telemetry::events::RunEvent)s a live run sends into a
//! [`Recording`], so a reopened run is built by the same code as a live one.

mod counters;
mod in_order;
mod meta;
pub mod proto;
mod read;
mod slices;
mod write;

use std::path::PathBuf;

pub use read::{open, open_with_limit};
pub use write::save;

use crate::export::Summary;
use crate::run::Recording;
use crate::topology::{Layout, Topology};

/// The session format this build writes, and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

/// The name of the metadata's debug annotation (and its event's name).
pub const META_NAME: &str = "corelanes";

/// What a run's figures depend on besides the run: the machine it ran on.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Machine {
    pub allowed_cores: Vec<usize>,
    pub cpu_iters_per_ms: f64,
    /// Where its CPUs sit, so that a session opened on another machine draws
    /// its lanes as they were (empty in files saved before it was kept).
    #[serde(default)]
    pub layout: Layout,
}

impl Machine {
    /// This machine, as a live run's summary describes it.
    pub fn this() -> Machine {
        let topo = Topology::get();
        Machine {
            allowed_cores: topo.allowed.clone(),
            cpu_iters_per_ms: crate::workload::Calibration::get().iters_per_ms,
            layout: topo.layout.clone(),
        }
    }

    /// Whether runs made on `self` and on `other` can be compared, a
    /// speedup taken from one to the other: the same allowed cores and,
    /// where both say, the same layout (a file from before layouts were
    /// kept says nothing of its own).
    pub fn same_as(&self, other: &Machine) -> bool {
        let unknown = self.layout.cpus.is_empty() || other.layout.cpus.is_empty();
        self.allowed_cores == other.allowed_cores && (unknown || self.layout == other.layout)
    }

    /// The machine's cores as its run saw them, whichever machine reads it.
    pub fn topology(&self) -> Topology {
        let cpus = self.layout.cpus.len();
        let highest = self.allowed_cores.last().map_or(0, |&c| c + 1);
        Topology::with_layout(
            self.allowed_cores.clone(),
            cpus.max(highest),
            self.layout.clone(),
        )
    }
}

/// One run read back from a session.
#[derive(Clone, Debug)]
pub struct SavedRun {
    pub recording: Recording,
    pub machine: Machine,
}

impl SavedRun {
    /// The summary JSON's content, with the machine the run was made on.
    pub fn summary(&self) -> Summary<'_> {
        Summary::on(
            &self.recording,
            &self.machine.allowed_cores,
            self.machine.cpu_iters_per_ms,
        )
    }
}

/// Why a session could not be opened: one sentence naming the file.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot read {}: {source}.", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{} is {} MiB, more than the {} MiB this machine can spare to open it; open it on a machine with more memory, or in ui.perfetto.dev.",
        path.display(), size >> 20, limit >> 20
    )]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("{} is not a corelanes session: {why}.", path.display())]
    NotPerfetto { path: PathBuf, why: String },
    #[error("{} is cut short ({why}): it was probably copied or saved only in part.", path.display())]
    Truncated { path: PathBuf, why: String },
    #[error(
        "{} is a Perfetto trace with no corelanes runs in it; open it in ui.perfetto.dev instead.",
        path.display()
    )]
    NoRuns { path: PathBuf },
    #[error(
        "{} was saved by a newer corelanes (session format {version}; this one reads up to {FORMAT_VERSION}): update corelanes to open it.",
        path.display()
    )]
    Newer { path: PathBuf, version: u32 },
    #[error("{} is damaged: {why}.", path.display())]
    Damaged { path: PathBuf, why: String },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::sched::SliceState;

    #[test]
    fn a_run_saved_and_opened_in_many_pieces_comes_back_exactly() {
        // Tasks, counter values and each CPU's switches are encoded in
        // pieces apart, and the file is decoded in pieces of packets: this
        // run spans at least two of each, else it would show nothing of them.
        let rec = crate::bench::sessions::synthetic_run(20_000, 700_000);
        let slices = rec.slices();
        let on_cpu0 = slices
            .iter()
            .filter(|s| s.state == SliceState::Running && s.core() == 0)
            .count();
        let changes = counters::count_changes(slices, SliceState::Runnable).count();
        assert!(rec.tasks.len() >= 2 * write::TASKS_PER_PIECE);
        assert!(
            on_cpu0 >= 2 * write::SLICES_PER_PIECE,
            "{on_cpu0} running on CPU 0"
        );
        assert!(changes >= 2 * write::CHANGES_PER_PIECE, "{changes} changes");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pieces.pftrace");
        save(&path, &[(&rec, &Machine::this())]).unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size >= 2 * read::PIECE_BYTES as u64, "{size} bytes");
        let back = open(&path).unwrap();
        assert_eq!(back.len(), 1);
        let is = &back[0].recording;
        assert_eq!(is.tasks, rec.tasks);
        assert_eq!(is.slices(), rec.slices());
        assert_eq!(is.metrics(), rec.metrics());
    }
}
