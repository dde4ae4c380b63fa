//! The kernel's scheduling of the run's worker threads: when each one was
//! Running on which core, Runnable (preempted, waiting for a CPU) or Blocked
//! (sleep, I/O, lock).
//!
//! Two sources, one result ([`SchedReport`]):
//! - **perf** (exact): `perf_event_open` context-switch records, one ring per
//!   CPU, inherited by the worker threads ([`perf`], raw calls in
//!   [`crate::sys::perf`]); needs `kernel.perf_event_paranoid` ≤ 2 or CAP_PERFMON.
//! - **procfs** (coarse): `/proc/self/task/<tid>/…` sampled at ~1 kHz ([`procfs`]).
//!
//! Lifecycle: [`SchedCapture::start`] on the run's controller thread *before*
//! it spawns the workers; [`SchedCapture::register_worker`] from each worker
//! once it runs; [`SchedCapture::finish`] after all workers were joined.
//! All times are `CLOCK_MONOTONIC` ns relative to the run's origin, given to `finish`.

pub mod live;
pub mod perf;
pub mod procfs;
pub mod slices;

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::sys;

/// Maps keyed by thread id, looked up once per perf record on the drain
/// thread: a multiply instead of SipHash, since a thread id is no
/// attacker's choice.
pub type TidMap<V> = HashMap<i32, V, std::hash::BuildHasherDefault<TidHasher>>;

/// See [`TidMap`].
#[derive(Default)]
pub struct TidHasher(u64);

impl std::hash::Hasher for TidHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_i32(&mut self, tid: i32) {
        self.write_u64(u64::from(tid as u32));
    }

    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing: the product's high bits mix every bit of `n`.
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Which source the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchedMode {
    /// perf if the kernel allows it, else procfs.
    Auto,
    Perf,
    Procfs,
    Off,
}

impl SchedMode {
    pub const ALL: [SchedMode; 4] = [Self::Auto, Self::Perf, Self::Procfs, Self::Off];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Perf => "perf",
            Self::Procfs => "procfs",
            Self::Off => "off",
        }
    }
}

impl fmt::Display for SchedMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SchedMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!("unknown scheduler capture `{s}` (expected auto, perf, procfs or off)")
            })
    }
}

/// Which source actually produced the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchedSource {
    Perf,
    Procfs,
    Off,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SliceState {
    /// On a CPU.
    Running,
    /// Wanting a CPU (preempted, or woken and queued).
    Runnable,
    /// Waiting for something else (sleep, I/O, lock).
    Blocked,
}

/// One stretch of one worker in one state; `core` is the CPU it ran on
/// (for Runnable/Blocked: the CPU it last ran on).
///
/// 24 bytes, not 40 with `usize` indices: a high-switch run keeps 120 000
/// a second, and each fresh page of them costs microseconds to fault in.
/// A `u16` core is enough: Linux builds for at most 8 192 CPUs.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SchedSlice {
    /// Worker index.
    pub thread: u32,
    pub core: u16,
    pub state: SliceState,
    pub start_ns: u64,
    pub end_ns: u64,
}

impl SchedSlice {
    /// A slice of worker `thread` on CPU `core`. Panics past 2³² threads or
    /// 2¹⁶ CPUs, which no kernel has (files are checked where they are read).
    pub fn new(thread: usize, core: usize, state: SliceState, start_ns: u64, end_ns: u64) -> Self {
        SchedSlice {
            thread: u32::try_from(thread).expect("fewer than 2³² threads"),
            core: u16::try_from(core).expect("fewer than 2¹⁶ CPUs"),
            state,
            start_ns,
            end_ns,
        }
    }

    /// The worker's index.
    #[inline]
    pub fn thread(&self) -> usize {
        self.thread as usize
    }

    /// The CPU's number.
    #[inline]
    pub fn core(&self) -> usize {
        usize::from(self.core)
    }

    /// A slice on core 0, as the unit tests write them.
    #[cfg(test)]
    pub(crate) fn on_core0(thread: usize, state: SliceState, start_ns: u64, end_ns: u64) -> Self {
        SchedSlice::new(thread, 0, state, start_ns, end_ns)
    }
}

/// Totals of one worker.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ThreadSched {
    pub running_ns: u64,
    pub runnable_ns: u64,
    pub blocked_ns: u64,
    /// Consecutive running slices on different cores.
    pub migrations: u64,
    /// Switch-outs while still runnable (perf: PREEMPT flag; procfs: involuntary switches).
    pub switches_out_preempted: u64,
    /// Switch-outs to wait for something (perf: no PREEMPT flag; procfs: voluntary switches).
    pub switches_out_blocked: u64,
}

/// System-wide capture only: a stretch of time in which another task (of
/// any program, this one's non-worker threads included) ran on a core.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OtherSlice {
    pub core: usize,
    pub tid: i32,
    /// Its process (thread group).
    pub pid: i32,
    /// Its `comm` when first seen (`/proc/TID/comm`), or `pid N` if it was gone.
    pub name: String,
    pub start_ns: u64,
    pub end_ns: u64,
}

/// How much raw data a capture keeps while it runs (see [`crate::retention`]),
/// once it knows the run's origin ([`SchedCapture::stream`]): perf's records
/// up to `bytes` or half of `window_ns` (then it keeps none and streams its
/// slices), the other programs' stretches and the /proc sampler's pieces
/// (shared among its threads) up to `bytes` each and for `window_ns`. What
/// is forgotten lives on as exact totals. Only tests ask for less than the
/// default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub bytes: usize,
    pub window_ns: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            bytes: crate::retention::CAPTURE_SHARE,
            window_ns: crate::retention::WINDOW_NS,
        }
    }
}

/// Adds a sentence to a report's note.
fn add_note(note: &mut Option<String>, sentence: &str) {
    *note = Some(match note.take() {
        Some(n) => format!("{n} {sentence}"),
        None => sentence.to_owned(),
    });
}

/// With `system_wide`: the time another program took on one core in the
/// stretches a long capture no longer keeps in [`SchedReport::others`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OtherTotal {
    pub core: usize,
    pub name: String,
    pub ns: u64,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SchedReport {
    pub source: SchedSource,
    /// Records the kernel dropped because a ring was full (perf only).
    pub lost_records: u64,
    /// Sorted by (thread, start_ns).
    pub slices: Vec<SchedSlice>,
    /// Indexed by worker index (one entry per index up to the largest registered).
    pub per_thread: Vec<ThreadSched>,
    /// Which source is active and why, and how to get the exact one.
    pub note: Option<String>,
    /// Whether CPU-wide switches were captured (`--system-wide`).
    #[serde(default)]
    pub system_wide: bool,
    /// With `system_wide`: what ran on the CPUs besides the run's threads
    /// (the idle task left out), sorted by (core, start_ns). Empty otherwise.
    #[serde(default)]
    pub others: Vec<OtherSlice>,
    /// `slices` are those the capture streamed while the run went (the
    /// recording holds them, a long run's oldest dropped), while
    /// `per_thread` still totals every one. False where they were built
    /// from the records at the end: no live view was asked for.
    #[serde(default)]
    pub streamed: bool,
    /// The other programs' stretches dropped from the front of `others`
    /// (past the window or the budget), totalled by core and program.
    #[serde(default)]
    pub others_before: Vec<OtherTotal>,
    /// Slices the capture itself no longer kept (the /proc sampler's oldest,
    /// past the window or the budget): `per_thread` still totals them.
    #[serde(default)]
    pub dropped: crate::retention::Dropped,
    /// The most bytes of raw records the capture held between two reads of
    /// its rings (perf; see [`Limits`]).
    #[serde(default)]
    pub raw_peak_bytes: usize,
    /// The CPU time of perf's drain thread (reading the rings and building
    /// the slices): what watching cost the process, beside the run's own.
    #[serde(default)]
    pub capture_cpu_ns: Option<u64>,
    /// The perf events each thread carried, which the kernel walks at each
    /// of its switches: 1 where each worker opened its own, else one per CPU
    /// watched (perf only).
    #[serde(default)]
    pub events_per_thread: Option<usize>,
}

impl SchedReport {
    /// A complete report of `slices` from `source` (nothing lost, no note,
    /// no other programs): what generators and tests build.
    pub fn of_slices(
        source: SchedSource,
        slices: Vec<SchedSlice>,
        per_thread: Vec<ThreadSched>,
    ) -> SchedReport {
        SchedReport {
            source,
            lost_records: 0,
            slices,
            per_thread,
            note: None,
            system_wide: false,
            others: Vec::new(),
            streamed: false,
            others_before: Vec::new(),
            dropped: crate::retention::Dropped::default(),
            raw_peak_bytes: 0,
            capture_cpu_ns: None,
            events_per_thread: None,
        }
    }

    /// The other programs' time on `cores`, by name, longest first: the
    /// stretches kept and the totals of those dropped.
    pub fn others_on(&self, cores: &[usize]) -> Vec<(String, u64)> {
        let mut by_name: HashMap<&str, u64> = HashMap::new();
        for o in self.others.iter().filter(|o| cores.contains(&o.core)) {
            *by_name.entry(&o.name).or_default() += o.end_ns - o.start_ns;
        }
        for o in self
            .others_before
            .iter()
            .filter(|o| cores.contains(&o.core))
        {
            *by_name.entry(&o.name).or_default() += o.ns;
        }
        let mut top: Vec<(String, u64)> = by_name
            .into_iter()
            .map(|(name, ns)| (name.to_owned(), ns))
            .collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        top
    }
}

/// Why the capture could not start.
#[derive(Debug, thiserror::Error)]
pub enum SchedError {
    #[error(
        "the kernel refused perf_event_open for CPU {cpu} ({source}; kernel.perf_event_paranoid = {paranoid}). {}",
        denied_advice(.paranoid, seccomp_filtered())
    )]
    PerfDenied {
        cpu: usize,
        paranoid: String,
        source: io::Error,
    },
    #[error("perf_event_open for CPU {cpu} failed: {source}")]
    PerfOpen { cpu: usize, source: io::Error },
    #[error(
        "mapping the perf ring buffer for CPU {cpu} failed ({source}); the locked-memory allowance \
         (kernel.perf_event_mlock_kb, ulimit -l) is used up"
    )]
    PerfMmap { cpu: usize, source: io::Error },
    #[error("cannot read the threads of process {pid} ({source}): is it running?")]
    Target { pid: i32, source: io::Error },
    #[error(
        "attaching to process {pid} ran out of file descriptors after {attached} threads \
         (one per thread and CPU, {cpus} CPUs, even with the soft RLIMIT_NOFILE raised to the \
         hard limit): raise the hard limit (`ulimit -Hn`, LimitNOFILE=) or record it from its start \
         with `corelanes record -- CMD`, which needs one per CPU"
    )]
    TooManyThreads {
        pid: i32,
        attached: usize,
        cpus: usize,
    },
    #[error("{}", wide_denied(.paranoid, seccomp_filtered(), .cpu))]
    WideDenied {
        cpu: usize,
        paranoid: String,
        source: io::Error,
    },
    #[error(
        "--system-wide needs the perf scheduler capture (it reads the kernel's CPU-wide switch \
         records), not --sched {0}"
    )]
    WideNeedsPerf(SchedMode),
    #[error("could not start the scheduler capture thread: {0}")]
    Thread(io::Error),
}

/// What to do about a refused `perf_event_open`, given the paranoid level
/// and whether this process runs under a seccomp filter. At ≤ 2 the level
/// allows it, so advising 2 would be advice to change nothing.
fn denied_advice(paranoid: &str, filtered: bool) -> String {
    let allowed_by_level = paranoid.parse::<i32>().is_ok_and(|p| p <= 2);
    let filter = if filtered {
        "; this process does run under a seccomp filter"
    } else {
        ""
    };
    if allowed_by_level {
        format!(
            "That level allows it, so something else refused: most likely a container's seccomp policy \
             (Docker's default profile answers perf_event_open with EPERM){filter}. Run outside the \
             container or with a seccomp profile that allows perf_event_open"
        )
    } else {
        format!(
            "Allow it with `sudo sysctl kernel.perf_event_paranoid=2` or give the program CAP_PERFMON{}",
            if filtered {
                "; this process also runs under a seccomp filter (a container's policy?), which may refuse it too"
            } else {
                ""
            }
        )
    }
}

/// Why a CPU-wide event was refused, and what to do, in one sentence.
/// The kernel's error is the `source`, which the CLI prints after it.
fn wide_denied(paranoid: &str, filtered: bool, cpu: &usize) -> String {
    let allowed_by_level = paranoid.parse::<i32>().is_ok_and(|p| p <= 0);
    if allowed_by_level {
        format!(
            "--system-wide was refused although kernel.perf_event_paranoid = {paranoid} allows it \
             (CPU-wide perf_event_open on CPU {cpu}), most likely by a container's \
             seccomp policy{}: run outside the container or with a profile that allows perf_event_open",
            if filtered {
                ", and this process does run under a seccomp filter"
            } else {
                ""
            }
        )
    } else {
        format!(
            "--system-wide needs CAP_PERFMON or root, or `sudo sysctl kernel.perf_event_paranoid=0` \
             (it is {paranoid} here, and the kernel refused a CPU-wide perf_event_open on CPU {cpu})"
        )
    }
}

/// Checks, before anything runs, that a system-wide capture (`--system-wide`)
/// can start with `mode` on `cpus` (empty: this thread's CPUs): opens one
/// CPU-wide event and closes it.
pub fn check_system_wide(mode: SchedMode, cpus: &[usize]) -> Result<(), SchedError> {
    if !matches!(mode, SchedMode::Auto | SchedMode::Perf) {
        return Err(SchedError::WideNeedsPerf(mode));
    }
    let cpu = match cpus.first() {
        Some(&cpu) => cpu,
        None => sys::affinity_of_current_thread()
            .unwrap_or_default()
            .first()
            .copied()
            .unwrap_or(0),
    };
    perf::check_system_wide(cpu)
}

/// Whether a seccomp filter applies to this process (`Seccomp: 2` in
/// /proc/self/status); filters are inherited and never lifted.
fn seccomp_filtered() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status.lines().any(|l| {
            l.split_once(':')
                .is_some_and(|(k, v)| k == "Seccomp" && v.trim() == "2")
        })
    })
}

/// CI's word on perf here, for tests: `CORELANES_REQUIRE_PERF=1` where perf
/// must open (a refusal fails instead of skipping), `CORELANES_EXPECT_PERF_REFUSED=1`
/// where it must be refused (the fallback is what is tested; perf opening
/// means the refusal, e.g. a seccomp filter, is not in place).
pub const REQUIRE_PERF: &str = "CORELANES_REQUIRE_PERF";
pub const EXPECT_PERF_REFUSED: &str = "CORELANES_EXPECT_PERF_REFUSED";

fn env_is_set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| v == "1")
}

/// For tests: panics where perf opened (`refusal` = None) or was refused
/// against what [`REQUIRE_PERF`] / [`EXPECT_PERF_REFUSED`] say.
pub fn check_perf_against_env(refusal: Option<&str>) {
    match refusal {
        Some(why) if env_is_set(REQUIRE_PERF) => {
            panic!("{REQUIRE_PERF}=1, but perf was refused: {why}")
        }
        None if env_is_set(EXPECT_PERF_REFUSED) => panic!(
            "{EXPECT_PERF_REFUSED}=1, but perf_event_open worked: the refusal meant to be tested is not in place"
        ),
        _ => {}
    }
}

/// For tests whose checks need the perf source: whether they apply here.
/// Where perf was refused they do not, and this says `SKIPPED` on the
/// terminal itself (past the test harness's capture, so a skip is seen in
/// the summary, not mistaken for a pass); with [`REQUIRE_PERF`] it fails.
pub fn perf_checks_apply(refusal: Option<&str>) -> bool {
    check_perf_against_env(refusal);
    let Some(why) = refusal else {
        return true;
    };
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    let _ = writeln!(
        io::stderr(),
        "SKIPPED {test}: its perf checks did not run, perf was refused ({why})"
    );
    false
}

/// Time covered by both lists of intervals (each sorted and non-overlapping).
pub fn overlap_ns(a: &[(u64, u64)], b: &[(u64, u64)]) -> u64 {
    let (mut i, mut j, mut total) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        let lo = a[i].0.max(b[j].0);
        let hi = a[i].1.min(b[j].1);
        total += hi.saturating_sub(lo);
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    total
}

/// A worker as it registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Registered {
    pub index: usize,
    pub tid: i32,
    pub registered_ns: u64,
    /// procfs only: the worker's own first sample.
    pub first_sample: Option<procfs::Sample>,
    /// Its slices come from sampling /proc: the capture's source is procfs,
    /// or it is perf but this thread got no events (past the open-file limit).
    pub sampled: bool,
}

#[derive(Debug, Default)]
struct Workers {
    list: Vec<Registered>,
    /// Index in `list` by tid (a program may have thousands of threads).
    by_tid: HashMap<i32, usize>,
}

impl Workers {
    fn push(&mut self, r: Registered) {
        self.by_tid.insert(r.tid, self.list.len());
        self.list.push(r);
    }
}

/// The workers registered so far, shared with the capture thread.
#[derive(Debug, Default)]
pub struct Registry {
    workers: Mutex<Workers>,
    /// Names of discovered threads (another program's), by tid.
    /// Names of discovered threads (another program's), by tid, with the
    /// time each was taken: rings are read one CPU after another, so a
    /// thread's `comm` records may arrive out of order, and the latest wins.
    names: Mutex<HashMap<i32, (String, u64)>>,
    /// How many times the perf drain thread has read every ring.
    drains: AtomicU64,
    /// Threads renamed (at exec, or prctl) since [`Registry::renamed`] was last called.
    renamed: Mutex<Vec<i32>>,
    /// The run's origin once known ([`SchedCapture::stream`]), else 0: the
    /// /proc sampler totals what it forgets relative to it.
    origin_ns: AtomicU64,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, Workers> {
        self.workers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn add(&self, r: Registered) {
        self.lock().push(r);
    }

    pub fn snapshot(&self) -> Vec<Registered> {
        self.lock().list.clone()
    }

    /// Another program's thread `tid`, seen in a record (or, `sampled`, in
    /// /proc) at `time_ns`: registered with the next index the first time
    /// (named from `/proc/TID/comm` while it lives), renamed when a record
    /// carries a newer `comm`.
    pub fn discovered(&self, tid: i32, time_ns: u64, comm: Option<String>, sampled: bool) {
        if tid <= 0 {
            return; // the idle task: records of no thread of ours
        }
        let mut workers = self.lock();
        let new = !workers.by_tid.contains_key(&tid);
        if new {
            let index = workers.list.len();
            workers.push(Registered {
                index,
                tid,
                registered_ns: time_ns,
                first_sample: None,
                sampled,
            });
        }
        drop(workers);
        let name = comm.or_else(|| {
            new.then(|| std::fs::read_to_string(format!("/proc/{tid}/comm")).ok())
                .flatten()
                .map(|n| n.trim_end().to_owned())
        });
        let Some(name) = name else { return };
        let mut names = self.names.lock().unwrap_or_else(PoisonError::into_inner);
        let renamed = match names.get(&tid) {
            Some((_, at)) if *at > time_ns => return, // an older name
            Some((old, _)) => *old != name,
            None => false,
        };
        names.insert(tid, (name, time_ns));
        drop(names);
        if renamed {
            self.renamed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(tid);
        }
    }

    /// The registered threads renamed since the last call (a program that
    /// execs another takes its name), so that what shows them can follow.
    pub fn renamed(&self) -> Vec<Registered> {
        let tids =
            std::mem::take(&mut *self.renamed.lock().unwrap_or_else(PoisonError::into_inner));
        let workers = self.lock();
        tids.iter()
            .filter_map(|tid| workers.by_tid.get(tid).map(|&i| workers.list[i]))
            .collect()
    }

    /// Whether thread `tid` is registered.
    pub fn knows(&self, tid: i32) -> bool {
        self.lock().by_tid.contains_key(&tid)
    }

    /// Marks threads `tids` (registered or not yet) as sampled from /proc.
    fn mark_sampled(&self, tids: impl IntoIterator<Item = i32>, time_ns: u64) {
        let mut workers = self.lock();
        for tid in tids {
            match workers.by_tid.get(&tid) {
                Some(&i) => workers.list[i].sampled = true,
                None => {
                    drop(workers);
                    self.discovered(tid, time_ns, None, true);
                    workers = self.lock();
                }
            }
        }
    }

    /// The run's origin (absolute ns), once the capture was told it.
    fn origin(&self) -> Option<u64> {
        Some(self.origin_ns.load(Ordering::Acquire)).filter(|&o| o > 0)
    }

    /// The perf drain thread read every ring once more.
    fn drained(&self) {
        self.drains.fetch_add(1, Ordering::Release);
    }

    /// How many times the perf drain thread has read every ring.
    fn drains(&self) -> u64 {
        self.drains.load(Ordering::Acquire)
    }

    /// The name of discovered thread `tid`, if known.
    pub fn name(&self, tid: i32) -> Option<String> {
        self.names
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&tid)
            .map(|(name, _)| name.clone())
    }

    /// Registrations after the first `*seen`; advances `*seen`.
    pub fn since(&self, seen: &mut usize) -> Vec<Registered> {
        let all = &self.lock().list;
        let new = all.get(*seen..).unwrap_or_default().to_vec();
        *seen = all.len();
        new
    }
}

/// How many threads a report of `workers` has: one per index up to the largest.
fn thread_count(workers: &[Registered]) -> usize {
    workers.iter().map(|w| w.index + 1).max().unwrap_or(0)
}

/// Adds the slices and switch counts of threads sampled from /proc.
fn add_sampled(sampled: Vec<procfs::Sampled>, origin_ns: u64, report: &mut SchedReport) {
    for sampled in sampled {
        sampled
            .track
            .slices(sampled.index, origin_ns, &mut report.slices);
        if report.per_thread.len() <= sampled.index {
            report
                .per_thread
                .resize(sampled.index + 1, ThreadSched::default());
        }
        // The pieces it forgot are no slices here: their totals come now,
        // the kept slices' with every other thread's at the end.
        let forgotten = sampled.track.forgotten(origin_ns);
        let t = &mut report.per_thread[sampled.index];
        t.running_ns += forgotten.running_ns;
        t.runnable_ns += forgotten.runnable_ns;
        t.blocked_ns += forgotten.blocked_ns;
        t.migrations += forgotten.migrations;
        t.switches_out_blocked += sampled.switches.0;
        t.switches_out_preempted += sampled.switches.1;
        let dropped = &mut report.dropped;
        dropped.items += sampled.track.dropped.items;
        dropped.before_ns = dropped.before_ns.max(sampled.track.dropped.before_ns);
    }
}

/// Why `sampled` of `threads` threads came from /proc, and what to do, in one sentence.
fn shortfall_note(short: &perf::Shortfall, sampled: usize, threads: usize, cpus: usize) -> String {
    // One event per thread and CPU, and room for the rest of the program.
    let needed = (threads * cpus + 256).next_multiple_of(1024);
    format!(
        "{sampled} of {threads} threads were sampled from /proc (coarse: edges to a millisecond or \
         more) instead of recorded by perf, because the open-file limit of {} allowed perf events \
         for only {} threads on {cpus} CPUs: raise it (`ulimit -n {needed}` before starting \
         corelanes, or LimitNOFILE=) for exact slices of every thread.",
        short.limit, short.attached
    )
}

const PROCFS_NOTE: &str = "Scheduler slices are sampled from /proc at about 1 kHz: \
     edges are placed to about a millisecond and switches shorter than that are not seen.";

const PERF_HINT: &str = "The perf source gives exact slices where kernel.perf_event_paranoid ≤ 2 \
     (`sudo sysctl kernel.perf_event_paranoid=2`) or with CAP_PERFMON.";

enum Backend {
    /// With the sampler of the threads perf could not take, if any.
    Perf(perf::PerfCapture, Option<procfs::ProcfsCapture>),
    Procfs(procfs::ProcfsCapture),
    Off,
}

enum State {
    Capturing(Backend),
    Finished(SchedReport),
}

/// A running capture of the workers' scheduling. Share it in an `Arc`.
pub struct SchedCapture {
    source: SchedSource,
    note: Option<String>,
    system_wide: bool,
    registry: Arc<Registry>,
    state: Mutex<State>,
    /// Perf attached to only some threads: the rest are sampled from /proc.
    shortfall: Option<perf::Shortfall>,
    /// CPUs recorded (for the note on a shortfall).
    cpus: usize,
    /// With [`perf::Target::Workers`], what each worker watches itself with.
    adopter: Option<perf::Adopter>,
    /// Threads seen in /proc but not yet registered, with the drain count
    /// then (see [`SchedCapture::found_in_proc`]).
    pending: Mutex<HashMap<i32, u64>>,
}

impl fmt::Debug for SchedCapture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchedCapture")
            .field("source", &self.source)
            .field("note", &self.note)
            .finish_non_exhaustive()
    }
}

impl SchedCapture {
    /// Starts capturing. Call on the run's controller thread BEFORE it spawns
    /// the workers: perf events are opened on the calling thread with
    /// `inherit = 1`, one per CPU in `cpus` (empty: the CPUs this thread may
    /// use), so the workers spawned afterwards carry them. Workers must only
    /// run on CPUs in `cpus`, or their switches there are not seen.
    ///
    /// `Auto` tries perf and falls back to procfs (with a `note` saying why);
    /// `Perf` returns the error instead; `Off` captures nothing.
    pub fn start(mode: SchedMode, cpus: &[usize]) -> Result<Self, SchedError> {
        Self::start_for(mode, cpus, perf::Target::Own, false)
    }

    /// As [`SchedCapture::start`], for `target`. Another program's threads
    /// are registered by the capture itself: those that exist now (attach:
    /// in tid order; launch: the process), then, with perf, each as it first
    /// appears in the records. The /proc fallback samples only the threads
    /// registered: the caller registers the others as it finds them
    /// ([`Registry::discovered`]).
    ///
    /// `system_wide` (only ever when the user asks: never because the process
    /// happens to be privileged) also records every other task's switches on
    /// `cpus`, for [`SchedReport::others`]. It needs the perf source and
    /// CPU-wide events: `Auto` does not fall back then, a refusal is returned.
    pub fn start_for(
        mode: SchedMode,
        cpus: &[usize],
        target: perf::Target,
        system_wide: bool,
    ) -> Result<Self, SchedError> {
        Self::start_within(mode, cpus, target, system_wide, Limits::default())
    }

    /// As [`SchedCapture::start_for`], keeping at most `limits` of raw data
    /// (tests lower them to reach a long run's behaviour in a short one).
    pub fn start_within(
        mode: SchedMode,
        cpus: &[usize],
        target: perf::Target,
        system_wide: bool,
        limits: Limits,
    ) -> Result<Self, SchedError> {
        if system_wide && !matches!(mode, SchedMode::Auto | SchedMode::Perf) {
            return Err(SchedError::WideNeedsPerf(mode));
        }
        // Asked for perf alone, a thread perf cannot take fails the attach.
        let spill = mode == SchedMode::Auto;
        let mode = if system_wide { SchedMode::Perf } else { mode };
        let registry = Arc::new(Registry::default());
        let now = sys::monotonic_ns();
        match target {
            perf::Target::Own | perf::Target::Workers => {}
            perf::Target::Launch(pid) => registry.discovered(pid, now, None, false),
            perf::Target::Attach(pid) => {
                let tids =
                    perf::threads_of(pid).map_err(|e| SchedError::Target { pid, source: e })?;
                for tid in tids {
                    registry.discovered(tid, now, None, false);
                }
            }
        }
        let all_cpus;
        let cpus = if cpus.is_empty() {
            all_cpus = sys::affinity_of_current_thread().unwrap_or_default();
            &all_cpus
        } else {
            cpus
        };
        let mut shortfall = None;
        let sample_all = |registry: &Arc<Registry>| {
            registry.mark_sampled(registry.snapshot().iter().map(|w| w.tid), now);
            procfs::ProcfsCapture::start(registry.clone(), limits)
        };
        let (backend, source, note) = match mode {
            SchedMode::Off => (Backend::Off, SchedSource::Off, None),
            SchedMode::Procfs => (
                Backend::Procfs(sample_all(&registry)?),
                SchedSource::Procfs,
                Some(format!("{PROCFS_NOTE} {PERF_HINT}")),
            ),
            SchedMode::Perf | SchedMode::Auto => match perf::PerfCapture::start_for(
                cpus,
                registry.clone(),
                target,
                system_wide,
                spill,
                limits,
            ) {
                Ok(p) if p.shortfall().tids.is_empty() => {
                    (Backend::Perf(p, None), SchedSource::Perf, None)
                }
                // Past the open-file limit: /proc sampling for the rest.
                Ok(p) => {
                    registry.mark_sampled(p.shortfall().tids.iter().copied(), now);
                    let sampler = procfs::ProcfsCapture::start(registry.clone(), limits)?;
                    let short = p.shortfall().clone();
                    let threads = registry.snapshot().len();
                    let note = shortfall_note(&short, short.tids.len(), threads, cpus.len());
                    shortfall = Some(short);
                    (
                        Backend::Perf(p, Some(sampler)),
                        SchedSource::Perf,
                        Some(note),
                    )
                }
                Err(e) if mode == SchedMode::Perf => return Err(e),
                Err(e) => (
                    Backend::Procfs(sample_all(&registry)?),
                    SchedSource::Procfs,
                    Some(match e {
                        // The message already says how to allow it.
                        SchedError::PerfDenied { .. } => {
                            format!("Exact capture is off: {e}. {PROCFS_NOTE}")
                        }
                        _ => format!("Exact capture is off: {e}. {PROCFS_NOTE} {PERF_HINT}"),
                    }),
                ),
            },
        };
        let adopter = match &backend {
            Backend::Perf(p, _) => p.adopter(),
            _ => None,
        };
        Ok(Self {
            source,
            note,
            system_wide,
            registry,
            state: Mutex::new(State::Capturing(backend)),
            shortfall,
            cpus: cpus.len(),
            adopter,
            pending: Mutex::default(),
        })
    }

    pub fn source(&self) -> SchedSource {
        self.source
    }

    /// Which source is active and why, and how to enable the exact one.
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// The threads registered so far (another program's: discovered), with
    /// their names where known.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Each worker calls this from its own thread once it runs, before its
    /// first task (`tid` = `sys::gettid()`). One short mutex push.
    /// (procfs: plus one read of the thread's own schedstat, a few µs.)
    /// With one event per worker ([`perf::Target::Workers`]) it opens the
    /// thread's event first; if that fails, the error says why the thread's
    /// switches go unseen (it is registered all the same).
    pub fn register_worker(&self, index: usize, tid: i32) -> Result<(), String> {
        let first_sample = match self.source {
            SchedSource::Procfs if tid == sys::gettid() => procfs::own_sample(),
            _ => None,
        };
        let worker = Registered {
            index,
            tid,
            registered_ns: sys::monotonic_ns(),
            first_sample,
            sampled: self.source == SchedSource::Procfs,
        };
        let Some(adopter) = &self.adopter else {
            self.registry.add(worker);
            return Ok(());
        };
        adopter.register(worker).map_err(|e| {
            self.registry.add(worker);
            format!(
                "its perf event could not be opened ({}): its kernel lane is inferred, not recorded",
                e.source
            )
        })
    }

    /// Whether some threads are sampled from /proc, which sees no new
    /// thread by itself: the caller then lists the program's threads now and
    /// then and hands them to [`SchedCapture::found_in_proc`].
    pub fn samples_proc(&self) -> bool {
        self.source == SchedSource::Procfs || self.shortfall.is_some()
    }

    /// Threads of the program listed in /proc at `time_ns`, with their
    /// current `comm`. New ones are sampled from then on, unless perf covers
    /// them: a thread started by one with perf events inherits them, and its
    /// fork record registers it at the next drain of the rings. So with perf
    /// running a new thread is taken for sampling only once two drains have
    /// passed since it was first listed (the second began after the listing).
    pub fn found_in_proc(&self, threads: Vec<(i32, Option<String>)>, time_ns: u64) {
        let perf_too = self.source == SchedSource::Perf;
        let drains = self.registry.drains();
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let mut listed = std::collections::HashSet::with_capacity(threads.len());
        for (tid, comm) in threads {
            listed.insert(tid);
            if self.registry.knows(tid) {
                pending.remove(&tid);
                self.registry.discovered(tid, time_ns, comm, true);
                continue;
            }
            let since = *pending.entry(tid).or_insert(drains);
            if !perf_too || drains >= since + 2 {
                pending.remove(&tid);
                self.registry.discovered(tid, time_ns, comm, true);
            }
        }
        // Those gone before they were taken.
        pending.retain(|tid, _| listed.contains(tid));
    }

    /// Streams the workers' slices to `sink` as the capture builds them,
    /// timed relative to `origin_ns`. Only the perf source streams: sampled
    /// slices are re-labelled after the fact, so they come whole at the end.
    /// From now on every source bounds its raw data (see [`Limits`]): what
    /// it forgets is totalled relative to `origin_ns`.
    pub fn stream(&self, origin_ns: u64, sink: live::Sink) {
        self.registry.origin_ns.store(origin_ns, Ordering::Release);
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let State::Capturing(Backend::Perf(capture, _)) = &*state {
            capture.stream(origin_ns, sink);
        }
    }

    /// Call after all workers have been joined: stops the capture, drains it
    /// and builds the slices, timed relative to `origin_ns` (the run's start,
    /// taken after the capture was opened so that opening is not in the run).
    /// Idempotent: later calls return the same report.
    pub fn finish(&self, origin_ns: u64) -> SchedReport {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let backend = match std::mem::replace(&mut *state, State::Capturing(Backend::Off)) {
            State::Finished(report) => {
                *state = State::Finished(report.clone());
                return report;
            }
            State::Capturing(backend) => backend,
        };
        let report = self.build(backend, origin_ns);
        *state = State::Finished(report.clone());
        report
    }

    fn build(&self, backend: Backend, origin_ns: u64) -> SchedReport {
        let workers = self.registry.snapshot();
        let threads = thread_count(&workers);
        let mut report = SchedReport {
            note: self.note.clone(),
            system_wide: self.system_wide,
            ..SchedReport::of_slices(
                self.source,
                Vec::new(),
                vec![ThreadSched::default(); threads],
            )
        };
        match backend {
            Backend::Off => return report,
            Backend::Perf(capture, sampler) => {
                let mut drained = capture.stop();
                let end_ns = sys::monotonic_ns();
                // Workers that watch themselves are registered by the drain
                // thread as it takes their rings: the last ones as it stopped.
                let workers = self.registry.snapshot();
                let threads = thread_count(&workers);
                report.per_thread.resize(threads, ThreadSched::default());
                report.lost_records = drained.lost;
                let late = drained.late;
                if let Some(mut per_thread) = drained.streamed.take() {
                    // Its slices were streamed, the last ones just now: the
                    // recording holds them. Only their totals come here.
                    per_thread.resize(threads.max(per_thread.len()), ThreadSched::default());
                    report.per_thread = per_thread;
                    report.streamed = true;
                }
                self.build_perf(&workers, drained, end_ns, origin_ns, &mut report);
                if let Some(sampler) = sampler {
                    add_sampled(sampler.stop(), origin_ns, &mut report);
                }
                if let Some(short) = &self.shortfall {
                    let sampled = workers.iter().filter(|w| w.sampled).count();
                    // Counted again: threads found later may have joined them.
                    report.note = Some(shortfall_note(short, sampled, workers.len(), self.cpus));
                }
                if late {
                    let lag = crate::metrics::human_ns(live::LAG_NS);
                    add_note(
                        &mut report.note,
                        &format!(
                            "Some of the kernel's switch records reached the capture more than {lag} late (the machine stalled it): a few slices near them may be off by that much."
                        ),
                    );
                }
                if report.lost_records > 0 {
                    let lost = format!(
                        "The kernel dropped {} scheduler records (ring buffer full): some slices are missing.",
                        report.lost_records
                    );
                    add_note(&mut report.note, &lost);
                }
            }
            Backend::Procfs(capture) => add_sampled(capture.stop(), origin_ns, &mut report),
        }
        report
            .slices
            .sort_by_key(|s| (s.thread, s.start_ns, s.end_ns));
        slices::add_totals(&report.slices, &mut report.per_thread);
        report
    }

    fn build_perf(
        &self,
        workers: &[Registered],
        drained: perf::Drained,
        end_ns: u64,
        origin_ns: u64,
        report: &mut SchedReport,
    ) {
        use slices::ThreadTrack;

        // Threads sampled from /proc have their slices from there.
        let mut tracks: TidMap<ThreadTrack> = workers
            .iter()
            .filter(|w| !w.sampled)
            .map(|w| {
                let track = ThreadTrack {
                    registered_ns: Some(w.registered_ns),
                    end_ns,
                    ..Default::default()
                };
                (w.tid, track)
            })
            .collect();
        for r in &drained.records {
            // Not a worker's (the controller, other threads) when no track.
            if let Some(track) = tracks.get_mut(&r.tid) {
                track.take(&r.record());
            }
        }
        let own: std::collections::HashSet<i32> = workers.iter().map(|w| w.tid).collect();
        let own_tid = |tid| own.contains(&tid);
        (report.others, report.others_before) =
            drained
                .others
                .finish(origin_ns, end_ns, &drained.names, &own_tid);
        report.raw_peak_bytes = drained.peak_bytes;
        report.capture_cpu_ns = Some(drained.cpu_ns);
        report.events_per_thread = Some(if self.adopter.is_some() { 1 } else { self.cpus });
        for w in workers {
            let Some(mut track) = tracks.remove(&w.tid) else {
                continue; // sampled, or registered twice with the same tid
            };
            // Records of different CPUs arrive ring by ring.
            track.events.sort_by_key(|e| e.time_ns);
            // `/proc/TID` names any thread, of this process or another program.
            track.alive_at_end = track.exit.is_none()
                && std::fs::exists(format!("/proc/{}", w.tid)).unwrap_or(false);
            // Streamed, the records went to the live builder, which did this.
            if !report.streamed && track.alive_at_end && track.events.is_empty() {
                track.quiet = procfs::still_state(w.tid);
            }
            let (preempted, blocked) =
                slices::build_thread(w.index, &track, origin_ns, &mut report.slices);
            let t = &mut report.per_thread[w.index];
            t.switches_out_preempted += preempted;
            t.switches_out_blocked += blocked;
        }
    }
}

#[cfg(test)]
mod tests {
    //! Real threads on real cores. The test machine may have only 2 cores,
    //! shared and noisy: every tolerance below says why it is safe there.

    use super::*;
    use std::thread;
    use std::time::Duration;

    /// The scenarios below pin busy threads to the machine's few cores; two
    /// of them at once would measure each other.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn serial() -> MutexGuard<'static, ()> {
        SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn allowed() -> Vec<usize> {
        sys::affinity_of_current_thread().expect("sched_getaffinity")
    }

    #[derive(Clone, Copy)]
    enum Job {
        /// Burn CPU until this much wall time has passed since the start.
        Spin(Duration),
        /// Sleep this many times for this long.
        Sleep(usize, Duration),
    }

    struct Done {
        /// The thread's own CLOCK_THREAD_CPUTIME_ID at its end.
        cpu_ns: u64,
        /// Each sleep as seen from the thread, relative to the origin.
        sleeps: Vec<(u64, u64)>,
    }

    /// Starts a capture, runs one thread per entry of `pins` (pinned there),
    /// joins them and finishes. `None` when perf is refused by the kernel
    /// (said as SKIPPED, or a failure where CI requires perf).
    fn run(mode: SchedMode, pins: &[usize], job: Job) -> Option<(SchedReport, Vec<Done>)> {
        run_within(mode, pins, job, None)
    }

    /// As [`run`]; with `limits`, the capture keeps that much raw data and
    /// is told the origin (its slices streamed nowhere), as a run's is.
    fn run_within(
        mode: SchedMode,
        pins: &[usize],
        job: Job,
        limits: Option<Limits>,
    ) -> Option<(SchedReport, Vec<Done>)> {
        let origin = sys::monotonic_ns();
        let within = limits.unwrap_or_default();
        let capture =
            match SchedCapture::start_within(mode, &allowed(), perf::Target::Own, false, within) {
                Ok(c) => Arc::new(c),
                Err(e @ SchedError::PerfDenied { .. }) => {
                    perf_checks_apply(Some(&e.to_string()));
                    return None;
                }
                Err(e) => panic!("capture did not start: {e}"),
            };
        if mode == SchedMode::Perf {
            perf_checks_apply(None);
        }
        if limits.is_some() {
            capture.stream(origin, Box::new(drop));
        }
        let expected = match mode {
            SchedMode::Procfs => SchedSource::Procfs,
            _ => SchedSource::Perf,
        };
        assert_eq!(capture.source(), expected);
        let handles: Vec<_> = pins
            .iter()
            .enumerate()
            .map(|(index, &core)| {
                let capture = capture.clone();
                thread::Builder::new()
                    .name(format!("sched-test-{index}"))
                    .spawn(move || {
                        assert!(core_affinity::set_for_current(core_affinity::CoreId {
                            id: core
                        }));
                        capture.register_worker(index, sys::gettid()).unwrap();
                        let mut sleeps = Vec::new();
                        match job {
                            Job::Spin(d) => {
                                let until = origin + d.as_nanos() as u64;
                                let mut x = 0u64;
                                while sys::monotonic_ns() < until {
                                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
                                }
                            }
                            Job::Sleep(n, d) => {
                                for _ in 0..n {
                                    let a = sys::monotonic_ns() - origin;
                                    thread::sleep(d);
                                    sleeps.push((a, sys::monotonic_ns() - origin));
                                }
                            }
                        }
                        Done {
                            cpu_ns: sys::thread_cpu_ns(),
                            sleeps,
                        }
                    })
                    .expect("spawn")
            })
            .collect();
        let done: Vec<Done> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let report = capture.finish(origin);
        // Idempotent, and the Arc is fine.
        assert_eq!(capture.finish(origin).slices.len(), report.slices.len());
        check_well_formed(&report, pins.len());
        Some((report, done))
    }

    /// Sorted by (thread, start); within a thread slices never overlap.
    fn check_well_formed(r: &SchedReport, threads: usize) {
        assert_eq!(r.per_thread.len(), threads);
        for w in r.slices.windows(2) {
            assert!((w[0].thread, w[0].start_ns) <= (w[1].thread, w[1].start_ns));
            if w[0].thread == w[1].thread {
                assert!(
                    w[0].end_ns <= w[1].start_ns,
                    "{:?} overlaps {:?}",
                    w[0],
                    w[1]
                );
            }
        }
        assert!(r.slices.iter().all(|s| s.end_ns > s.start_ns));
    }

    fn spans(r: &SchedReport, keep: impl Fn(&SchedSlice) -> bool) -> Vec<(u64, u64)> {
        let mut v: Vec<_> = r
            .slices
            .iter()
            .filter(|s| keep(s))
            .map(|s| (s.start_ns, s.end_ns))
            .collect();
        v.sort_unstable();
        v
    }

    fn ms(ns: u64) -> f64 {
        ns as f64 / 1e6
    }

    /// Two CPU-bound threads pinned to one core for 300 ms. `cpu_tolerance`:
    /// how far each thread's running time may be from its CPU clock, where
    /// the two are independent readings.
    fn same_core(mode: SchedMode, cpu_tolerance: Option<f64>, max_overlap: f64) {
        let _serial = serial();
        let core = *allowed().last().unwrap();
        let Some((r, done)) = run(mode, &[core, core], Job::Spin(Duration::from_millis(300)))
        else {
            return;
        };
        for (i, (t, d)) in r.per_thread.iter().zip(&done).enumerate() {
            let err = (t.running_ns as f64 - d.cpu_ns as f64) / d.cpu_ns as f64;
            eprintln!(
                "{mode} same core, thread {i}: running {:.1} ms vs thread CPU clock {:.1} ms ({:+.2} %), \
                 runnable {:.1} ms, blocked {:.1} ms, preempted {}, blocked switches {}, lost {}",
                ms(t.running_ns),
                ms(d.cpu_ns),
                err * 100.0,
                ms(t.runnable_ns),
                ms(t.blocked_ns),
                t.switches_out_preempted,
                t.switches_out_blocked,
                r.lost_records
            );
            if let Some(tolerance) = cpu_tolerance {
                assert!(
                    err.abs() <= tolerance,
                    "thread {i}: running {} ns vs CPU {} ns",
                    t.running_ns,
                    d.cpu_ns
                );
            }
            // Sharing one core for 300 ms means waiting for it, many times
            // (a base slice is a few ms).
            assert!(t.runnable_ns > 0, "thread {i} never waited: {t:?}");
            assert!(
                t.switches_out_preempted > 0,
                "thread {i} never preempted: {t:?}"
            );
        }
        // One core runs one thread at a time.
        let on_core = |th: usize| {
            spans(&r, |s| {
                s.thread() == th && s.core() == core && s.state == SliceState::Running
            })
        };
        let (a, b) = (on_core(0), on_core(1));
        let both = overlap_ns(&a, &b);
        let least = r.per_thread.iter().map(|t| t.running_ns).min().unwrap();
        eprintln!(
            "{mode} same core: running slices on core {core} overlap {:.3} ms ({} + {} slices)",
            ms(both),
            a.len(),
            b.len()
        );
        assert!(both as f64 <= max_overlap * least as f64);
    }

    /// Two CPU-bound threads on two cores for 300 ms.
    fn two_cores(mode: SchedMode) {
        let _serial = serial();
        let cores = allowed();
        if cores.len() < 2 {
            eprintln!("skipping: only {} CPU allowed", cores.len());
            return;
        }
        let pins = [cores[0], cores[1]];
        let Some((r, _)) = run(mode, &pins, Job::Spin(Duration::from_millis(300))) else {
            return;
        };
        // How long each waited for a CPU while the other ran on it: on one
        // core about as long as they run; here only around the moment each
        // pinned itself. (Whether they then ran at the same instant depends
        // on other load, which can keep each core alternating with its own
        // strangers in step with the tick: not asserted.)
        let on = |th: usize, state: SliceState, core: usize| {
            spans(&r, |s| {
                s.thread() == th && s.state == state && s.core() == core
            })
        };
        let waited_for_each_other: u64 = (0..2)
            .flat_map(|th| cores.iter().map(move |&c| (th, c)))
            .map(|(th, c)| {
                overlap_ns(
                    &on(th, SliceState::Runnable, c),
                    &on(1 - th, SliceState::Running, c),
                )
            })
            .sum();
        let running: u64 = r.per_thread.iter().map(|t| t.running_ns).sum();
        eprintln!(
            "{mode} two cores: waited for each other {:.2} ms, running {:.1} ms",
            ms(waited_for_each_other),
            ms(running)
        );
        assert!(running > 0);
        assert!(
            waited_for_each_other as f64 <= 0.1 * running as f64,
            "{waited_for_each_other} ns"
        );
        for (th, &core) in pins.iter().enumerate() {
            let on_pin: u64 = r
                .slices
                .iter()
                .filter(|s| s.thread() == th && s.state == SliceState::Running && s.core() == core)
                .map(|s| s.end_ns - s.start_ns)
                .sum();
            // Only the moments before the thread pinned itself run elsewhere.
            assert!(on_pin as f64 >= 0.9 * r.per_thread[th].running_ns as f64);
        }
    }

    /// One thread sleeping 10 × 20 ms.
    fn sleeper(mode: SchedMode, min_cover: f64, min_switches: u64) {
        let _serial = serial();
        let core = allowed()[0];
        let Some((r, done)) = run(mode, &[core], Job::Sleep(10, Duration::from_millis(20))) else {
            return;
        };
        let blocked = spans(&r, |s| s.state == SliceState::Blocked);
        let slept: u64 = done[0].sleeps.iter().map(|(a, b)| b - a).sum();
        let covered = overlap_ns(&blocked, &done[0].sleeps);
        let t = &r.per_thread[0];
        eprintln!(
            "{mode} sleeper: blocked slices cover {:.1} of {:.1} ms asleep; running {:.2} ms, \
             runnable {:.2} ms, blocked switches {}",
            ms(covered),
            ms(slept),
            ms(t.running_ns),
            ms(t.runnable_ns),
            t.switches_out_blocked
        );
        // A sleep seen from user space also holds the syscall and the wake-up
        // latency (Runnable), a few µs normally, up to ms on a busy machine.
        assert!(covered as f64 >= min_cover * slept as f64);
        assert!(t.switches_out_blocked >= min_switches, "{t:?}");
        assert!(t.running_ns < slept / 4, "{t:?}");
    }

    // Perf: exact, so tight. Running vs the thread's CPU clock: both count the
    // same on-CPU time, up to the µs of the exit path after the last reading.
    #[test]
    fn perf_same_core_time_slices() {
        same_core(SchedMode::Perf, Some(0.05), 0.0);
    }

    #[test]
    fn perf_two_cores_in_parallel() {
        two_cores(SchedMode::Perf);
    }

    #[test]
    fn perf_sleeper_is_blocked() {
        sleeper(SchedMode::Perf, 0.8, 10);
    }

    // Procfs: its running time *is* the thread's CPU clock (schedstat's
    // first field), so comparing the two could not fail; the ignored test
    // `sched::procfs_slices_match_the_kernels_own_record` in
    // tests/integration checks it against `perf record`. Placement inside a
    // 1 ms interval is a guess once more than one switch falls in it, and
    // each thread is placed on its own: with a switch every ~2 ms (the
    // sampler's own wake-ups add preemptions) 1-16 % of the running time was
    // seen to overlap on a loaded 2-core VM; 25 % still tells it from two cores.
    #[test]
    fn procfs_same_core_time_slices() {
        same_core(SchedMode::Procfs, None, 0.25);
    }

    #[test]
    fn procfs_two_cores_in_parallel() {
        two_cores(SchedMode::Procfs);
    }

    /// A long run's /proc sampler (its window lowered to 50 ms) forgets its
    /// oldest pieces but not their time: each thread's running total is
    /// still its CPU clock, up to what it ran after the last sample (the
    /// sampler wakes every ms, later on a busy core). Without the forgotten
    /// pieces' totals it would be the last 50 ms of 300.
    #[test]
    fn procfs_forgets_old_pieces_but_not_their_time() {
        let _serial = serial();
        let core = *allowed().last().unwrap();
        let limits = Limits {
            window_ns: 50_000_000,
            ..Limits::default()
        };
        let job = Job::Spin(Duration::from_millis(300));
        let (r, done) = run_within(SchedMode::Procfs, &[core, core], job, Some(limits))
            .expect("procfs always runs");
        eprintln!("procfs forgot {:?}", r.dropped);
        assert!(r.dropped.any(), "nothing was forgotten");
        for (i, (t, d)) in r.per_thread.iter().zip(&done).enumerate() {
            eprintln!(
                "thread {i}: running {:.1} ms, CPU clock {:.1} ms",
                ms(t.running_ns),
                ms(d.cpu_ns)
            );
            // The thread reads its clock last, yet still runs a few µs after
            // (returning, exiting), which /proc's last reading may count.
            assert!(
                t.running_ns <= d.cpu_ns + 1_000_000,
                "thread {i}: {} vs {}",
                t.running_ns,
                d.cpu_ns
            );
            assert!(t.running_ns as f64 >= 0.9 * d.cpu_ns as f64, "thread {i}");
        }
    }

    #[test]
    fn procfs_sleeper_is_blocked() {
        // The switch counters are read when the sampler first sees the thread
        // (maybe already in its first sleep) and then every 8 ms: the first
        // and last sleeps may be missed.
        sleeper(SchedMode::Procfs, 0.7, 8);
    }

    /// Slices are streamed from the records read before the stream began
    /// too: a launched program runs from its release, a moment before its
    /// recorder asks for them (`record -- sleep 0.5` under load lost the
    /// sleep so, and showed only the running after it).
    #[test]
    fn records_read_before_the_stream_began_are_streamed() {
        let capture = match SchedCapture::start(SchedMode::Perf, &allowed()) {
            Ok(c) => Arc::new(c),
            Err(e @ SchedError::PerfDenied { .. }) => {
                perf_checks_apply(Some(&e.to_string()));
                return;
            }
            Err(e) => panic!("capture did not start: {e}"),
        };
        perf_checks_apply(None);
        let origin = sys::monotonic_ns();
        let worker = {
            let capture = capture.clone();
            thread::spawn(move || {
                capture.register_worker(0, sys::gettid()).unwrap();
                thread::sleep(Duration::from_millis(80));
            })
        };
        // The drain thread (every 10 ms) reads the sleep's switch-out meanwhile.
        thread::sleep(Duration::from_millis(40));
        let streamed = Arc::new(Mutex::new(Vec::new()));
        let sink = streamed.clone();
        capture.stream(origin, Box::new(move |s| sink.lock().unwrap().extend(s)));
        worker.join().unwrap();
        capture.finish(origin);
        let blocked: u64 = streamed
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.state == SliceState::Blocked)
            .map(|s| s.end_ns - s.start_ns)
            .sum();
        assert!(
            blocked >= 70_000_000,
            "blocked {blocked} ns of an 80 ms sleep"
        );
    }

    #[test]
    fn off_captures_nothing_but_sizes_per_thread() {
        let c = SchedCapture::start(SchedMode::Off, &[]).unwrap();
        assert_eq!(c.source(), SchedSource::Off);
        c.register_worker(2, sys::gettid()).unwrap();
        let r = c.finish(0);
        assert_eq!(r.source, SchedSource::Off);
        assert!(r.slices.is_empty());
        assert_eq!(r.per_thread.len(), 3);
    }

    #[test]
    fn auto_picks_a_source_and_explains_procfs() {
        let c = SchedCapture::start(SchedMode::Auto, &[]).unwrap();
        match c.source() {
            SchedSource::Perf => {
                check_perf_against_env(None);
                assert!(c.note().is_none());
            }
            SchedSource::Procfs => {
                let note = c.note().unwrap();
                check_perf_against_env(Some(note));
                assert!(note.contains("1 kHz"), "{note}");
                // The cause it names fits this machine's paranoid level.
                if perf::paranoid_level().parse::<i32>().is_ok_and(|p| p <= 2) {
                    assert!(note.contains("seccomp"), "{note}");
                    assert!(!note.contains("sysctl"), "{note}");
                } else {
                    assert!(
                        note.contains("sysctl kernel.perf_event_paranoid=2"),
                        "{note}"
                    );
                }
            }
            SchedSource::Off => panic!("auto never turns capture off"),
        }
        drop(c); // dropping without finish stops the capture thread
    }

    #[test]
    fn a_refusal_names_the_likely_cause() {
        let seccomp = denied_advice("2", true);
        assert!(seccomp.contains("seccomp policy"), "{seccomp}");
        assert!(
            seccomp.contains("does run under a seccomp filter"),
            "{seccomp}"
        );
        assert!(
            !seccomp.contains("sysctl"),
            "at 2, setting 2 changes nothing: {seccomp}"
        );
        assert!(denied_advice("-1", false).contains("seccomp policy"));
        for level in ["3", "4", "unknown"] {
            let advice = denied_advice(level, false);
            assert!(
                advice.contains("sysctl kernel.perf_event_paranoid=2"),
                "{advice}"
            );
            assert!(!advice.contains("seccomp"), "{advice}");
        }
        assert!(denied_advice("3", true).contains("seccomp filter"));
    }

    #[test]
    fn the_latest_comm_names_a_thread_whatever_order_the_rings_are_read_in() {
        let r = Registry::default();
        // tid 1 << 30: no such thread, so nothing is read from /proc.
        let tid = 1 << 30;
        r.discovered(tid, 100, Some("sh".into()), false);
        assert!(r.renamed().is_empty(), "a new thread is not a rename");
        // exec'd env (CPU 0) and then sleep (CPU 1); CPU 1's ring read first.
        r.discovered(tid, 300, Some("sleep".into()), false);
        r.discovered(tid, 200, Some("env".into()), false);
        r.discovered(tid, 400, None, false); // a switch record names nothing
        assert_eq!(r.name(tid).as_deref(), Some("sleep"));
        let renamed = r.renamed();
        assert_eq!(renamed.len(), 1);
        assert_eq!((renamed[0].tid, renamed[0].index), (tid, 0));
        assert!(r.renamed().is_empty(), "told once");
    }

    #[test]
    fn overlap_counts_only_shared_time() {
        let a = [(0, 10), (20, 30), (40, 50)];
        let b = [(5, 25), (30, 40), (45, 60)];
        assert_eq!(overlap_ns(&a, &b), 5 + 5 + 5);
        assert_eq!(overlap_ns(&a, &[]), 0);
        assert_eq!(overlap_ns(&a, &a), 30);
    }

    #[test]
    fn mode_text_and_serde() {
        for m in SchedMode::ALL {
            assert_eq!(m.to_string().parse::<SchedMode>(), Ok(m));
        }
        assert_eq!("PROCFS".parse::<SchedMode>(), Ok(SchedMode::Procfs));
        assert!("ebpf".parse::<SchedMode>().is_err());
        assert_eq!(
            serde_json::to_string(&SchedMode::Procfs).unwrap(),
            "\"procfs\""
        );
        assert_eq!(
            serde_json::to_string(&SliceState::Runnable).unwrap(),
            "\"runnable\""
        );
        assert_eq!(
            serde_json::from_str::<SchedSource>("\"perf\"").unwrap(),
            SchedSource::Perf
        );
    }
}
