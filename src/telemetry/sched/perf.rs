//! The exact source: `perf_event_open` context-switch records.
//!
//! [`parse_wrapped`] turns raw ring bytes into records where they lie
//! (pure, tested with hand-made bytes); [`PerfCapture`] owns the per-CPU
//! rings and the thread that drains them every few milliseconds.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::live::{LiveSlices, Sink};
use super::slices::Others;
use super::{Limits, Registered, Registry, SchedError};
use crate::sys::perf::{OpenError, OpenStep, PerfSwitchRing, Watch};

const PERF_RECORD_LOST: u32 = 2;
const PERF_RECORD_COMM: u32 = 3;
const PERF_RECORD_EXIT: u32 = 4;
const PERF_RECORD_FORK: u32 = 7;
const PERF_RECORD_SWITCH: u32 = 14;
const PERF_RECORD_SWITCH_CPU_WIDE: u32 = 15;
const PERF_RECORD_MISC_SWITCH_OUT: u16 = 0x2000;
const PERF_RECORD_MISC_SWITCH_OUT_PREEMPT: u16 = 0x4000;

/// Size of the `sample_id` trailer for `TID | TIME | CPU`:
/// pid, tid (u32 each), time (u64), cpu, reserved (u32 each).
const SAMPLE_ID_LEN: usize = 24;

/// Ring sizes tried per CPU, largest first. A switch record is 32 bytes, so
/// 64 pages (256 KiB) hold 8192 records: drained every 10 ms (see
/// [`drain_interval`]) that is 800 000 records per second per CPU before
/// anything is lost. 64 pages on every CPU also stays inside the
/// kernel's unprivileged allowance (`perf_event_mlock_kb`, 516 KiB per CPU).
const RING_PAGES: [usize; 3] = [64, 16, 4];

/// How often the drain thread empties the rings: often enough that a ring
/// is at most half full at 200 000 records per second on one CPU (a thread
/// switching every 10 µs), rarely enough not to disturb the workers:
/// 10 ms with 64-page rings, about 1 ms with 4-page ones.
fn drain_interval(ring_bytes: usize) -> Duration {
    let half_ring_records = (ring_bytes / 32 / 2) as u64;
    Duration::from_micros(half_ring_records * 5)
        .clamp(Duration::from_millis(1), Duration::from_millis(10))
}

/// How long `stop` waits for the exit records of registered workers (the
/// kernel writes a thread's exit record slightly after `join` returns).
const EXIT_GRACE: Duration = Duration::from_millis(100);

/// What a record says happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    SwitchIn,
    SwitchOut {
        preempted: bool,
    },
    /// A thread was created (`tid` is the new thread).
    Fork,
    /// A thread exited (`tid` is the exiting thread).
    Exit,
    /// A thread took a new name (at `exec` or `prctl`), NUL-padded.
    Comm {
        name: [u8; 16],
    },
}

impl RecordKind {
    /// The name a `Comm` record carries.
    pub fn comm(&self) -> Option<String> {
        match self {
            RecordKind::Comm { name } => {
                let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
                Some(String::from_utf8_lossy(&name[..len]).into_owned())
            }
            _ => None,
        }
    }
}

/// One parsed record; `time_ns` is absolute `CLOCK_MONOTONIC`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PerfRecord {
    /// The process of `tid` (its thread group).
    pub pid: i32,
    pub tid: i32,
    pub cpu: u32,
    pub time_ns: u64,
    pub kind: RecordKind,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// [`parse_wrapped`] of bytes in one piece: what it must give for the
/// same bytes split anywhere.
#[cfg(test)]
pub fn parse_records(bytes: &[u8], out: &mut Vec<PerfRecord>) -> u64 {
    parse_prefix(bytes, out).0
}

/// Parses consecutive perf records of an event with `sample_id_all` and
/// `sample_type = TID | TIME | CPU`, where they lie in its ring: `first`,
/// then `second` past the ring's end (only a record that straddles the two
/// is copied, into `scratch`). Appends switch, fork and exit records to
/// `out` and returns the number of records the kernel reported lost.
/// Unknown record types are skipped; a malformed header ends parsing.
pub fn parse_wrapped(
    first: &[u8],
    second: &[u8],
    scratch: &mut Vec<u8>,
    out: &mut Vec<PerfRecord>,
) -> u64 {
    let (mut lost, used) = parse_prefix(first, out);
    let rest = &first[used..];
    if rest.is_empty() {
        return lost + parse_prefix(second, out).0;
    }
    // The size is in the header's last two bytes, which may lie past the end too.
    let header = |at: usize| {
        rest.get(at)
            .or_else(|| second.get(at - rest.len()))
            .copied()
    };
    let size = match (header(6), header(7)) {
        (Some(lo), Some(hi)) => usize::from(u16::from_ne_bytes([lo, hi])),
        _ => return lost,
    };
    if size <= rest.len() {
        return lost; // a malformed header, not a straddling record: parsing ends
    }
    let more = (size - rest.len()).min(second.len());
    scratch.clear();
    scratch.extend_from_slice(rest);
    scratch.extend_from_slice(&second[..more]);
    let (straddling, whole) = parse_prefix(scratch, out);
    lost += straddling;
    if whole == scratch.len() {
        lost += parse_prefix(&second[more..], out).0;
    }
    lost
}

/// Parses `bytes` as [`parse_wrapped`] does one piece, also returning how
/// many bytes of whole, well-formed records it parsed (where it stopped).
fn parse_prefix(bytes: &[u8], out: &mut Vec<PerfRecord>) -> (u64, usize) {
    let mut lost = 0;
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let kind = u32_at(bytes, at);
        let misc = u16_at(bytes, at + 4);
        let size = u16_at(bytes, at + 6) as usize;
        if size < 8 || at + size > bytes.len() {
            break;
        }
        let rec = &bytes[at..at + size];
        at += size;
        // The sample_id trailer ends every record.
        let trailer = size.checked_sub(SAMPLE_ID_LEN).filter(|&t| t >= 8);
        match kind {
            PERF_RECORD_SWITCH | PERF_RECORD_SWITCH_CPU_WIDE => {
                let min_body = if kind == PERF_RECORD_SWITCH { 8 } else { 16 };
                let Some(t) = trailer.filter(|&t| t >= min_body) else {
                    continue;
                };
                let kind = if misc & PERF_RECORD_MISC_SWITCH_OUT != 0 {
                    RecordKind::SwitchOut {
                        preempted: misc & PERF_RECORD_MISC_SWITCH_OUT_PREEMPT != 0,
                    }
                } else {
                    RecordKind::SwitchIn
                };
                out.push(PerfRecord {
                    pid: u32_at(rec, t) as i32,
                    tid: u32_at(rec, t + 4) as i32,
                    time_ns: u64_at(rec, t + 8),
                    cpu: u32_at(rec, t + 16),
                    kind,
                });
            }
            PERF_RECORD_FORK | PERF_RECORD_EXIT => {
                // Body: pid, ppid, tid, ptid (u32 each), time (u64).
                let Some(t) = trailer.filter(|&t| t >= 32) else {
                    continue;
                };
                out.push(PerfRecord {
                    pid: u32_at(rec, 8) as i32,
                    tid: u32_at(rec, 16) as i32,
                    time_ns: u64_at(rec, 24),
                    cpu: u32_at(rec, t + 16),
                    kind: if kind == PERF_RECORD_FORK {
                        RecordKind::Fork
                    } else {
                        RecordKind::Exit
                    },
                });
            }
            PERF_RECORD_COMM => {
                // Body: pid, tid (u32 each), comm (NUL-terminated, padded to 8 bytes).
                let Some(t) = trailer.filter(|&t| t > 16) else {
                    continue;
                };
                let mut name = [0u8; 16];
                let comm = &rec[16..t];
                let len = comm.len().min(name.len());
                name[..len].copy_from_slice(&comm[..len]);
                out.push(PerfRecord {
                    pid: u32_at(rec, 8) as i32,
                    tid: u32_at(rec, 12) as i32,
                    time_ns: u64_at(rec, t + 8),
                    cpu: u32_at(rec, t + 16),
                    kind: RecordKind::Comm { name },
                });
            }
            // Body: id (u64), lost (u64).
            PERF_RECORD_LOST if size >= 24 => lost += u64_at(rec, 16),
            _ => {}
        }
    }
    (lost, at)
}

/// A record as the live builder takes it, and as a capture that does not
/// stream keeps it for the complete report: 16 bytes instead of
/// [`PerfRecord`]'s 40, only what a worker's slices are built from (a run
/// at 60 000 switches a second reads 240 000 records a second, and on a VM
/// each fresh page costs microseconds to fault in). Names and process ids
/// are taken as the records are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kept {
    pub time_ns: u64,
    pub tid: i32,
    cpu: u16,
    kind: u8,
}

impl Kept {
    const IN: u8 = 0;
    const OUT: u8 = 1;
    const PREEMPTED: u8 = 2;
    const FORK: u8 = 3;
    const EXIT: u8 = 4;

    /// The part of `r` the report needs; `None` for a name record.
    pub fn of(r: &PerfRecord) -> Option<Kept> {
        let kind = match r.kind {
            RecordKind::SwitchIn => Self::IN,
            RecordKind::SwitchOut { preempted: false } => Self::OUT,
            RecordKind::SwitchOut { preempted: true } => Self::PREEMPTED,
            RecordKind::Fork => Self::FORK,
            RecordKind::Exit => Self::EXIT,
            RecordKind::Comm { .. } => return None,
        };
        Some(Kept {
            time_ns: r.time_ns,
            tid: r.tid,
            cpu: u16::try_from(r.cpu).unwrap_or(u16::MAX),
            kind,
        })
    }

    /// The record again, without its process id (0).
    pub fn record(&self) -> PerfRecord {
        let kind = match self.kind {
            Self::IN => RecordKind::SwitchIn,
            Self::OUT => RecordKind::SwitchOut { preempted: false },
            Self::PREEMPTED => RecordKind::SwitchOut { preempted: true },
            Self::FORK => RecordKind::Fork,
            _ => RecordKind::Exit,
        };
        PerfRecord {
            pid: 0,
            tid: self.tid,
            cpu: u32::from(self.cpu),
            time_ns: self.time_ns,
            kind,
        }
    }
}

/// Everything the drain thread collected.
#[derive(Debug, Default)]
pub struct Drained {
    /// Every record of the target's threads but names, unless the capture streams.
    pub records: Vec<Kept>,
    pub lost: u64,
    /// System-wide capture only: what every task on the CPUs did, whoever
    /// it belongs to, from the CPU-wide switch records
    /// (`PERF_RECORD_SWITCH_CPU_WIDE`), the oldest forgotten into totals.
    pub others: Others,
    /// System-wide capture only: each task seen in `others`, named when it
    /// was first seen (`/proc/TID/comm`, or its `comm` record).
    pub names: HashMap<i32, String>,
    /// A capture that streams its slices keeps no records (`records` is
    /// then empty): the per-thread totals of everything it streamed.
    pub streamed: Option<Vec<super::ThreadSched>>,
    /// A worker's record came in after the live builder had passed its
    /// time (more than `live::LAG_NS` late): slices near it may be off.
    pub late: bool,
    /// The most bytes of records (and other tasks' stretches) held between
    /// two reads of the rings.
    pub peak_bytes: usize,
    /// The drain thread's CPU time, all of its work included.
    pub cpu_ns: u64,
}

/// Running capture: the rings live in the drain thread.
pub struct PerfCapture {
    /// Set, with the drain thread unparked, to stop it: a parked wait costs
    /// nothing between drains, where a channel's timed receive spins and
    /// yields first, about 10 µs of CPU every drain.
    stop: Arc<AtomicBool>,
    live_tx: Sender<(u64, Sink)>,
    handle: Option<JoinHandle<Drained>>,
    shortfall: Shortfall,
    /// Where each worker's own ring goes, with [`Target::Workers`].
    adopt: Option<Sender<(PerfSwitchRing, Registered)>>,
}

fn open_error(e: OpenError) -> SchedError {
    let denied = matches!(
        e.source.raw_os_error(),
        Some(libc::EACCES) | Some(libc::EPERM)
    );
    match e.step {
        OpenStep::Open if denied => SchedError::PerfDenied {
            cpu: e.cpu,
            paranoid: paranoid_level(),
            source: e.source,
        },
        OpenStep::Open => SchedError::PerfOpen {
            cpu: e.cpu,
            source: e.source,
        },
        OpenStep::Mmap => SchedError::PerfMmap {
            cpu: e.cpu,
            source: e.source,
        },
    }
}

/// As [`open_error`], for a CPU-wide event: a refusal says what the
/// system-wide capture needs.
fn wide_open_error(e: OpenError) -> SchedError {
    match open_error(e) {
        SchedError::PerfDenied {
            cpu,
            paranoid,
            source,
        } => SchedError::WideDenied {
            cpu,
            paranoid,
            source,
        },
        other => other,
    }
}

/// `kernel.perf_event_paranoid`, for messages.
pub fn paranoid_level() -> String {
    std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Whose scheduling a capture records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The calling thread's future threads: the run's workers, which register.
    /// They inherit one event per CPU.
    Own,
    /// The run's workers, each watching itself from its start
    /// ([`Adopter::register`]): one event per thread whatever the CPU
    /// count, one ring per thread.
    Workers,
    /// A process stopped before `exec` (see [`crate::sys::process`]), from
    /// its `exec` on, with every thread and child process it starts.
    Launch(i32),
    /// A running process: each of its threads now and those they start.
    Attach(i32),
}

impl Target {
    /// Whether the capture finds the threads itself (from the records),
    /// rather than the threads registering.
    fn discovers(self) -> bool {
        !matches!(self, Target::Own | Target::Workers)
    }
}

/// The threads of process `pid` now (`/proc/PID/task`), ascending.
pub fn threads_of(pid: i32) -> std::io::Result<Vec<i32>> {
    let mut tids: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/task"))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable();
    Ok(tids)
}

/// Descriptors an attach leaves for everything else: the /proc sampling of
/// the threads past the limit, the files written at the end, the window.
const FD_RESERVE: u64 = 64;

/// An attached process's threads that got no perf events because the
/// open-file limit ran out: they are sampled from /proc instead.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shortfall {
    /// The threads left without events, as listed at attach time.
    pub tids: Vec<i32>,
    /// How many threads got events.
    pub attached: usize,
    /// The soft open-file limit (`ulimit -n`) then.
    pub limit: u64,
}

/// Opens the rings for `target`, one per CPU. Attaching opens one event per
/// existing thread and CPU, all of a CPU's writing into one ring, and lists
/// the threads again until no new one appeared meanwhile (a thread started
/// before its creator's events opened inherits none). With `spill`, threads
/// past what the open-file limit allows (less [`FD_RESERVE`]) are left out,
/// the busiest kept, and named in the [`Shortfall`]; without it they fail the attach.
fn open_rings(
    cpus: &[usize],
    target: Target,
    spill: bool,
) -> Result<(Vec<PerfSwitchRing>, Shortfall), SchedError> {
    let first = match target {
        Target::Own => Watch::Own,
        // The workers open their own as they start: one now, closed at
        // once, says whether perf and the locked-memory allowance let them.
        Target::Workers => {
            open_largest(0, Watch::Me).map_err(open_error)?;
            return Ok((Vec::new(), Shortfall::default()));
        }
        Target::Launch(pid) => Watch::FromExec(pid),
        Target::Attach(pid) => return attach_rings(cpus, pid, spill),
    };
    let rings = cpus
        .iter()
        .map(|&cpu| open_ring(cpu, first))
        .collect::<Result<_, _>>()?;
    Ok((rings, Shortfall::default()))
}

fn attach_rings(
    cpus: &[usize],
    pid: i32,
    spill: bool,
) -> Result<(Vec<PerfSwitchRing>, Shortfall), SchedError> {
    let mut tids = threads_of(pid).map_err(|e| SchedError::Target { pid, source: e })?;
    let budget = match crate::sys::process::spare_fds().filter(|_| spill) {
        Some(spare) => (spare.saturating_sub(FD_RESERVE) / cpus.len().max(1) as u64) as usize,
        None => usize::MAX,
    };
    if budget < tids.len() {
        busiest_first(pid, &mut tids);
    }
    let too_many = |attached: usize| SchedError::TooManyThreads {
        pid,
        attached,
        cpus: cpus.len(),
    };
    let first = *tids.first().ok_or(SchedError::Target {
        pid,
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    })?;
    if budget == 0 {
        return Err(too_many(0));
    }
    let mut rings: Vec<_> = cpus
        .iter()
        .map(|&cpu| open_ring(cpu, Watch::Thread(first)))
        .collect::<Result<_, _>>()?;
    let mut attached = HashSet::from([first]);
    let mut short = Shortfall::default();
    'listing: loop {
        let new: Vec<i32> = tids.into_iter().filter(|t| !attached.contains(t)).collect();
        if new.is_empty() {
            break;
        }
        for (n, &tid) in new.iter().enumerate() {
            if attached.len() >= budget {
                short.tids.extend(&new[n..]);
                break 'listing;
            }
            match add_thread(&mut rings, tid) {
                Ok(()) => {
                    attached.insert(tid);
                }
                // It exited since it was listed.
                Err(e) if e.source.raw_os_error() == Some(libc::ESRCH) => {}
                Err(e) if e.source.raw_os_error() == Some(libc::EMFILE) => {
                    if !spill {
                        return Err(too_many(attached.len()));
                    }
                    short.tids.extend(&new[n..]);
                    break 'listing;
                }
                Err(e) => return Err(open_error(e)),
            }
        }
        tids = threads_of(pid).unwrap_or_default();
    }
    short.attached = attached.len();
    short.limit = crate::sys::process::open_files_limit().unwrap_or(0);
    Ok((rings, short))
}

/// Opens one event per ring (CPU) for thread `tid`; on failure closes
/// those it opened, so that a thread is recorded on every CPU or on none.
fn add_thread(rings: &mut [PerfSwitchRing], tid: i32) -> Result<(), OpenError> {
    for i in 0..rings.len() {
        if let Err(e) = rings[i].add(Watch::Thread(tid)) {
            for ring in &mut rings[..i] {
                ring.remove_last();
            }
            return Err(e);
        }
    }
    Ok(())
}

/// Orders `tids` (threads of `pid`) by CPU time so far, most first: where
/// not every thread can have perf events, the busy ones get them.
fn busiest_first(pid: i32, tids: &mut [i32]) {
    tids.sort_by_cached_key(|tid| {
        let cpu_ns = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/schedstat"))
            .ok()
            .and_then(|s| crate::telemetry::thread_stats::parse_schedstat(&s))
            .map_or(0, |(on_cpu, _, _)| on_cpu);
        std::cmp::Reverse(cpu_ns)
    });
}

fn open_ring(cpu: usize, watch: Watch) -> Result<PerfSwitchRing, SchedError> {
    let error = if watch == Watch::Cpu {
        wide_open_error
    } else {
        open_error
    };
    open_largest(cpu, watch).map_err(error)
}

/// Opens a ring of the largest size in [`RING_PAGES`] that the
/// locked-memory allowance still holds.
fn open_largest(cpu: usize, watch: Watch) -> Result<PerfSwitchRing, OpenError> {
    let mut last = None;
    for pages in RING_PAGES {
        match PerfSwitchRing::open_for(watch, cpu, pages) {
            Ok(ring) => return Ok(ring),
            // Over the locked-memory allowance: try a smaller ring.
            Err(e) if e.step == OpenStep::Mmap => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("at least one size tried"))
}

/// Whether this process may open CPU-wide events (CAP_PERFMON, root, or
/// `perf_event_paranoid` ≤ 0): opens one on `cpu` and closes it again.
pub fn check_system_wide(cpu: usize) -> Result<(), SchedError> {
    open_ring(cpu, Watch::Cpu).map(drop)
}

impl PerfCapture {
    /// Opens one ring per CPU on the calling thread (inherited by the threads
    /// it spawns afterwards) and starts the drain thread. The drain thread is
    /// spawned *before* the events are opened so that it does not inherit
    /// them and pollute the rings with its own wake-ups.
    pub fn start(cpus: &[usize], registry: Arc<Registry>) -> Result<Self, SchedError> {
        Self::start_for(cpus, registry, Target::Own, false, false, Limits::default())
    }

    /// As [`PerfCapture::start`], for `target`. For another program the
    /// drain thread registers each thread as its first record arrives, in
    /// that order, and names it from its `comm`.
    ///
    /// `system_wide` adds one CPU-wide ring per CPU (opened first, so that a
    /// refusal comes before anything else): the switches of every other task
    /// on those CPUs, for [`Drained::wide`].
    ///
    /// `spill`: attaching to more threads than the open-file limit allows
    /// events for leaves the rest out ([`PerfCapture::shortfall`]) instead of failing.
    ///
    /// Once it streams ([`PerfCapture::stream`]) it keeps `limits` of records:
    /// past them it keeps none, and forgets the other tasks' oldest stretches.
    pub fn start_for(
        cpus: &[usize],
        registry: Arc<Registry>,
        target: Target,
        system_wide: bool,
        spill: bool,
        limits: Limits,
    ) -> Result<Self, SchedError> {
        let (rings_tx, rings_rx) = crossbeam_channel::bounded::<Rings>(1);
        let (adopt_tx, adopt_rx) = crossbeam_channel::unbounded();
        let stop = Arc::new(AtomicBool::new(false));
        let stop_asked = stop.clone();
        let (live_tx, live_rx) = crossbeam_channel::bounded::<(u64, Sink)>(1);
        let handle = std::thread::Builder::new()
            .name("corelanes-sched".into())
            .spawn(move || match rings_rx.recv() {
                Ok((rings, wide)) => {
                    let channels = (&*stop_asked, &live_rx, adopt_rx);
                    drain_loop(rings, wide, target, channels, &registry, limits)
                }
                Err(_) => Drained::default(),
            })
            .map_err(SchedError::Thread)?;

        let wide = if system_wide {
            cpus.iter().map(|&cpu| open_ring(cpu, Watch::Cpu)).collect()
        } else {
            Ok(Vec::new())
        };
        match wide.and_then(|wide| Ok((open_rings(cpus, target, spill)?, wide))) {
            Ok(((rings, shortfall), wide)) => {
                rings_tx
                    .send((rings, wide))
                    .expect("drain thread waits for the rings");
                Ok(Self {
                    stop,
                    live_tx,
                    handle: Some(handle),
                    shortfall,
                    adopt: (target == Target::Workers).then_some(adopt_tx),
                })
            }
            Err(e) => {
                drop(rings_tx);
                let _ = handle.join();
                Err(e)
            }
        }
    }

    /// With [`Target::Workers`], what each worker watches itself with.
    pub fn adopter(&self) -> Option<Adopter> {
        self.adopt.clone().map(Adopter)
    }

    /// The attached threads left without events (none unless `spill` was needed).
    pub fn shortfall(&self) -> &Shortfall {
        &self.shortfall
    }

    /// From now on, sends the slices of registered workers to `sink` as they
    /// close (times relative to `origin_ns`), every drain.
    pub fn stream(&self, origin_ns: u64, sink: Sink) {
        let _ = self.live_tx.send((origin_ns, sink));
    }

    /// Stops recording after the registered workers' exit records arrived (or
    /// a short grace period passed), drains the rings a last time and returns
    /// everything collected.
    pub fn stop(mut self) -> Drained {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Drained {
        let Some(handle) = self.handle.take() else {
            return Drained::default();
        };
        self.stop.store(true, Ordering::Release);
        handle.thread().unpark();
        handle.join().unwrap_or_default()
    }
}

impl Drop for PerfCapture {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

/// Hands the rings of workers that watch themselves to the drain thread.
#[derive(Clone, Debug)]
pub struct Adopter(Sender<(PerfSwitchRing, Registered)>);

impl Adopter {
    /// Opens an event on the calling thread alone ([`Watch::Me`]) and hands
    /// its ring to the drain thread, which registers `worker` (the calling
    /// thread) as it takes the ring. On failure nothing was registered.
    pub fn register(&self, worker: Registered) -> Result<(), OpenError> {
        let ring = open_largest(0, Watch::Me)?;
        // The drain thread outlives every worker.
        let _ = self.0.send((ring, worker));
        Ok(())
    }
}

/// The workers' own rings, each with the worker to register.
type Adopted = Receiver<(PerfSwitchRing, Registered)>;

/// The target's rings, and the CPU-wide ones (empty unless system-wide).
type Rings = (Vec<PerfSwitchRing>, Vec<PerfSwitchRing>);

struct Drainer<'a> {
    rings: Vec<PerfSwitchRing>,
    wide: Vec<PerfSwitchRing>,
    /// The rings of workers that watch themselves, as they start.
    adopted: Adopted,
    registry: &'a Registry,
    /// A record that straddles a ring's end, copied whole.
    straddling: Vec<u8>,
    /// The target's records of the latest read, names included (a buffer
    /// kept between reads); the live builder takes their [`Kept`] part.
    fresh: Vec<PerfRecord>,
    /// The CPU-wide records of one read.
    wide_records: Vec<PerfRecord>,
    out: Drained,
    exited: HashSet<i32>,
    /// Registers threads as they appear (another program's), else `None`.
    discover: Option<&'a Registry>,
    /// When the latest read of the rings began: a record stamped well
    /// before it was in its ring when that was read.
    read_ns: u64,
}

impl Drainer<'_> {
    fn drain(&mut self) {
        self.fresh.clear();
        self.read_ns = crate::sys::monotonic_ns();
        self.drain_rings();
        if let Some(registry) = self.discover {
            for r in &self.fresh {
                registry.discovered(r.tid, r.time_ns, r.kind.comm(), false);
            }
        }
    }

    fn drain_rings(&mut self) {
        // A worker that watches itself is registered as its ring is taken:
        // until then its records wait in the ring, some older than what the
        // live builder has passed, which for a known thread means late.
        for (ring, worker) in self.adopted.try_iter() {
            self.rings.push(ring);
            self.registry.add(worker);
        }
        self.out.lost += read_rings(&mut self.rings, &mut self.straddling, &mut self.fresh);
        let read = &self.fresh;
        self.out.records.extend(read.iter().filter_map(Kept::of));
        self.exited.extend(
            read.iter()
                .filter(|r| r.kind == RecordKind::Exit)
                .map(|r| r.tid),
        );
        self.wide_records.clear();
        self.out.lost += read_rings(&mut self.wide, &mut self.straddling, &mut self.wide_records);
        for r in &self.wide_records {
            if let Some(name) = r.kind.comm() {
                self.out.names.insert(r.tid, name);
            } else if r.tid > 0 && !self.out.names.contains_key(&r.tid) {
                // Named now, while it (most likely) still runs.
                let name = std::fs::read_to_string(format!("/proc/{}/comm", r.tid))
                    .map(|n| n.trim_end().to_owned())
                    .unwrap_or_else(|_| format!("pid {}", r.pid));
                self.out.names.insert(r.tid, name);
            }
        }
        self.out.others.feed(&self.wide_records);
    }
}

/// Appends the records of every ring to `out`, parsed where they lie
/// (`scratch` holds a record that straddles a ring's end); returns the
/// records lost.
fn read_rings(
    rings: &mut [PerfSwitchRing],
    scratch: &mut Vec<u8>,
    out: &mut Vec<PerfRecord>,
) -> u64 {
    rings
        .iter_mut()
        .map(|ring| ring.read_with(|first, second| parse_wrapped(first, second, scratch, out)))
        .sum()
}

fn drain_loop(
    rings: Vec<PerfSwitchRing>,
    wide: Vec<PerfSwitchRing>,
    target: Target,
    (stop, live_rx, adopted): (&AtomicBool, &Receiver<(u64, Sink)>, Adopted),
    registry: &Registry,
    limits: Limits,
) -> Drained {
    let mut d = Drainer {
        rings,
        wide,
        adopted,
        registry,
        straddling: Vec::new(),
        fresh: Vec::new(),
        wide_records: Vec::new(),
        out: Drained::default(),
        exited: HashSet::new(),
        discover: target.discovers().then_some(registry),
        read_ns: 0,
    };
    let mut live: Option<(u64, LiveSlices)> = None;
    loop {
        // The records this drain adds are those the live builder takes.
        let mut fed = d.out.records.len();
        d.drain();
        registry.drained();
        if let Ok((origin_ns, sink)) = live_rx.try_recv() {
            live = Some((origin_ns, LiveSlices::new(origin_ns, sink)));
            // And at its start, those read before: a launched program runs
            // from its release, a moment before its recorder asks for slices.
            fed = 0;
        }
        if let Some((origin_ns, live)) = &mut live {
            let now = crate::sys::monotonic_ns();
            live.feed(&d.out.records[fed..], registry, d.read_ns);
            // Streamed, the slices are the report's: keeping the records
            // too (120 000 a second at high switch rates) cost about a
            // fifth of this thread's CPU time in fresh pages, as a fallback
            // for late records that never came in testing (see `Drained::late`).
            d.out.records.clear();
            let own = |tid| registry.knows(tid);
            d.out
                .others
                .forget(now, limits, *origin_ns, &d.out.names, &own);
        }
        let held = std::mem::size_of_val(d.out.records.as_slice()) + d.out.others.bytes();
        d.out.peak_bytes = d.out.peak_bytes.max(held);
        // Paced by the smallest ring (the workers' own come as they start).
        let smallest = d
            .rings
            .iter()
            .chain(&d.wide)
            .map(PerfSwitchRing::capacity)
            .min();
        // Woken early by `stop` (or spuriously: one more drain, no harm).
        std::thread::park_timeout(drain_interval(smallest.unwrap_or(usize::MAX)));
        if stop.load(Ordering::Acquire) {
            break;
        }
    }
    // Workers have been joined, but the kernel writes a thread's exit record
    // a little after `join` returns: wait for them so every final slice ends
    // at the thread's real exit.
    let fed = d.out.records.len();
    let deadline = Instant::now() + EXIT_GRACE;
    loop {
        d.drain();
        let all_exited = registry
            .snapshot()
            .iter()
            .all(|w| d.exited.contains(&w.tid));
        if all_exited || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    for ring in d.rings.iter().chain(&d.wide) {
        let _ = ring.disable();
    }
    // Everything written before the disable is now below data_head.
    d.drain();
    if let Some((_, live)) = live {
        let end_ns = crate::sys::monotonic_ns();
        let exited = &d.exited;
        let alive = |tid: i32| {
            !exited.contains(&tid) && std::fs::exists(format!("/proc/{tid}")).unwrap_or(false)
        };
        let (per_thread, late) = live.finish(
            &d.out.records[fed..],
            registry,
            end_ns,
            alive,
            super::procfs::still_state,
        );
        d.out.streamed = Some(per_thread);
        d.out.late = late;
        d.out.records = Vec::new();
    }
    d.out.cpu_ns = crate::sys::thread_cpu_ns();
    d.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_record_is_the_record_less_its_name_and_process_in_16_bytes() {
        assert_eq!(std::mem::size_of::<Kept>(), 16);
        let kinds = [
            RecordKind::SwitchIn,
            RecordKind::SwitchOut { preempted: false },
            RecordKind::SwitchOut { preempted: true },
            RecordKind::Fork,
            RecordKind::Exit,
        ];
        for kind in kinds {
            let r = PerfRecord {
                pid: 0,
                tid: 4321,
                cpu: 255,
                time_ns: 9_876_543_210,
                kind,
            };
            assert_eq!(Kept::of(&r).map(|k| k.record()), Some(r), "{kind:?}");
        }
        let named = PerfRecord {
            pid: 7,
            tid: 7,
            cpu: 0,
            time_ns: 1,
            kind: RecordKind::Comm { name: [b'x'; 16] },
        };
        assert_eq!(Kept::of(&named), None);
    }

    fn header(kind: u32, misc: u16, size: u16) -> Vec<u8> {
        let mut b = kind.to_ne_bytes().to_vec();
        b.extend(misc.to_ne_bytes());
        b.extend(size.to_ne_bytes());
        b
    }
    fn sample_id(pid: u32, tid: u32, time: u64, cpu: u32) -> Vec<u8> {
        let mut b = pid.to_ne_bytes().to_vec();
        b.extend(tid.to_ne_bytes());
        b.extend(time.to_ne_bytes());
        b.extend(cpu.to_ne_bytes());
        b.extend(0u32.to_ne_bytes());
        b
    }
    fn switch(misc: u16, tid: u32, time: u64, cpu: u32) -> Vec<u8> {
        let mut b = header(PERF_RECORD_SWITCH, misc, 32);
        b.extend(sample_id(100, tid, time, cpu));
        b
    }

    #[test]
    fn parses_switch_in_out_and_preempt() {
        let mut bytes = switch(0, 101, 1_000, 1);
        bytes.extend(switch(PERF_RECORD_MISC_SWITCH_OUT, 101, 2_000, 1));
        bytes.extend(switch(
            PERF_RECORD_MISC_SWITCH_OUT | PERF_RECORD_MISC_SWITCH_OUT_PREEMPT,
            102,
            3_000,
            0,
        ));
        let mut out = Vec::new();
        assert_eq!(parse_records(&bytes, &mut out), 0);
        assert_eq!(
            out,
            vec![
                PerfRecord {
                    pid: 100,
                    tid: 101,
                    cpu: 1,
                    time_ns: 1_000,
                    kind: RecordKind::SwitchIn
                },
                PerfRecord {
                    pid: 100,
                    tid: 101,
                    cpu: 1,
                    time_ns: 2_000,
                    kind: RecordKind::SwitchOut { preempted: false }
                },
                PerfRecord {
                    pid: 100,
                    tid: 102,
                    cpu: 0,
                    time_ns: 3_000,
                    kind: RecordKind::SwitchOut { preempted: true }
                },
            ]
        );
    }

    /// A CPU-wide switch, a fork, a lost count, an unknown record and an exit.
    fn mixed_records() -> Vec<u8> {
        // SWITCH_CPU_WIDE: next_prev_pid, next_prev_tid before the trailer.
        let mut bytes = header(PERF_RECORD_SWITCH_CPU_WIDE, PERF_RECORD_MISC_SWITCH_OUT, 40);
        bytes.extend(7u32.to_ne_bytes());
        bytes.extend(8u32.to_ne_bytes());
        bytes.extend(sample_id(100, 103, 5_000, 1));
        // FORK: pid, ppid, tid, ptid, time, then the trailer of the parent.
        bytes.extend(header(PERF_RECORD_FORK, 0, 56));
        for v in [100u32, 100, 104, 101] {
            bytes.extend(v.to_ne_bytes());
        }
        bytes.extend(6_000u64.to_ne_bytes());
        bytes.extend(sample_id(100, 101, 6_000, 0));
        // LOST: id, lost, trailer.
        bytes.extend(header(PERF_RECORD_LOST, 0, 48));
        bytes.extend(1u64.to_ne_bytes());
        bytes.extend(17u64.to_ne_bytes());
        bytes.extend(sample_id(0, 0, 0, 0));
        // An unknown record type (MMAP, 1) with some body is skipped.
        bytes.extend(header(1, 0, 16));
        bytes.extend([0u8; 8]);
        // EXIT.
        bytes.extend(header(PERF_RECORD_EXIT, 0, 56));
        for v in [100u32, 100, 104, 104] {
            bytes.extend(v.to_ne_bytes());
        }
        bytes.extend(9_000u64.to_ne_bytes());
        bytes.extend(sample_id(100, 104, 9_000, 1));
        bytes
    }

    #[test]
    fn parses_cpu_wide_fork_exit_and_lost() {
        let bytes = mixed_records();
        let mut out = Vec::new();
        assert_eq!(parse_records(&bytes, &mut out), 17);
        assert_eq!(
            out,
            vec![
                PerfRecord {
                    pid: 100,
                    tid: 103,
                    cpu: 1,
                    time_ns: 5_000,
                    kind: RecordKind::SwitchOut { preempted: false }
                },
                PerfRecord {
                    pid: 100,
                    tid: 104,
                    cpu: 0,
                    time_ns: 6_000,
                    kind: RecordKind::Fork
                },
                PerfRecord {
                    pid: 100,
                    tid: 104,
                    cpu: 1,
                    time_ns: 9_000,
                    kind: RecordKind::Exit
                },
            ]
        );
    }

    #[test]
    fn parses_comm_with_the_new_name() {
        // COMM: pid, tid, "python3\0" padded to 8 bytes, then the trailer.
        let mut bytes = header(PERF_RECORD_COMM, 0, 8 + 8 + 8 + 24);
        bytes.extend(200u32.to_ne_bytes());
        bytes.extend(201u32.to_ne_bytes());
        bytes.extend(*b"python3\0");
        bytes.extend(sample_id(200, 201, 7_000, 1));
        let mut out = Vec::new();
        parse_records(&bytes, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].tid, out[0].time_ns, out[0].cpu), (201, 7_000, 1));
        assert_eq!(out[0].kind.comm().as_deref(), Some("python3"));
        assert_eq!(RecordKind::Exit.comm(), None);
    }

    #[test]
    fn drain_interval_follows_ring_size() {
        assert_eq!(drain_interval(64 * 4096), Duration::from_millis(10));
        assert_eq!(drain_interval(16 * 4096), Duration::from_micros(5_120));
        assert_eq!(drain_interval(4 * 4096), Duration::from_micros(1_280));
        assert_eq!(drain_interval(0), Duration::from_millis(1));
    }

    /// Read where they lie, a ring's bytes split anywhere by its end parse
    /// as the same bytes joined: the record astride the end is copied whole.
    #[test]
    fn records_split_at_the_rings_end_parse_as_if_joined() {
        let mut bytes = mixed_records();
        bytes.extend(switch(0, 101, 10_000, 1));
        let mut joined = Vec::new();
        let joined_lost = parse_records(&bytes, &mut joined);
        assert_eq!(joined.len(), 4);
        let mut scratch = Vec::new();
        for at in 0..=bytes.len() {
            let mut out = Vec::new();
            let lost = parse_wrapped(&bytes[..at], &bytes[at..], &mut scratch, &mut out);
            assert_eq!((lost, &out), (joined_lost, &joined), "split at byte {at}");
        }
        // A malformed header (size 4) ends parsing, wherever the end falls.
        let mut bad = switch(0, 101, 1_000, 1);
        bad.extend(header(PERF_RECORD_SWITCH, 0, 4));
        bad.extend(switch(0, 101, 2_000, 1));
        for at in 0..=bad.len() {
            let mut out = Vec::new();
            parse_wrapped(&bad[..at], &bad[at..], &mut scratch, &mut out);
            assert_eq!(out.len(), 1, "split at byte {at}");
        }
    }

    #[test]
    fn truncated_or_malformed_input_stops_cleanly() {
        let full = switch(0, 101, 1_000, 1);
        let mut out = Vec::new();
        // Cut in the middle of the record.
        assert_eq!(parse_records(&full[..20], &mut out), 0);
        assert!(out.is_empty());
        // A zero size would loop forever if not rejected.
        let mut bad = header(PERF_RECORD_SWITCH, 0, 0);
        bad.extend([0u8; 40]);
        parse_records(&bad, &mut out);
        assert!(out.is_empty());
        // A switch record too short for its trailer is skipped, the next one read.
        let mut short = header(PERF_RECORD_SWITCH, 0, 16);
        short.extend([0u8; 8]);
        short.extend(switch(0, 5, 7, 0));
        parse_records(&short, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].tid, 5);
    }
}
