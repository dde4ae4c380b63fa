//! The command line: `run`, `sweep`, `bench`, `open`, `record`, `lesson`, and `gui` (the default).
//! Raw arguments are turned into a validated [`RunConfig`] before anything runs.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::export;
use crate::interrupt::Interrupts;
use crate::lesson::{self, LessonId};
use crate::metrics::human_ns;
use crate::outputs::{Outputs, is_stdout};
use crate::record;
use crate::run::{self, ConfigError, Placement, Recording, RunConfig, RunStatus};
use crate::session::{self, SavedRun};
use crate::telemetry::sched::{self, SchedMode, SliceState};
use crate::topology::Topology;
use crate::workload::WorkloadKind;

#[derive(Parser, Debug)]
#[command(
    name = "corelanes",
    version,
    about = "See concurrency versus parallelism with real data from the kernel."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Open the desktop app (what plain `corelanes` does).
    Gui(GuiArgs),
    /// Run one workload headless and print what happened.
    Run {
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        out: OutputArgs,
        /// For `bench --capture`: each worker inherits one perf event per
        /// CPU watched, even where it could open one of its own.
        #[arg(long, hide = true)]
        inherited_events: bool,
    },
    /// Run the same total work on 1..N threads and print speedup and efficiency.
    Sweep {
        #[command(flatten)]
        run: RunArgs,
        /// Largest thread count of the sweep.
        #[arg(long)]
        max_threads: usize,
        /// Write the sweep's points as JSON to FILE, or to stdout with '-'.
        #[arg(long, value_name = "FILE|-")]
        json: Option<PathBuf>,
    },
    /// Measure the engine's own costs and print the figures.
    Bench(crate::bench::BenchArgs),
    /// Open a saved session (.pftrace): print its runs, or convert one.
    Open(OpenArgs),
    /// Record another program's threads as the kernel scheduled them:
    /// `record -- CMD ARGS...` launches it, `record --pid PID` attaches.
    Record(RecordArgs),
    /// Run a lesson (or all of them): a claim about concurrency or
    /// parallelism measured on this machine's allowed cores, with its verdict.
    Lesson(LessonArgs),
}

/// `corelanes lesson NAME|all`: which lessons, and where their verdicts go.
#[derive(Args, Debug, Clone)]
pub struct LessonArgs {
    /// time-slicing, parallelism, io-overlap, responsiveness, server, lock,
    /// async, amdahl, smt, or all of them in that order.
    #[arg(value_name = "NAME|all")]
    pub name: String,
    /// Write the verdicts as a JSON list to FILE, or to stdout with '-'.
    #[arg(long, value_name = "FILE|-")]
    pub json: Option<PathBuf>,
}

/// `corelanes record`: which program, for how long, and the files to write.
#[derive(Args, Debug, Clone)]
pub struct RecordArgs {
    /// Attach to this running process (of the same user) instead of launching a command.
    #[arg(long, conflicts_with = "command")]
    pub pid: Option<i32>,
    /// Stop after this many seconds (the program runs on; a launched one gets Ctrl+C).
    #[arg(long, value_name = "S", value_parser = seconds)]
    pub seconds: Option<Duration>,
    /// Kernel scheduler capture: auto (perf, else sampling /proc), perf or procfs [default: auto].
    #[arg(long, default_value = "auto")]
    pub sched: SchedMode,
    /// Also capture the other programs on the cores (CPU-wide context switches),
    /// so that the cores' gaps are named: needs CAP_PERFMON or root, or
    /// kernel.perf_event_paranoid=0. Never on unless given.
    #[arg(long)]
    pub system_wide: bool,
    #[command(flatten)]
    pub out: OutputArgs,
    /// The command to launch and its arguments, after `--`.
    #[arg(last = true, value_name = "CMD", required_unless_present = "pid")]
    pub command: Vec<std::ffi::OsString>,
}

/// The flags that describe one run (shared by `run`, `sweep` and `gui`).
/// Each is optional, so that `gui` can tell flags given from defaults: given
/// flags replace the app's saved settings.
#[derive(Args, Debug, Clone, Default)]
pub struct RunArgs {
    /// cpu, io, disk, mixed, lock, amdahl or server [default: cpu].
    #[arg(long)]
    pub workload: Option<WorkloadKind>,
    /// Worker threads [default: the number of allowed cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Tasks in total [default: 4 × threads].
    #[arg(long)]
    pub tasks: Option<usize>,
    /// Nominal duration of one task in milliseconds [default: 50].
    #[arg(long)]
    pub task_ms: Option<f64>,
    /// Compute exactly N loop iterations per task instead of the calibrated
    /// --task-ms (which varies by about ±3 % between processes): identical
    /// work across processes. cpu, lock: the whole task; mixed: its computing
    /// half (it still sleeps half of --task-ms); amdahl: tasks × N in all.
    /// io and disk refuse it.
    #[arg(long, value_name = "N")]
    pub task_iters: Option<u64>,
    /// one-core, spread, unpinned, or a comma-separated list of cores, one per thread [default: spread].
    #[arg(long)]
    pub placement: Option<String>,
    /// The core for --placement one-core [default: the first allowed core].
    #[arg(long)]
    pub core: Option<usize>,
    /// Amdahl workload: the serial fraction of the total work, 0 to 1 [default: 0.1].
    #[arg(long)]
    pub serial: Option<f64>,
    /// Kernel scheduler capture: auto (perf, else procfs), perf, procfs or off [default: auto].
    #[arg(long)]
    pub sched: Option<SchedMode>,
    /// Also capture the other programs on the cores (CPU-wide context switches),
    /// so that the cores' gaps are named: needs CAP_PERFMON or root, or
    /// kernel.perf_event_paranoid=0. Never on unless given.
    #[arg(long)]
    pub system_wide: bool,
    /// Run until stopped (Ctrl+C, or Stop in the app): the task queue never
    /// runs dry, each thread takes task after task; --tasks then only sizes
    /// amdahl's serial part. What was recorded is printed and written at the
    /// end; raw data is kept for the last 10 minutes (or a memory budget),
    /// older data as a summary.
    #[arg(long)]
    pub until_stop: bool,
}

impl RunArgs {
    pub fn to_config(&self, topo: &Topology) -> Result<RunConfig, ConfigError> {
        let d = RunConfig::defaults(topo);
        let threads = self.threads.unwrap_or(d.threads);
        let placement = match &self.placement {
            Some(text) => Placement::parse(text, self.core, topo)?,
            None => d.placement,
        };
        Ok(RunConfig {
            workload: self.workload.unwrap_or(d.workload),
            threads,
            tasks: self.tasks.unwrap_or(4 * threads),
            task_ms: self.task_ms.unwrap_or(d.task_ms),
            placement,
            serial: self.serial.unwrap_or(d.serial),
            sched: self.sched.unwrap_or(d.sched),
            system_wide: self.system_wide,
            task_iters: self.task_iters,
            until_stop: self.until_stop,
        })
    }

    /// Whether any run flag was given.
    pub fn any(&self) -> bool {
        let RunArgs {
            workload,
            threads,
            tasks,
            task_ms,
            task_iters,
            placement,
            core,
            serial,
            sched,
            system_wide,
            until_stop,
        } = self;
        workload.is_some()
            || threads.is_some()
            || tasks.is_some()
            || task_ms.is_some()
            || task_iters.is_some()
            || placement.is_some()
            || core.is_some()
            || serial.is_some()
            || sched.is_some()
            || *system_wide
            || *until_stop
    }
}

#[derive(Args, Debug, Clone, Default)]
pub struct OutputArgs {
    /// Write the summary JSON to FILE, or to stdout instead of the summary with '-'.
    #[arg(long, value_name = "FILE|-")]
    pub json: Option<PathBuf>,
    /// Write the tasks as CSV to FILE.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Write a Chrome trace (opens in Perfetto) to FILE.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Save the run as a session to FILE (.pftrace): `corelanes open` reads
    /// it back, ui.perfetto.dev shows it with its CPU view.
    #[arg(long, value_name = "FILE")]
    pub pftrace: Option<PathBuf>,
}

impl OutputArgs {
    /// The files asked for, as the engine and the app take them.
    pub fn outputs(&self) -> Outputs {
        Outputs {
            json: self.json.clone(),
            csv: self.csv.clone(),
            trace: self.trace.clone(),
            pftrace: self.pftrace.clone(),
        }
    }
}

/// `corelanes open FILE`: what a session holds, printed or converted.
#[derive(Args, Debug, Clone)]
pub struct OpenArgs {
    /// The session file (.pftrace).
    pub file: PathBuf,
    /// Which run to convert when the session holds several (1 = the first).
    #[arg(long, value_name = "N")]
    pub run: Option<usize>,
    #[command(flatten)]
    pub out: OutputArgs,
}

/// `corelanes gui`: the run flags preset the controls; the rest script a figure.
#[derive(Args, Debug, Clone)]
pub struct GuiArgs {
    /// A session (.pftrace) to open in the window.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub run: RunArgs,
    /// Start the run as soon as the window opens.
    #[arg(long)]
    pub autorun: bool,
    /// With --autorun: run the concurrency preset (all threads on one core),
    /// then the parallelism preset (one thread per core), and stack them.
    #[arg(long, requires = "autorun", conflicts_with_all = ["screenshot_at", "json", "csv", "trace", "pftrace"])]
    pub run_both: bool,
    /// Open the Experiments view on this lesson; with --autorun, run it, and
    /// with --screenshot, save its slide (claim, verdict, pictures).
    #[arg(long, value_name = "NAME", conflicts_with_all = ["run_both", "screenshot_at", "json", "csv", "trace", "pftrace"])]
    pub lesson: Option<crate::lesson::LessonId>,
    /// Show a synthetic recording of 1 000 threads on 256 CPUs (generated,
    /// not measured, and labelled so) to see how the many-core view reads.
    #[arg(long, conflicts_with_all = ["autorun", "lesson"])]
    pub synthetic_many_core: bool,
    /// Save the timeline as PNG to FILE once the run has finished and been drawn.
    #[arg(long, value_name = "FILE")]
    pub screenshot: Option<PathBuf>,
    /// With --screenshot: save the first frame drawn SECONDS after the run
    /// starts, while it is still going (then wait for its end before --exit).
    #[arg(long, value_name = "SECONDS", requires = "screenshot", value_parser = seconds, allow_negative_numbers = true)]
    pub screenshot_at: Option<Duration>,
    /// With --screenshot: save the whole window rather than the timeline.
    #[arg(long, requires = "screenshot")]
    pub whole_window: bool,
    /// Close the window after the screenshot (or the run) is done.
    #[arg(long)]
    pub exit: bool,
    /// The run's files, written when it ends (like `corelanes run`'s).
    #[command(flatten)]
    pub out: OutputArgs,
    /// The window's size in points, e.g. 1280x800 (a laptop screen) [default: 1500x940].
    #[arg(long, value_name = "WxH", value_parser = window_size)]
    pub window_size: Option<[f32; 2]>,
}

fn window_size(text: &str) -> Result<[f32; 2], String> {
    let size = text
        .split_once(['x', 'X', '×'])
        .and_then(|(w, h)| Some([w.trim().parse::<f32>().ok()?, h.trim().parse::<f32>().ok()?]));
    match size {
        Some([w, h]) if w >= 900.0 && h >= 600.0 && w <= 10_000.0 && h <= 10_000.0 => Ok([w, h]),
        Some(_) => Err(format!("'{text}' is outside 900x600 to 10000x10000")),
        None => Err(format!("'{text}' is not a size such as 1280x800")),
    }
}

/// A time after the run's start, in seconds.
fn seconds(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("'{text}' is not a number of seconds, 0 or more"))
}

#[cfg(feature = "gui")]
impl GuiArgs {
    /// What the app is to do, as the app takes it.
    pub fn launch(&self) -> Result<crate::gui::Launch, ConfigError> {
        Ok(crate::gui::Launch {
            config: self.run.to_config(Topology::get())?,
            config_given: self.run.any(),
            open: self.file.clone(),
            autorun: self.autorun,
            run_both: self.run_both,
            lesson: self.lesson,
            synthetic_many_core: self.synthetic_many_core,
            screenshot: self.screenshot.clone(),
            screenshot_at: self.screenshot_at,
            whole_window: self.whole_window,
            exit: self.exit,
            outputs: self.out.outputs(),
            window_size: self.window_size,
        })
    }
}

#[cfg(feature = "gui")]
fn open_window(args: Option<GuiArgs>) -> anyhow::Result<ExitCode> {
    let launch = match args {
        None => crate::gui::Launch::interactive(RunConfig::defaults(Topology::get())),
        Some(args) => args.launch()?,
    };
    crate::gui::run(launch)
}

#[cfg(not(feature = "gui"))]
fn open_window(_: Option<GuiArgs>) -> anyhow::Result<ExitCode> {
    anyhow::bail!(
        "this corelanes was built without the desktop app (cargo's --no-default-features): \
         use run, sweep or bench, or build it with the default features"
    )
}

/// Runs the parsed command line; returns the process's exit code.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        None => open_window(None),
        Some(Command::Gui(args)) => open_window(Some(args)),
        Some(Command::Run {
            run,
            out,
            inherited_events,
        }) => run_once(&run, &out, inherited_events),
        Some(Command::Sweep {
            run,
            max_threads,
            json,
        }) => run_sweep(&run, max_threads, json.as_deref()),
        Some(Command::Bench(args)) => crate::bench::run(&args).inspect(|_| {
            #[cfg(feature = "gui")]
            if !args.long {
                crate::gui::bench::print_figures(args.events);
            }
        }),
        Some(Command::Open(args)) => open_session(&args),
        Some(Command::Record(args)) => record_program(&args),
        Some(Command::Lesson(args)) => run_lessons(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run_once(args: &RunArgs, out: &OutputArgs, inherited: bool) -> anyhow::Result<ExitCode> {
    let out = out.outputs();
    let topo = Topology::get();
    let mut valid = args.to_config(topo)?.validate(topo)?;
    if inherited {
        valid = valid.with_inherited_events();
    }
    if valid.config.system_wide {
        // Refused here, before anything runs, with the reason.
        sched::check_system_wide(valid.config.sched, &topo.allowed)?;
    }
    out.check_writable()?;
    let interrupts = Interrupts::install()?;
    let rec = run::run_until(valid, interrupts.stop());
    if rec.threads.is_empty() {
        // It never started (e.g. `--sched perf` refused): nothing to summarise.
        anyhow::bail!("{}", rec.failures.join("; "));
    }
    if !out.json_to_stdout() {
        print!("{}", report(&rec));
    }
    out.write(&rec)?;
    for why in &rec.failures {
        eprintln!("failure: {why}");
    }
    // Ctrl+C is how a run until Stop is meant to end: not a failure.
    if let Some(code) = interrupts.exit_code()
        && !rec.config.until_stop
    {
        return Ok(code);
    }
    Ok(if rec.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn record_program(args: &RecordArgs) -> anyhow::Result<ExitCode> {
    let out = args.out.outputs();
    if args.system_wide {
        // Refused here, before the program is started, with the reason.
        sched::check_system_wide(args.sched, &[])?;
    }
    out.check_writable()?;
    let program = match args.pid {
        Some(pid) => record::Program::Attach(pid),
        None => record::Program::Launch(args.command.clone()),
    };
    let attached = args.pid.is_some();
    let interrupts = Interrupts::install()?;
    let rec = record::record_until(
        record::RecordConfig {
            program,
            duration: args.seconds,
            sched: args.sched,
            system_wide: args.system_wide,
        },
        interrupts.stop(),
    );
    let Some(program) = rec.program.clone() else {
        // It never started (perf refused, no such command or process).
        anyhow::bail!("{}", rec.failures.join("; "));
    };
    if !out.json_to_stdout() {
        print!("{}", program_report(&rec, &program));
    }
    out.write(&rec)?;
    for why in &rec.failures {
        eprintln!("failure: {why}");
    }
    if attached {
        return Ok(ExitCode::SUCCESS);
    }
    Ok(match program.exit_status {
        Some(status) => ExitCode::from(u8::try_from(status).unwrap_or(1)),
        None => interrupts.exit_code().unwrap_or(ExitCode::SUCCESS),
    })
}

/// The human summary of another program's recording: figures from the
/// kernel's slices alone, then one line per thread.
pub fn program_report(rec: &Recording, program: &record::ProgramInfo) -> String {
    let m = rec.metrics();
    let k = rec.kernel_figures();
    let mut out = rec.title();
    out += &match (program.exit_status, program.attached) {
        (Some(status), _) => format!(" — exited with status {status}\n"),
        (None, true) => " — attached\n".to_owned(),
        (None, false) => " — still running when the recording stopped\n".to_owned(),
    };
    out += &format!(
        "wall {}   CPU {}   parallelism {:.2} (threads running, on average)   \
         concurrency {:.2} (running or waiting for a CPU)\n",
        human_ns(m.wall_ns),
        human_ns(m.cpu_ns),
        k.parallelism,
        k.concurrency
    );
    let share = |ns: u64| 100.0 * ns as f64 / rec.wall_ns.max(1) as f64;
    out += "threads running at once:";
    for (running, &ns) in k.profile_ns.iter().enumerate() {
        out += &format!("  {running}: {:.0} %", share(ns));
    }
    out += "\n";
    let per_thread = rec.sched.as_ref().map_or(&[][..], |s| &s.per_thread[..]);
    for (t, sched) in rec.threads.iter().zip(per_thread) {
        let mut cores: Vec<usize> = rec
            .slices()
            .iter()
            .filter(|s| s.thread() == t.index && s.state == SliceState::Running)
            .map(sched::SchedSlice::core)
            .collect();
        cores.sort_unstable();
        cores.dedup();
        out += &format!(
            "  {:<15} tid {:<7} running {:>9}  waiting for CPU {:>9}  blocked {:>9}  \
             switches {} preempted, {} voluntary  migrations {}  cores {}\n",
            t.name,
            t.tid,
            human_ns(sched.running_ns),
            human_ns(sched.runnable_ns),
            human_ns(sched.blocked_ns),
            sched.switches_out_preempted,
            sched.switches_out_blocked,
            sched.migrations,
            if cores.is_empty() {
                "none".to_owned()
            } else {
                crate::topology::compact_ranges(&cores)
            }
        );
    }
    out + &capture_lines(rec)
}

fn open_session(args: &OpenArgs) -> anyhow::Result<ExitCode> {
    let runs = session::open(&args.file)?;
    let chosen: Vec<&SavedRun> = match args.run {
        Some(n) => vec![runs.get(n.wrapping_sub(1)).ok_or_else(|| {
            anyhow::anyhow!(
                "{} holds {} run(s): choose one with --run 1 to {}",
                args.file.display(),
                runs.len(),
                runs.len()
            )
        })?],
        None => runs.iter().collect(),
    };
    let out = args.out.outputs();
    if out.any() {
        let [one] = chosen.as_slice() else {
            anyhow::bail!(
                "{} holds {} runs: choose the one to convert with --run N",
                args.file.display(),
                runs.len()
            );
        };
        out.check_writable()?;
        if !out.json_to_stdout() {
            print!("{}", report(&one.recording));
        }
        out.write_on(&one.recording, &one.machine)?;
    } else {
        for (i, run) in chosen.iter().enumerate() {
            if chosen.len() > 1 {
                println!("run {} of {}:", i + 1, chosen.len());
            }
            print!("{}", report(&run.recording));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_sweep(
    args: &RunArgs,
    max_threads: usize,
    json: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    let topo = Topology::get();
    if args.until_stop {
        anyhow::bail!(
            "--until-stop does not apply to sweep: a sweep compares runs of the same total work; use it with run or gui"
        );
    }
    let base = args.to_config(topo)?;
    // Same total work at every point: the task count is fixed by the largest run.
    let base = RunConfig {
        tasks: args.tasks.unwrap_or(4 * max_threads),
        ..base
    };
    RunConfig {
        threads: max_threads,
        ..base.clone()
    }
    .validate(topo)?;
    if let Some(path) = json.filter(|p| !is_stdout(p)) {
        export::check_writable(path)?;
    }
    let quiet = json.is_some_and(is_stdout);
    if !quiet {
        eprintln!(
            "sweep: {} tasks of {}, {} workload, placement {}, 1..{max_threads} threads",
            base.tasks,
            base.work_label(),
            base.workload,
            base.placement.label()
        );
    }
    let interrupts = Interrupts::install()?;
    let points = crate::sweep::sweep_until(&base, max_threads, topo, interrupts.stop(), |p, _| {
        if !quiet {
            eprintln!("  {} thread(s): {}", p.threads, human_ns(p.wall_ns));
        }
    })?;
    let stopped = interrupts.exit_code();
    if stopped.is_some() && !quiet {
        eprintln!(
            "stopped: {} of {max_threads} thread counts were measured",
            points.len()
        );
    }
    let body = serde_json::to_string_pretty(&serde_json::json!({
        "config": base,
        "status": if stopped.is_some() { RunStatus::Cancelled } else { RunStatus::Finished },
        "amdahl_parallel_fraction": crate::sweep::amdahl_fit(&points),
        "points": points,
    }))?;
    match json {
        Some(path) if is_stdout(path) => println!("{body}"),
        Some(path) => {
            print!("{}", crate::sweep::table(&points));
            export::write_atomically(path, body.as_bytes())?;
            println!("wrote {}", path.display());
        }
        None => print!("{}", crate::sweep::table(&points)),
    }
    let _ = std::io::stdout().flush();
    Ok(stopped.unwrap_or(ExitCode::SUCCESS))
}

fn run_lessons(args: &LessonArgs) -> anyhow::Result<ExitCode> {
    let ids: Vec<LessonId> = match args.name.as_str() {
        "all" => LessonId::ALL.to_vec(),
        name => vec![name.parse().map_err(|why: String| anyhow::anyhow!(why))?],
    };
    let json = args.json.as_deref();
    if let Some(path) = json.filter(|p| !is_stdout(p)) {
        export::check_writable(path)?;
    }
    // With `--json -` stdout carries the JSON alone, and the words go to stderr.
    let to_stdout = json.is_some_and(is_stdout);
    let say = |line: String| {
        if to_stdout {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    let interrupts = Interrupts::install()?;
    let mut outcomes: Vec<lesson::Outcome> = Vec::new();
    for id in ids {
        say(format!("== {} ({id})", id.title()));
        let started = std::time::Instant::now();
        let outcome = lesson::run(id, Topology::get(), interrupts.stop(), &mut |p| {
            if let lesson::Progress::Step(step) = p {
                eprintln!("   … {step}");
            }
        });
        say(format!("claim: {}", outcome.claim));
        say(format!("criterion: {}", outcome.criterion));
        say(format!(
            "{} ({:.1} s)\n",
            verdict_line(&outcome),
            started.elapsed().as_secs_f64()
        ));
        outcomes.push(outcome);
        if interrupts.exit_code().is_some() {
            break;
        }
    }
    let body = serde_json::to_string_pretty(&outcomes)?;
    match json {
        Some(path) if is_stdout(path) => println!("{body}"),
        Some(path) => {
            export::write_atomically(path, body.as_bytes())?;
            println!("wrote {}", path.display());
        }
        None => {}
    }
    let _ = std::io::stdout().flush();
    if let Some(code) = interrupts.exit_code() {
        return Ok(code);
    }
    let failed = outcomes.iter().any(|o| o.holds == Some(false) || o.failed);
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// "HOLDS: …", "DOES NOT HOLD: …", "CANNOT RUN HERE: …", "FAILED: …" or "STOPPED: …".
fn verdict_line(o: &lesson::Outcome) -> String {
    let reason = o.reason.as_deref().unwrap_or("");
    match o.holds {
        Some(true) => format!("HOLDS: {}", o.verdict),
        Some(false) => format!("DOES NOT HOLD: {}", o.verdict),
        None if o.failed => format!("FAILED: {reason}"),
        None if reason == "stopped" => format!("STOPPED: {}", o.verdict),
        None => format!("CANNOT RUN HERE: {reason}"),
    }
}

/// The human summary of a run.
pub fn report(rec: &Recording) -> String {
    let m = rec.metrics();
    let c = &rec.config;
    let mut out = format!(
        "{} — {} tasks of {}\n",
        rec.title(),
        c.tasks,
        c.work_label()
    );
    if rec.status == RunStatus::Cancelled {
        out += &format!(
            "stopped before the end: {} of {} tasks ran\n",
            rec.tasks.len(),
            c.tasks
        );
    }
    out += &format!(
        "wall {}   CPU {}   parallelism {:.2}   concurrency {:.2}   tasks ok {}/{}\n",
        human_ns(m.wall_ns),
        human_ns(m.cpu_ns),
        m.parallelism,
        m.concurrency,
        m.tasks_ok,
        rec.tasks.len()
    );
    for t in &rec.threads {
        let pin = t.pinned_core.map_or("unpinned".to_string(), |c| {
            format!("pinned to {}", Topology::get().core_label(c))
        });
        out += &format!(
            "  {:<10} {:<16} CPU {:>9}  waited for CPU {:>9}  switches {} voluntary, {} involuntary  migrations {}\n",
            t.name,
            pin,
            human_ns(t.cpu_ns),
            human_ns(t.run_delay_ns),
            t.voluntary_switches,
            t.involuntary_switches,
            t.migrations
        );
    }
    out += &format!("task CPU time: {}\n", rec.task_cpu.label());
    out + &capture_lines(rec)
}

/// The closing lines of a report: where the slices came from, and the machine.
fn capture_lines(rec: &Recording) -> String {
    let lost = rec.sched.as_ref().map_or(0, |s| s.lost_records);
    let mut out = format!("scheduler capture: {:?}", rec.sched_source).to_lowercase();
    if let Some(s) = &rec.sched {
        out += &format!(", {} slices, {lost} lost records", s.slices.len());
        if let Some(ns) = s.capture_cpu_ns {
            out += &format!(", its own thread {} of CPU", human_ns(ns));
        }
    }
    out += "\n";
    if let Some(line) = rec.others_line() {
        out += &line;
        out += "\n";
    }
    if let Some(note) = &rec.sched_note {
        out += &format!("note: {note}\n");
    }
    if let Some(environment) = &rec.environment {
        out += &environment.line();
        out += "\n";
    }
    out
}
