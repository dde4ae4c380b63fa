//! Experiment configuration: what the user asked for, and its validation
//! against the cores this process may use.

use std::collections::BTreeSet;

use crate::telemetry::sched::SchedMode;
use crate::telemetry::sched::perf::Target;
use crate::topology::Topology;
use crate::workload::WorkloadKind;

pub const MAX_THREADS: usize = 1024;
pub const MAX_TASKS: usize = 1_000_000;
pub const MIN_TASK_MS: f64 = 0.01;
pub const MAX_TASK_MS: f64 = 600_000.0;
/// About 10 minutes of [`crate::workload::spin`] on a 2 GHz core, as `MAX_TASK_MS`.
pub const MAX_TASK_ITERS: u64 = 1_000_000_000_000;

/// Where the worker threads run.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    /// Every thread pinned to this one core: concurrency without parallelism.
    OneCore(usize),
    /// Thread i pinned to the i-th allowed core, wrapping around.
    Spread,
    /// No pinning: the kernel places the threads.
    Unpinned,
    /// One core per thread, in thread order.
    List(Vec<usize>),
}

impl Placement {
    /// Parses the command line's words: `one-core`, `spread`, `unpinned`, or `0,1,1`.
    /// `one-core` takes `core`, defaulting to the first allowed core.
    pub fn parse(
        text: &str,
        core: Option<usize>,
        topo: &Topology,
    ) -> Result<Placement, ConfigError> {
        match text {
            "one-core" => Ok(Placement::OneCore(core.unwrap_or(topo.allowed[0]))),
            "spread" => Ok(Placement::Spread),
            "unpinned" => Ok(Placement::Unpinned),
            list => list
                .split(',')
                .map(|part| part.trim().parse::<usize>())
                .collect::<Result<Vec<_>, _>>()
                .map(Placement::List)
                .map_err(|_| ConfigError::Placement(text.to_string())),
        }
    }

    pub fn label(&self) -> String {
        match self {
            Placement::OneCore(core) => format!("one core ({core})"),
            Placement::Spread => "spread".into(),
            Placement::Unpinned => "unpinned".into(),
            Placement::List(cores) => format!("cores {}", join(cores)),
        }
    }
}

fn join(cores: &[usize]) -> String {
    cores
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// What the user asked for. Turn it into a [`ValidConfig`] before running.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunConfig {
    pub workload: WorkloadKind,
    pub threads: usize,
    pub tasks: usize,
    pub task_ms: f64,
    pub placement: Placement,
    /// Amdahl's serial fraction of the total work, 0..=1 (other workloads ignore it).
    pub serial: f64,
    pub sched: SchedMode,
    /// Also capture every other task's switches on the CPUs (`--system-wide`:
    /// needs CAP_PERFMON, root or `perf_event_paranoid` ≤ 0), so that the
    /// cores' gaps name the programs that took them. Only when asked.
    #[serde(default)]
    pub system_wide: bool,
    /// `--task-iters`: the computation of a task is exactly this many loop
    /// iterations instead of `task_ms` converted by this process's
    /// calibration, which differs by about ±3 % from one process to the next:
    /// identical work for benchmarks and comparisons across processes.
    /// cpu, lock: the whole task; mixed: its computing half (it still sleeps
    /// `task_ms / 2`); amdahl: `tasks × N` in all, split as `serial` says.
    /// io and disk compute nothing, so they refuse it. Absent from sessions
    /// saved before it existed: calibrated milliseconds.
    #[serde(default)]
    pub task_iters: Option<u64>,
    /// Run until Stop (`--until-stop`): the task queue never runs dry, so
    /// each thread takes task after task of `task_ms` until the run is
    /// stopped; `tasks` then only sizes amdahl's serial task (run once,
    /// first). A steady workload to watch live; memory stays bounded (see
    /// [`crate::retention`]).
    #[serde(default)]
    pub until_stop: bool,
}

impl RunConfig {
    /// The defaults of the design: one thread per allowed core, four tasks each, 50 ms tasks.
    pub fn defaults(topo: &Topology) -> RunConfig {
        let threads = topo.allowed.len();
        RunConfig {
            workload: WorkloadKind::Cpu,
            threads,
            tasks: 4 * threads,
            task_ms: 50.0,
            placement: Placement::Spread,
            serial: 0.1,
            sched: SchedMode::Auto,
            system_wide: false,
            task_iters: None,
            until_stop: false,
        }
    }

    /// What one task does, for titles and reports: "50 ms", or with
    /// `--task-iters` "2000000 iterations" (mixed: "… + 25 ms asleep").
    pub fn work_label(&self) -> String {
        match (self.task_iters, self.workload) {
            (Some(n), WorkloadKind::Mixed) => {
                format!("{n} iterations + {} ms asleep", self.task_ms / 2.0)
            }
            (Some(n), _) => format!("{n} iterations"),
            (None, _) => format!("{} ms", self.task_ms),
        }
    }

    /// About how long one task lasts on an idle core, in ms: `task_ms`, or
    /// with `task_iters` its iterations at this process's calibrated rate
    /// (mixed: plus its sleep).
    pub fn nominal_task_ms(&self) -> f64 {
        let Some(iters) = self.task_iters else {
            return self.task_ms;
        };
        let computing = iters as f64 / crate::workload::Calibration::get().iters_per_ms;
        match self.workload {
            WorkloadKind::Mixed => computing + self.task_ms / 2.0,
            _ => computing,
        }
    }

    /// How many tasks the run will record: none known in advance when it
    /// runs until Stop (what is reserved up front).
    pub fn planned_tasks(&self) -> usize {
        if self.until_stop { 0 } else { self.tasks }
    }

    /// How many cores the run can use at once: the distinct cores of its
    /// placement (the allowed cores when unpinned), never more than its
    /// threads, since a thread runs on one core at a time.
    pub fn cores_used(&self, topo: &Topology) -> usize {
        let cores = match &self.placement {
            Placement::OneCore(_) => 1,
            // Spread wraps over the allowed cores; unpinned threads may go to any of them.
            Placement::Spread | Placement::Unpinned => topo.allowed.len(),
            Placement::List(list) => list.iter().collect::<BTreeSet<_>>().len(),
        };
        cores.min(self.threads)
    }

    /// The tasks this configuration runs.
    pub fn plan(&self) -> Result<crate::workload::Plan, String> {
        let plan = crate::workload::Plan::new(
            self.workload,
            self.tasks,
            self.task_ms,
            self.serial,
            self.task_iters,
        )?;
        // Run until Stop: the queue never runs dry.
        Ok(if self.until_stop {
            plan.endless()
        } else {
            plan
        })
    }

    /// Checks every field and resolves the core of each thread.
    pub fn validate(self, topo: &Topology) -> Result<ValidConfig, ConfigError> {
        if !(1..=MAX_THREADS).contains(&self.threads) {
            return Err(ConfigError::Threads(self.threads));
        }
        if !(1..=MAX_TASKS).contains(&self.tasks) {
            return Err(ConfigError::Tasks(self.tasks));
        }
        if !(MIN_TASK_MS..=MAX_TASK_MS).contains(&self.task_ms) {
            return Err(ConfigError::TaskMs(self.task_ms));
        }
        if !(0.0..=1.0).contains(&self.serial) {
            return Err(ConfigError::Serial(self.serial));
        }
        if let Some(iters) = self.task_iters {
            if !(1..=MAX_TASK_ITERS).contains(&iters) {
                return Err(ConfigError::TaskIters(iters));
            }
            if matches!(self.workload, WorkloadKind::Io | WorkloadKind::Disk) {
                return Err(ConfigError::TaskItersWaits(self.workload));
            }
        }
        let check = |core: usize| match topo.why_not_allowed(core) {
            Some(why) => Err(ConfigError::Core { why }),
            None => Ok(Some(core)),
        };
        let cores = match &self.placement {
            Placement::OneCore(core) => vec![check(*core)?; self.threads],
            Placement::Spread => (0..self.threads)
                .map(|i| Some(topo.allowed[i % topo.allowed.len()]))
                .collect(),
            Placement::Unpinned => vec![None; self.threads],
            Placement::List(list) => {
                if list.len() != self.threads {
                    return Err(ConfigError::ListLength {
                        cores: list.len(),
                        threads: self.threads,
                    });
                }
                list.iter().map(|&c| check(c)).collect::<Result<_, _>>()?
            }
        };
        Ok(ValidConfig {
            config: self,
            cores,
            fault: None,
            capture_limits: crate::telemetry::sched::Limits::default(),
            inherited_events: false,
        })
    }
}

/// A configuration that passed validation, with each thread's core resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidConfig {
    pub config: RunConfig,
    /// The core each worker thread is pinned to (`None`: unpinned).
    pub cores: Vec<Option<usize>>,
    /// What a test made go wrong (see [`ValidConfig::with_fault`]).
    pub(super) fault: Option<Fault>,
    /// How much raw data the scheduler capture keeps (see [`ValidConfig::with_capture_limits`]).
    pub(super) capture_limits: crate::telemetry::sched::Limits,
    /// The workers inherit one perf event per CPU whatever their number
    /// (see [`ValidConfig::with_inherited_events`]).
    pub(super) inherited_events: bool,
}

impl ValidConfig {
    /// The CPUs whose switches the capture records. Each worker inherits one
    /// perf event per CPU, and the kernel walks them all at every one of the
    /// worker's switches: given 254 events more on another CPU (what a
    /// 256-CPU machine adds), an io run's workers spent ~75 % more CPU.
    /// So a run whose threads are all pinned watches only their cores; an
    /// unpinned one, and one that names other programs (on every core the
    /// timeline shows), watches all of `allowed`.
    pub fn capture_cpus(&self, allowed: &[usize]) -> Vec<usize> {
        let pinned: Option<BTreeSet<usize>> = self.cores.iter().copied().collect();
        match pinned {
            Some(cores) if !self.config.system_wide => cores.into_iter().collect(),
            _ => allowed.to_vec(),
        }
    }

    /// Whose perf events the capture of `cpus` (see [`ValidConfig::capture_cpus`])
    /// opens. Where the workers are no more than those CPUs, each opens one
    /// of its own that follows it across them ([`Target::Workers`]): one
    /// event per worker, and no more rings than one per CPU. Otherwise they
    /// inherit one per CPU ([`Target::Own`]), fewer rings than workers. A
    /// system-wide run stays with the latter, whose rings are per CPU like
    /// its view of the other programs.
    pub fn capture_target(&self, cpus: &[usize]) -> Target {
        let fewer_events = cpus.len() > 1 && self.cores.len() <= cpus.len();
        if fewer_events && !self.config.system_wide && !self.inherited_events {
            Target::Workers
        } else {
            Target::Own
        }
    }

    /// For tests: the run suffers `fault`, so that what follows it can be
    /// checked for real (no sleeps, no mock engine).
    #[doc(hidden)]
    pub fn with_fault(self, fault: Fault) -> ValidConfig {
        ValidConfig {
            fault: Some(fault),
            ..self
        }
    }
}

impl ValidConfig {
    /// For tests: the scheduler capture keeps at most `limits` of raw data
    /// instead of its share of the budget and the window, so that a short
    /// run goes past them as a long one does. No option sets this.
    #[doc(hidden)]
    pub fn with_capture_limits(self, limits: crate::telemetry::sched::Limits) -> ValidConfig {
        ValidConfig {
            capture_limits: limits,
            ..self
        }
    }

    /// For `corelanes bench --capture` (and tests): the workers inherit one
    /// perf event per CPU even where each could open its own, so that the
    /// two can be compared on the same run. Only a hidden option sets this.
    #[doc(hidden)]
    pub fn with_inherited_events(self) -> ValidConfig {
        ValidConfig {
            inherited_events: true,
            ..self
        }
    }
}

/// Faults a test can inject into a run; nothing else sets them.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The controller thread panics once the workers are running.
    ControllerPanics,
}

/// Why a configuration cannot run: one sentence naming the bad value and what is allowed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("thread count {0} is out of range: use 1 to {MAX_THREADS} threads")]
    Threads(usize),
    #[error("task count {0} is out of range: use 1 to {MAX_TASKS} tasks")]
    Tasks(usize),
    #[error("task duration {0} ms is out of range: use {MIN_TASK_MS} to {MAX_TASK_MS} ms")]
    TaskMs(f64),
    #[error("serial fraction {0} is out of range: use a number from 0 to 1")]
    Serial(f64),
    #[error("task iteration count {0} is out of range: use 1 to {MAX_TASK_ITERS} iterations")]
    TaskIters(u64),
    #[error(
        "--task-iters sets how much a task computes, and {0} tasks compute nothing: use it with cpu, mixed, lock or amdahl, or give {0} a --task-ms"
    )]
    TaskItersWaits(WorkloadKind),
    #[error("{why}")]
    Core { why: String },
    #[error(
        "the core list has {cores} entries but there are {threads} threads: give exactly one core per thread"
    )]
    ListLength { cores: usize, threads: usize },
    #[error(
        "placement '{0}' is not understood: use one-core, spread, unpinned, or a comma-separated list of core ids such as 0,1"
    )]
    Placement(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(threads: usize, placement: Placement) -> RunConfig {
        RunConfig {
            threads,
            placement,
            ..RunConfig::defaults(Topology::get())
        }
    }

    #[test]
    fn spread_wraps_over_allowed_cores() {
        let topo = Topology::get();
        let valid = config(topo.allowed.len() + 1, Placement::Spread)
            .validate(topo)
            .unwrap();
        assert_eq!(valid.cores.last().unwrap(), &Some(topo.allowed[0]));
    }

    #[test]
    fn cores_used_counts_distinct_cores_capped_at_threads() {
        // A fixed two-core machine, whatever this one has.
        let topo = Topology::with_layout(vec![0, 1], 2, crate::topology::Layout::default());
        let used = |threads, placement| config(threads, placement).cores_used(&topo);
        assert_eq!(used(4, Placement::OneCore(1)), 1);
        assert_eq!(used(4, Placement::Spread), 2, "spread wraps");
        assert_eq!(used(1, Placement::Spread), 1);
        assert_eq!(
            used(3, Placement::List(vec![1, 1, 0])),
            2,
            "duplicates count once"
        );
        assert_eq!(used(3, Placement::List(vec![1, 1, 1])), 1);
        assert_eq!(used(4, Placement::Unpinned), 2, "the allowed cores");
        assert_eq!(used(1, Placement::Unpinned), 1, "capped at threads");
    }

    #[test]
    fn a_pinned_run_captures_only_its_cores() {
        // A fixed four-core machine: validation needs the cores to exist.
        let topo = Topology::with_layout(vec![0, 1, 2, 3], 4, crate::topology::Layout::default());
        let cpus = |threads, placement, system_wide| {
            RunConfig {
                system_wide,
                ..config(threads, placement)
            }
            .validate(&topo)
            .unwrap()
            .capture_cpus(&topo.allowed)
        };
        assert_eq!(cpus(2, Placement::OneCore(2), false), [2]);
        assert_eq!(cpus(3, Placement::List(vec![3, 1, 3]), false), [1, 3]);
        assert_eq!(cpus(2, Placement::Spread, false), [0, 1]);
        assert_eq!(cpus(2, Placement::Unpinned, false), [0, 1, 2, 3]);
        // Other programs are named on every core the timeline shows.
        assert_eq!(cpus(2, Placement::OneCore(2), true), [0, 1, 2, 3]);
    }

    #[test]
    fn workers_open_their_own_event_where_they_are_no_more_than_the_cores() {
        let topo = Topology::with_layout(vec![0, 1, 2, 3], 4, crate::topology::Layout::default());
        let target = |threads, placement, system_wide| {
            let valid = RunConfig {
                system_wide,
                ..config(threads, placement)
            }
            .validate(&topo)
            .unwrap();
            let cpus = valid.capture_cpus(&topo.allowed);
            (
                valid.capture_target(&cpus),
                valid.with_inherited_events().capture_target(&cpus),
            )
        };
        let (own, workers) = (Target::Own, Target::Workers);
        assert_eq!(target(4, Placement::Unpinned, false), (workers, own));
        assert_eq!(target(2, Placement::Spread, false), (workers, own));
        assert_eq!(target(3, Placement::List(vec![3, 1, 3]), false), (own, own));
        // One core watched: one event each way.
        assert_eq!(target(2, Placement::OneCore(2), false), (own, own));
        assert_eq!(target(5, Placement::Unpinned, false), (own, own));
        assert_eq!(target(2, Placement::Unpinned, true), (own, own));
    }

    #[test]
    fn a_config_saved_before_task_iters_still_loads() {
        let mut json = serde_json::to_value(RunConfig::defaults(Topology::get())).unwrap();
        json.as_object_mut().unwrap().remove("task_iters");
        let old: RunConfig = serde_json::from_value(json).unwrap();
        assert_eq!(old.task_iters, None);
        assert_eq!(old.work_label(), "50 ms");
    }

    #[test]
    fn bad_values_are_named() {
        let topo = Topology::get();
        let err = config(0, Placement::Spread).validate(topo).unwrap_err();
        assert!(err.to_string().contains("thread count 0"), "{err}");
        let err = config(2, Placement::List(vec![topo.allowed[0]]))
            .validate(topo)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("1 entries but there are 2 threads"),
            "{err}"
        );
        let err = config(1, Placement::OneCore(9999))
            .validate(topo)
            .unwrap_err();
        assert!(
            err.to_string().contains("core 9999 does not exist"),
            "{err}"
        );
        let serial = RunConfig {
            serial: 1.5,
            ..config(1, Placement::Spread)
        };
        assert!(
            serial
                .validate(topo)
                .unwrap_err()
                .to_string()
                .contains("1.5")
        );
        let iters = |workload, task_iters| RunConfig {
            workload,
            task_iters: Some(task_iters),
            ..config(1, Placement::Spread)
        };
        let err = iters(WorkloadKind::Cpu, 0).validate(topo).unwrap_err();
        assert!(err.to_string().contains("iteration count 0"), "{err}");
        assert!(
            iters(WorkloadKind::Cpu, MAX_TASK_ITERS + 1)
                .validate(topo)
                .is_err()
        );
        for waits in [WorkloadKind::Io, WorkloadKind::Disk] {
            let err = iters(waits, 1000).validate(topo).unwrap_err();
            assert!(err.to_string().contains("compute nothing"), "{err}");
        }
        for computes in [
            WorkloadKind::Cpu,
            WorkloadKind::Mixed,
            WorkloadKind::Lock,
            WorkloadKind::Amdahl,
        ] {
            assert!(iters(computes, MAX_TASK_ITERS).validate(topo).is_ok());
        }
        assert!(Placement::parse("0,x", None, topo).is_err());
        assert_eq!(
            Placement::parse("3, 4", None, topo).unwrap(),
            Placement::List(vec![3, 4])
        );
    }
}
