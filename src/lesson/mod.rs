//! Lessons: each claim about concurrency and parallelism, measured on this
//! machine in one go. A lesson runs real workloads (the same engine as
//! `corelanes run`), then judges a criterion stated before measuring.
//!
//! No GUI types here: the app's Experiments view and `corelanes lesson`
//! both drive [`run`] and read its [`Progress`] and [`Outcome`].

use std::collections::BTreeMap;

use crossbeam_channel::Receiver;

use crate::run::Recording;
use crate::topology::Topology;

/// The lessons, in the order they are taught.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LessonId {
    TimeSlicing,
    Parallelism,
    IoOverlap,
    Responsiveness,
    Server,
    Lock,
    Async,
    Amdahl,
    Smt,
}

impl LessonId {
    pub const ALL: [LessonId; 9] = [
        LessonId::TimeSlicing,
        LessonId::Parallelism,
        LessonId::IoOverlap,
        LessonId::Responsiveness,
        LessonId::Server,
        LessonId::Lock,
        LessonId::Async,
        LessonId::Amdahl,
        LessonId::Smt,
    ];

    /// The id on the command line and in the JSON.
    pub fn id(self) -> &'static str {
        match self {
            LessonId::TimeSlicing => "time-slicing",
            LessonId::Parallelism => "parallelism",
            LessonId::IoOverlap => "io-overlap",
            LessonId::Responsiveness => "responsiveness",
            LessonId::Server => "server",
            LessonId::Lock => "lock",
            LessonId::Async => "async",
            LessonId::Amdahl => "amdahl",
            LessonId::Smt => "smt",
        }
    }

    /// The claim the lesson tests, in one plain sentence (shown before it runs).
    pub fn claim(self) -> &'static str {
        match self {
            LessonId::TimeSlicing => time_slicing::CLAIM,
            LessonId::Parallelism => parallelism::CLAIM,
            LessonId::IoOverlap => io_overlap::CLAIM,
            LessonId::Responsiveness => responsiveness::CLAIM,
            LessonId::Server => server::CLAIM,
            LessonId::Lock => lock::CLAIM,
            LessonId::Async => asynchronous::CLAIM,
            LessonId::Amdahl => amdahl::CLAIM,
            LessonId::Smt => smt::CLAIM,
        }
    }

    /// A short title for the lesson list.
    pub fn title(self) -> &'static str {
        match self {
            LessonId::TimeSlicing => "Time-slicing (the barista)",
            LessonId::Parallelism => "Parallelism (more baristas)",
            LessonId::IoOverlap => "Waiting work overlaps on one core",
            LessonId::Responsiveness => "Responsiveness",
            LessonId::Server => "A server uses both",
            LessonId::Lock => "Threads are not parallelism",
            LessonId::Async => "Concurrency without threads",
            LessonId::Amdahl => "Amdahl's limit",
            LessonId::Smt => "SMT siblings are not full cores",
        }
    }
}

impl std::fmt::Display for LessonId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

impl std::str::FromStr for LessonId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LessonId::ALL
            .into_iter()
            .find(|l| l.id() == s)
            .ok_or_else(|| {
                let ids: Vec<&str> = LessonId::ALL.iter().map(|l| l.id()).collect();
                format!(
                    "unknown lesson '{s}': choose all or one of {}",
                    ids.join(", ")
                )
            })
    }
}

/// A chart a lesson draws (speedup against cores, a latency histogram…):
/// plain data, drawn by the app with egui_plot and ignored by the CLI.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Series {
    pub name: String,
    pub style: SeriesStyle,
    pub points: Vec<[f64; 2]>,
}

impl Chart {
    pub fn new(title: &str, x_label: &str, y_label: &str, series: Vec<Series>) -> Chart {
        Chart {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            series,
        }
    }
}

impl Series {
    pub fn new(name: impl Into<String>, style: SeriesStyle, points: Vec<[f64; 2]>) -> Series {
        Series {
            name: name.into(),
            style,
            points,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SeriesStyle {
    /// Measured points, with markers.
    Points,
    /// A formula or ideal, drawn as a line.
    Line,
    /// A histogram or grouped bars.
    Bars,
}

/// What a lesson reports while it runs.
#[derive(Clone, Debug)]
pub enum Progress {
    /// One sentence: what it is doing now ("2 threads on core 0…").
    Step(String),
    /// A run finished: it lands in the history like any other.
    Run(Box<Recording>),
    /// The charts so far, redrawn as each point arrives.
    Charts(Vec<Chart>),
}

/// The measured verdict of one lesson.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Outcome {
    pub id: LessonId,
    pub claim: String,
    /// The test in one sentence, with its thresholds, fixed before measuring.
    pub criterion: String,
    /// `None` where the lesson cannot run on this machine (see `reason`).
    pub holds: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The verdict in words, with its numbers.
    pub verdict: String,
    /// The numbers behind the verdict.
    pub figures: BTreeMap<String, serde_json::Value>,
    #[serde(skip)]
    pub charts: Vec<Chart>,
    /// The runs it made, for the timelines (not in the JSON: `--json` of
    /// `corelanes run` is the place for a run's detail).
    #[serde(skip)]
    pub runs: Vec<Recording>,
    /// A run failed (the reason says why): the lesson could run here but
    /// measured nothing to judge, which `corelanes lesson` counts as not holding.
    #[serde(skip)]
    pub failed: bool,
}

/// Runs lesson `id` on this machine's allowed cores, reporting to
/// `progress` as it goes, until done or `stop` is ready (then `holds` is
/// `None` and the reason says it was stopped).
pub fn run(
    id: LessonId,
    topo: &Topology,
    stop: &Receiver<()>,
    progress: &mut dyn FnMut(Progress),
) -> Outcome {
    let mut lab = Lab {
        topo,
        stop,
        progress,
        runs: Vec::new(),
        failed: false,
    };
    let judged = match id {
        LessonId::TimeSlicing => time_slicing::run(&mut lab),
        LessonId::Parallelism => parallelism::run(&mut lab),
        LessonId::IoOverlap => io_overlap::run(&mut lab),
        LessonId::Responsiveness => responsiveness::run(&mut lab),
        LessonId::Server => server::run(&mut lab),
        LessonId::Lock => lock::run(&mut lab),
        LessonId::Async => asynchronous::run(&mut lab),
        LessonId::Amdahl => amdahl::run(&mut lab),
        LessonId::Smt => smt::run(&mut lab),
    };
    judged.into_outcome(id, lab.runs, lab.failed)
}

mod amdahl;
mod asynchronous;
mod evidence;
mod io_overlap;
mod lock;
mod parallelism;
mod responsiveness;
mod server;
mod smt;
mod time_slicing;

/// The `reason` of a lesson the user stopped.
pub const STOPPED: &str = "stopped";

/// What a lesson's body returns; [`run`] adds its id and runs.
pub(crate) struct Judged {
    pub claim: String,
    pub criterion: String,
    pub holds: Option<bool>,
    pub reason: Option<String>,
    pub verdict: String,
    pub figures: BTreeMap<String, serde_json::Value>,
    pub charts: Vec<Chart>,
}

impl Judged {
    fn into_outcome(self, id: LessonId, runs: Vec<Recording>, failed: bool) -> Outcome {
        Outcome {
            id,
            claim: self.claim,
            criterion: self.criterion,
            holds: self.holds,
            reason: self.reason,
            verdict: self.verdict,
            figures: self.figures,
            charts: self.charts,
            runs,
            failed,
        }
    }

    /// A lesson measured to the end, and judged.
    pub fn measured(
        claim: &str,
        criterion: String,
        holds: bool,
        verdict: String,
        figures: BTreeMap<String, serde_json::Value>,
        charts: Vec<Chart>,
    ) -> Judged {
        Judged {
            claim: claim.into(),
            criterion,
            holds: Some(holds),
            reason: None,
            verdict,
            figures,
            charts,
        }
    }

    /// A lesson that cannot run on this machine, and why.
    pub fn cannot_run(claim: &str, criterion: String, reason: String) -> Judged {
        Judged {
            claim: claim.into(),
            criterion,
            holds: None,
            verdict: format!("Cannot run here: {reason}."),
            reason: Some(reason),
            figures: BTreeMap::new(),
            charts: Vec::new(),
        }
    }

    /// [`Judged::interrupted`] before anything was measured.
    pub fn cut_short(claim: &str, criterion: String, why: Interrupted) -> Judged {
        Judged::interrupted(claim, criterion, why, BTreeMap::new(), Vec::new())
    }

    /// A lesson whose measurements were cut short by `why`, with what it
    /// had measured by then: not judged (`holds` is `None`), the reason
    /// "stopped" or the failed run's sentence.
    pub fn interrupted(
        claim: &str,
        criterion: String,
        why: Interrupted,
        figures: BTreeMap<String, serde_json::Value>,
        charts: Vec<Chart>,
    ) -> Judged {
        let (reason, verdict) = match why {
            Interrupted::Stopped => (
                STOPPED.to_owned(),
                "Stopped before the measurements were done: not judged.".to_owned(),
            ),
            Interrupted::Failed(why) => (why.clone(), format!("A run failed, not judged: {why}")),
        };
        Judged {
            claim: claim.into(),
            criterion,
            holds: None,
            reason: Some(reason),
            verdict,
            figures,
            charts,
        }
    }
}

/// A lesson's figures from a JSON object (`json!({"wall_ms": 1.0, …})`);
/// anything else gives none.
pub(crate) fn figures(object: serde_json::Value) -> BTreeMap<String, serde_json::Value> {
    match object {
        serde_json::Value::Object(map) => map.into_iter().collect(),
        _ => BTreeMap::new(),
    }
}

/// What every lesson body works with: the machine, the stop signal, and
/// where progress goes. Runs made through [`Lab::run`] are kept for the outcome.
pub(crate) struct Lab<'a> {
    pub topo: &'a Topology,
    pub stop: &'a Receiver<()>,
    progress: &'a mut dyn FnMut(Progress),
    runs: Vec<Recording>,
    /// Whether a run failed (see [`Outcome::failed`]).
    failed: bool,
}

/// Why a lesson could not finish its measurements.
#[derive(Debug)]
pub(crate) enum Interrupted {
    /// The user stopped it.
    Stopped,
    /// A run failed: the sentence says why.
    Failed(String),
}

impl Lab<'_> {
    pub fn step(&mut self, what: impl Into<String>) {
        (self.progress)(Progress::Step(what.into()));
    }

    pub fn charts(&mut self, charts: &[Chart]) {
        (self.progress)(Progress::Charts(charts.to_vec()));
    }

    /// A run of `tasks` tasks of `task_ms` on `threads` threads placed by
    /// `placement`, the defaults otherwise (change others with `..`).
    pub fn config(
        &self,
        workload: crate::workload::WorkloadKind,
        threads: usize,
        tasks: usize,
        task_ms: f64,
        placement: crate::run::Placement,
    ) -> crate::run::RunConfig {
        crate::run::RunConfig {
            workload,
            threads,
            tasks,
            task_ms,
            placement,
            ..crate::run::RunConfig::defaults(self.topo)
        }
    }

    /// Validates and runs `config` to its end, reports it, and keeps it.
    pub fn run(&mut self, config: crate::run::RunConfig) -> Result<Recording, Interrupted> {
        let plan = config.plan();
        self.run_plan(config, plan)
    }

    /// [`Lab::run`] with a custom plan: `config` gives the threads, their
    /// cores, and what the history calls the run.
    pub fn run_plan(
        &mut self,
        config: crate::run::RunConfig,
        plan: Result<crate::workload::Plan, String>,
    ) -> Result<Recording, Interrupted> {
        let valid = config.validate(self.topo).map_err(|e| {
            self.failed = true;
            Interrupted::Failed(e.to_string())
        })?;
        let rec = crate::run::run_plan_until(valid, plan, self.stop);
        if rec.status == crate::run::RunStatus::Cancelled && rec.failures.is_empty() {
            return Err(Interrupted::Stopped);
        }
        if let Some(why) = rec.failures.first() {
            self.failed = true;
            return Err(Interrupted::Failed(why.clone()));
        }
        (self.progress)(Progress::Run(Box::new(rec.clone())));
        self.runs.push(rec.clone());
        Ok(rec)
    }
}
