//! The summary JSON: the run's configuration, figures, threads, tasks and,
//! where captured, the kernel's scheduler slices.

use std::io::{self, Write};

use crate::environment::Environment;
use crate::metrics::Metrics;
use crate::run::{Recording, RunConfig, RunStatus};
use crate::telemetry::events::{Handoff, TaskCpu, TaskRecord, ThreadRecord};
use crate::telemetry::sched::{OtherSlice, SchedSlice, SchedSource};

#[derive(serde::Serialize)]
pub struct Summary<'a> {
    pub config: &'a RunConfig,
    pub status: &'a RunStatus,
    pub wall_ns: u64,
    /// This process's CPU time over the run, its capture included and the
    /// writing of outputs not (null where not measured: a reopened run's).
    pub run_cpu_ns: Option<u64>,
    pub metrics: Metrics,
    pub allowed_cores: &'a [usize],
    pub cpu_iters_per_ms: f64,
    pub threads: &'a [ThreadRecord],
    pub tasks: &'a [TaskRecord],
    /// Where `tasks[].cpu_ns` come from: `thread-clock` (read on the worker)
    /// or `kernel-slices` (perf's running slices inside each task).
    pub task_cpu: TaskCpu,
    /// The lock workload's hand-offs (`from` released, `to` was waiting and
    /// acquired); empty for other workloads.
    pub handoffs: &'a [Handoff],
    pub sched: SchedSummary<'a>,
    pub failures: &'a [String],
    /// The machine at the run's start; null where it was not recorded.
    pub environment: Option<&'a Environment>,
    /// `corelanes record`: the program, and its figures from the kernel alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub program: Option<ProgramSummary<'a>>,
}

#[derive(serde::Serialize)]
pub struct ProgramSummary<'a> {
    #[serde(flatten)]
    pub info: &'a crate::record::ProgramInfo,
    pub kernel: crate::metrics::KernelFigures,
}

#[derive(serde::Serialize)]
pub struct SchedSummary<'a> {
    pub source: SchedSource,
    pub lost_records: u64,
    pub note: Option<&'a str>,
    pub slices: &'a [SchedSlice],
    /// Whether the other tasks on the CPUs were captured (`--system-wide`).
    pub system_wide: bool,
    /// With `system_wide`: what else ran on each core, and when.
    pub others: &'a [OtherSlice],
    /// The capture's own thread's CPU time (perf's drain thread).
    pub capture_cpu_ns: Option<u64>,
    /// Perf events per thread (see `SchedReport::events_per_thread`).
    pub events_per_thread: Option<usize>,
}

impl<'a> Summary<'a> {
    /// The summary of a run made on this machine.
    pub fn of(rec: &'a Recording) -> Summary<'a> {
        Summary::on(
            rec,
            &crate::topology::Topology::get().allowed,
            crate::workload::Calibration::get().iters_per_ms,
        )
    }

    /// The summary of a run made on a machine described by its allowed cores
    /// and CPU calibration (a reopened session's, say).
    pub fn on(
        rec: &'a Recording,
        allowed_cores: &'a [usize],
        cpu_iters_per_ms: f64,
    ) -> Summary<'a> {
        Summary {
            config: &rec.config,
            status: &rec.status,
            wall_ns: rec.wall_ns,
            run_cpu_ns: rec.run_cpu_ns,
            metrics: rec.metrics(),
            allowed_cores,
            cpu_iters_per_ms,
            threads: &rec.threads,
            tasks: &rec.tasks,
            task_cpu: rec.task_cpu,
            handoffs: &rec.handoffs,
            sched: SchedSummary {
                source: rec.sched_source,
                lost_records: rec.sched.as_ref().map_or(0, |s| s.lost_records),
                note: rec.sched_note.as_deref(),
                slices: rec.sched.as_ref().map_or(&[], |s| &s.slices),
                system_wide: rec.sched.as_ref().is_some_and(|s| s.system_wide),
                others: rec.sched.as_ref().map_or(&[], |s| &s.others),
                capture_cpu_ns: rec.sched.as_ref().and_then(|s| s.capture_cpu_ns),
                events_per_thread: rec.sched.as_ref().and_then(|s| s.events_per_thread),
            },
            failures: &rec.failures,
            environment: rec.environment.as_ref(),
            program: rec.program.as_ref().map(|info| ProgramSummary {
                info,
                kernel: rec.kernel_figures(),
            }),
        }
    }
}

impl Summary<'_> {
    /// Writes the summary as pretty JSON to `out`, with no final newline.
    pub fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        let mut out = super::buffered(out);
        serde_json::to_writer_pretty(&mut out, self)?;
        out.flush()
    }
}

/// Writes the summary of `rec`, a run made on this machine, to `out`.
pub fn write_summary_json(rec: &Recording, out: &mut dyn Write) -> io::Result<()> {
    Summary::of(rec).write(out)
}
