//! The fallback source: sampling `/proc/<tid>/…` at about 1 kHz.
//!
//! Each tick reads, per worker thread: its exact CPU time (the thread's CPU
//! clock; schedstat's on-CPU total lags by up to a scheduler tick, 4 ms at
//! HZ=250), its run-queue wait and number of times it got a CPU (`schedstat`
//! fields 2 and 3), and its state letter and the CPU it last ran on (`stat`
//! fields 3 and 39). Between two samples:
//! - the thread was Running for the CPU time it gained, and not running for
//!   the rest;
//! - if it never got a CPU in between, any running came first (it was on a
//!   CPU at the earlier sample and then left); if it did, the running came
//!   last. Exact when at most one switch falls between two samples;
//! - the not-running time is Runnable when the thread was runnable (`R`) at
//!   both samples, else Blocked; and since the kernel adds run-queue wait only
//!   when the thread gets a CPU again, a wait increase re-labels that much of
//!   the not-running time just before its latest run as Runnable.
//!
//! Edges are good to about one sample period: honest and coarse.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::slices::Totals;
use super::{Limits, Registered, Registry, SchedError, SchedSlice, SliceState, ThreadSched};
use crate::retention::Dropped;
use crate::sys;
use crate::telemetry::thread_stats::{self, parse_schedstat};

/// Time between two samples.
pub const PERIOD: Duration = Duration::from_millis(1);

/// The time slice the sampler asks for, so that it wakes on time.
const SAMPLER_SLICE: Duration = Duration::from_micros(100);

/// Context-switch counters (`status`) are read every this many ticks: they
/// are only totals, and `status` is long to format.
const STATUS_EVERY: u64 = 8;

/// One reading of one thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// When it was taken (absolute `CLOCK_MONOTONIC` ns).
    pub t_ns: u64,
    /// CPU time of the thread so far.
    pub cpu_ns: u64,
    /// Run-queue wait of the thread so far (`schedstat` field 2).
    pub run_delay_ns: u64,
    /// Times the thread got a CPU so far (`schedstat` field 3).
    pub timeslices: u64,
    /// CPU it runs or last ran on (`stat` field 39).
    pub processor: usize,
    /// Running or waiting for a CPU (`stat` state `R`), not sleeping.
    pub runnable: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Piece {
    state: SliceState,
    core: usize,
    start: u64,
    end: u64,
}

/// The fewest pieces a track keeps, however small its share of the budget.
const MIN_PIECES: usize = 256;

/// Turns successive samples of one thread into state pieces, incrementally.
#[derive(Clone, Debug, Default)]
pub struct ProcTrack {
    last: Option<Sample>,
    pieces: Vec<Piece>,
    /// Totals (as thread 0) of the pieces forgotten from the front, as
    /// slices relative to the origin (see [`ProcTrack::forget`]).
    forgotten: Totals,
    /// How many pieces were forgotten, and the latest end among them
    /// (relative to the origin).
    pub dropped: Dropped,
}

impl ProcTrack {
    /// Adds the next sample (samples must come in time order).
    pub fn push(&mut self, s: Sample) {
        let Some(prev) = self.last else {
            self.last = Some(s);
            return;
        };
        if s.t_ns <= prev.t_ns {
            return;
        }
        self.last = Some(s);
        let dt = s.t_ns - prev.t_ns;
        let on = s.cpu_ns.saturating_sub(prev.cpu_ns).min(dt);
        let off_state = if prev.runnable && s.runnable {
            SliceState::Runnable
        } else {
            SliceState::Blocked
        };
        if s.timeslices == prev.timeslices {
            // No switch-in in between: it ran first (if at all), then left.
            let mid = prev.t_ns + on;
            self.add(SliceState::Running, prev.processor, prev.t_ns, mid);
            self.add(off_state, s.processor, mid, s.t_ns);
        } else {
            let mid = s.t_ns - on;
            self.add(off_state, s.processor, prev.t_ns, mid);
            self.add(SliceState::Running, s.processor, mid, s.t_ns);
        }
        let wait = s.run_delay_ns.saturating_sub(prev.run_delay_ns);
        if wait > 0 {
            self.relabel_runnable(wait);
        }
    }

    fn add(&mut self, state: SliceState, core: usize, start: u64, end: u64) {
        if end <= start {
            return;
        }
        if let Some(last) = self.pieces.last_mut()
            && last.state == state
            && last.core == core
            && last.end == start
        {
            last.end = end;
            return;
        }
        self.pieces.push(Piece {
            state,
            core,
            start,
            end,
        });
    }

    /// The kernel credited `wait` ns of run-queue wait at the thread's latest
    /// switch-in: the not-running time just before its latest running piece
    /// (or just before now) was that wait.
    fn relabel_runnable(&mut self, mut wait: u64) {
        let p = &mut self.pieces;
        let mut i = p.len();
        while i > 0 && p[i - 1].state == SliceState::Running {
            i -= 1;
        }
        while i > 0 && wait > 0 {
            let piece = p[i - 1];
            let len = piece.end - piece.start;
            match piece.state {
                SliceState::Running => break,
                SliceState::Runnable => wait = wait.saturating_sub(len),
                SliceState::Blocked if len <= wait => {
                    p[i - 1].state = SliceState::Runnable;
                    wait -= len;
                }
                SliceState::Blocked => {
                    let cut = piece.end - wait;
                    p[i - 1].end = cut;
                    p.insert(
                        i,
                        Piece {
                            state: SliceState::Runnable,
                            start: cut,
                            ..piece
                        },
                    );
                    wait = 0;
                }
            }
            i -= 1;
        }
    }

    /// How many pieces from the front can no longer change: a later wait
    /// re-labels only the not-running pieces after the last running piece
    /// that precedes the trailing ones, and only the last piece grows.
    fn settled(&self) -> usize {
        let p = &self.pieces;
        let mut i = p.len();
        while i > 0 && p[i - 1].state == SliceState::Running {
            i -= 1;
        }
        while i > 0 && p[i - 1].state != SliceState::Running {
            i -= 1;
        }
        i
    }

    /// Forgets settled pieces from the front, as [`crate::retention::trim`]
    /// does (those that ended over `window_ns` before `now_ns`, checked an
    /// eighth of the way in; the oldest quarter past `budget` bytes), and
    /// adds them to the track's totals as slices relative to `origin_ns`.
    pub fn forget(&mut self, now_ns: u64, origin_ns: u64, budget: usize, window_ns: u64) {
        let most = (budget / std::mem::size_of::<Piece>()).max(MIN_PIECES);
        let horizon = now_ns.saturating_sub(window_ns);
        let probe = self.pieces.len() / 8;
        let old = probe > 0 && self.pieces[probe].end < horizon;
        let over = self.pieces.len() > most;
        if !old && !over {
            return;
        }
        let settled = self.settled();
        let mut n = self.pieces[..settled]
            .iter()
            .take_while(|p| p.end < horizon)
            .count();
        if over {
            n = n.max(self.pieces.len() / 4).min(settled);
        }
        for p in self.pieces.drain(..n) {
            let (start, end) = (
                p.start.saturating_sub(origin_ns),
                p.end.saturating_sub(origin_ns),
            );
            // As `slices` leaves out what the origin cuts to nothing.
            if end > start {
                let slice = SchedSlice::new(0, p.core, p.state, start, end);
                self.forgotten.add(&slice, false);
                self.dropped.before_ns = self.dropped.before_ns.max(end);
            }
            self.dropped.items += 1;
        }
    }

    /// The totals of the forgotten pieces, and the migration between the
    /// last of them that ran and the first kept one that ran (which the
    /// totals of the kept slices cannot see).
    pub fn forgotten(&self, origin_ns: u64) -> ThreadSched {
        let mut totals = self
            .forgotten
            .per_thread
            .first()
            .cloned()
            .unwrap_or_default();
        let first_run = self.pieces.iter().find(|p| {
            p.state == SliceState::Running
                && p.end.saturating_sub(origin_ns) > p.start.saturating_sub(origin_ns)
        });
        if let (Some(last), Some(first)) = (self.forgotten.last_core(0), first_run)
            && last != first.core
        {
            totals.migrations += 1;
        }
        totals
    }

    /// The slices of worker `thread`, merged, relative to `origin_ns`.
    pub fn slices(&self, thread: usize, origin_ns: u64, out: &mut Vec<SchedSlice>) {
        let first = out.len();
        for p in &self.pieces {
            let (start, end) = (
                p.start.saturating_sub(origin_ns),
                p.end.saturating_sub(origin_ns),
            );
            if let Some(last) = out[first..].last_mut()
                && last.state == p.state
                && last.core() == p.core
                && last.end_ns == start
            {
                last.end_ns = end;
                continue;
            }
            if end > start {
                out.push(SchedSlice::new(thread, p.core, p.state, start, end));
            }
        }
    }
}

/// A sample of the calling thread, taken by a worker as it registers, so
/// that its track starts at registration however late the sampler looks.
/// It is running right now; costs a few µs (one small /proc read).
pub fn own_sample() -> Option<Sample> {
    let cpu_ns = sys::thread_cpu_ns();
    let t_ns = sys::monotonic_ns();
    let (_, run_delay_ns, timeslices) = thread_stats::own_schedstat()?;
    Some(Sample {
        t_ns,
        cpu_ns,
        run_delay_ns,
        timeslices,
        processor: sys::current_cpu()?,
        runnable: true,
    })
}

/// Thread `tid`'s state and CPU now, for a capture in which it never
/// switched (so it was in that state all along, see [`super::slices::Quiet`]):
/// blocked unless its state letter is `R`; then running if its CPU time
/// grows over 20 ms (two ticks at the slowest tick rate), else waiting for
/// a CPU. `None` once the thread is gone.
pub fn still_state(tid: i32) -> Option<(SliceState, usize)> {
    let read = |name: &str| std::fs::read_to_string(format!("/proc/{tid}/{name}")).ok();
    let (state, processor) = parse_stat(&read("stat")?)?;
    if state != 'R' {
        return Some((SliceState::Blocked, processor));
    }
    let on_cpu = || parse_schedstat(&read("schedstat")?).map(|(on_cpu, _, _)| on_cpu);
    let before = on_cpu()?;
    std::thread::sleep(Duration::from_millis(20));
    let state = if on_cpu()? > before {
        SliceState::Running
    } else {
        SliceState::Runnable
    };
    Some((state, processor))
}

/// `stat`: (state letter, processor). The command name in field 2 is in
/// parentheses and may hold spaces and ')' itself, so fields are counted from
/// after the last ')': field 3 (state) comes first, field 39 (processor) 37th.
pub fn parse_stat(text: &str) -> Option<(char, usize)> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    let processor = fields.nth(35)?.parse().ok()?;
    Some((state, processor))
}

/// `status`: (voluntary, involuntary) context switches.
pub fn parse_status_switches(text: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Some((
        field("voluntary_ctxt_switches:")?,
        field("nonvoluntary_ctxt_switches:")?,
    ))
}

/// One worker as sampled: its track and switch counters.
#[derive(Debug, Default)]
pub struct Sampled {
    pub index: usize,
    pub tid: i32,
    pub track: ProcTrack,
    /// (voluntary, involuntary) switches between the first and last status read.
    pub switches: (u64, u64),
}

/// Descriptors the sampler leaves for everything else before it stops
/// keeping its files open.
const FD_RESERVE: u64 = 64;

/// One of a thread's /proc files: kept open (a read is one `pread`) while
/// descriptors are plentiful, else opened for each read (slower, but past
/// the open-file limit nothing else works: thousands of attached threads).
enum ProcFile {
    Kept(File),
    Reopened(String),
}

impl ProcFile {
    fn open(path: String, keep: bool) -> std::io::Result<ProcFile> {
        let file = File::open(&path)?;
        Ok(if keep {
            ProcFile::Kept(file)
        } else {
            ProcFile::Reopened(path)
        })
    }

    /// Reads the file from its start into `buf`; `None` if gone or empty.
    fn read(&self, buf: &mut [u8]) -> Option<usize> {
        let reopened;
        let file = match self {
            ProcFile::Kept(file) => file,
            ProcFile::Reopened(path) => {
                reopened = File::open(path).ok()?;
                &reopened
            }
        };
        file.read_at(buf, 0).ok().filter(|&n| n > 0)
    }
}

struct Watched {
    out: Sampled,
    /// A thread of this process: its CPU clock can be read, exact.
    own: bool,
    schedstat: ProcFile,
    stat: ProcFile,
    status: ProcFile,
    first_switches: Option<(u64, u64)>,
    alive: bool,
}

/// Descriptors a [`Watched`] keeps open.
const FILES_PER_THREAD: u64 = 3;

impl Watched {
    /// `keep`: keep its files open (see [`ProcFile`]).
    fn open(r: &Registered, keep: bool) -> std::io::Result<Self> {
        // `/proc/TID` names a thread of this process or of another program
        // (`corelanes record` with perf refused).
        let dir = format!("/proc/{}", r.tid);
        let own = std::fs::exists(format!("/proc/self/task/{}", r.tid)).unwrap_or(false);
        let mut track = ProcTrack::default();
        if let Some(first) = r.first_sample {
            track.push(first);
        }
        Ok(Self {
            out: Sampled {
                index: r.index,
                tid: r.tid,
                track,
                ..Default::default()
            },
            schedstat: ProcFile::open(format!("{dir}/schedstat"), keep)?,
            stat: ProcFile::open(format!("{dir}/stat"), keep)?,
            status: ProcFile::open(format!("{dir}/status"), keep)?,
            first_switches: None,
            alive: true,
            own,
        })
    }

    /// Takes one sample; marks the thread gone when it can no longer be read.
    fn sample(&mut self, buf: &mut [u8], with_status: bool) {
        let tid = self.out.tid;
        let own_cpu_ns = if self.own {
            let Some(cpu_ns) = sys::thread_cpu_ns_of(tid) else {
                self.alive = false;
                return;
            };
            Some(cpu_ns)
        } else {
            None // another process's thread clock cannot be read: schedstat's
        };
        let t_ns = sys::monotonic_ns();
        let Some(n) = self.schedstat.read(buf) else {
            self.alive = false;
            return;
        };
        let Some((on_cpu_ns, run_delay_ns, timeslices)) = std::str::from_utf8(&buf[..n])
            .ok()
            .and_then(parse_schedstat)
        else {
            self.alive = false;
            return;
        };
        let Some(n) = self.stat.read(buf) else {
            self.alive = false;
            return;
        };
        let Some((state, processor)) = std::str::from_utf8(&buf[..n]).ok().and_then(parse_stat)
        else {
            self.alive = false;
            return;
        };
        self.out.track.push(Sample {
            t_ns,
            cpu_ns: own_cpu_ns.unwrap_or(on_cpu_ns),
            run_delay_ns,
            timeslices,
            processor,
            runnable: state == 'R',
        });
        if with_status || self.first_switches.is_none() {
            let counts = self
                .status
                .read(buf)
                .and_then(|n| std::str::from_utf8(&buf[..n]).ok())
                .and_then(parse_status_switches);
            if let Some(now) = counts {
                let first = *self.first_switches.get_or_insert(now);
                self.out.switches = (now.0.saturating_sub(first.0), now.1.saturating_sub(first.1));
            }
        }
    }
}

/// Running sampler thread.
pub struct ProcfsCapture {
    stop_tx: Sender<()>,
    handle: Option<JoinHandle<Vec<Sampled>>>,
}

impl ProcfsCapture {
    /// Starts sampling the registered threads marked `sampled`; once the
    /// registry knows the run's origin, their pieces are kept within `limits`.
    pub fn start(registry: Arc<Registry>, limits: Limits) -> Result<Self, SchedError> {
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(1);
        let handle = std::thread::Builder::new()
            .name("corelanes-proc".into())
            .spawn(move || sampler_loop(&registry, &stop_rx, limits))
            .map_err(SchedError::Thread)?;
        Ok(Self {
            stop_tx,
            handle: Some(handle),
        })
    }

    /// Stops sampling (after one last sample) and returns every worker's track.
    pub fn stop(mut self) -> Vec<Sampled> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Vec<Sampled> {
        let Some(handle) = self.handle.take() else {
            return Vec::new();
        };
        let _ = self.stop_tx.send(());
        handle.join().unwrap_or_default()
    }
}

impl Drop for ProcfsCapture {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

fn sampler_loop(registry: &Registry, stop_rx: &Receiver<()>, limits: Limits) -> Vec<Sampled> {
    // Without this, on a core shared with CPU-bound workers the sampler waits
    // behind them for whole slices (ticks of 12 ms were seen instead of 1 ms).
    let _ = sys::request_short_slice(SAMPLER_SLICE.as_nanos() as u64);
    let mut watched: Vec<Watched> = Vec::new();
    let mut gone: Vec<Sampled> = Vec::new();
    let mut seen = 0;
    let mut buf = vec![0u8; 4096];
    let mut tick = 0u64;
    let mut next = Instant::now();
    loop {
        let stopping = match stop_rx.recv_deadline(next) {
            Err(RecvTimeoutError::Timeout) => false,
            Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
        };
        let new: Vec<Registered> = registry
            .since(&mut seen)
            .into_iter()
            .filter(|r| r.sampled)
            .collect();
        // Files are kept open while that leaves FD_RESERVE descriptors.
        let mut keepable = match new.len() {
            0 => 0,
            _ => sys::process::spare_fds().map_or(0, |spare| {
                spare.saturating_sub(FD_RESERVE) / FILES_PER_THREAD
            }),
        };
        for r in new {
            let keep = keepable > 0;
            keepable = keepable.saturating_sub(1);
            match Watched::open(&r, keep) {
                Ok(w) => watched.push(w),
                // Already gone: it is reported with no slices.
                Err(_) => gone.push(Sampled {
                    index: r.index,
                    tid: r.tid,
                    ..Default::default()
                }),
            }
        }
        let began = Instant::now();
        for w in watched.iter_mut().filter(|w| w.alive) {
            w.sample(&mut buf, tick.is_multiple_of(STATUS_EVERY));
        }
        // Each thread's share of the budget; once the origin is known, as
        // what is forgotten is totalled relative to it.
        if let Some(origin_ns) = registry.origin() {
            let share = limits.bytes / watched.len().max(1);
            let now_ns = sys::monotonic_ns();
            for w in &mut watched {
                w.out
                    .track
                    .forget(now_ns, origin_ns, share, limits.window_ns);
            }
        }
        if stopping {
            break;
        }
        tick += 1;
        next += PERIOD;
        let now = Instant::now();
        if next < now {
            // Fell behind: skip, never burst. A pass longer than the period
            // (hundreds of threads) is followed by as long a rest, so that
            // sampling takes at most half a CPU.
            next = now + PERIOD.max(now - began);
        }
    }
    gone.extend(watched.into_iter().map(|w| w.out));
    gone
}

#[cfg(test)]
mod tests {
    use super::*;
    use SliceState::*;

    /// A real busy thread reads as running, a real sleeping one as blocked.
    #[test]
    fn still_state_tells_a_spinning_thread_from_a_sleeping_one() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = Arc::new(AtomicBool::new(false));
        let started = |spin: bool| {
            let (tx, rx) = crossbeam_channel::bounded(1);
            let stop = stop.clone();
            let handle = std::thread::spawn(move || {
                tx.send(sys::gettid()).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    if !spin {
                        std::thread::sleep(Duration::from_millis(500));
                    }
                }
            });
            (rx.recv().unwrap(), handle)
        };
        let (spinner, a) = started(true);
        let (sleeper, b) = started(false);
        std::thread::sleep(Duration::from_millis(50));
        let spinning = still_state(spinner).map(|(state, _)| state);
        let sleeping = still_state(sleeper).map(|(state, _)| state);
        stop.store(true, Ordering::Relaxed);
        a.join().unwrap();
        b.join().unwrap();
        // Beside other load a spinner may wait for its CPU a while, but over
        // 20 ms it gets some; the sleeper sleeps through.
        assert_eq!(spinning, Some(Running));
        assert_eq!(sleeping, Some(Blocked));
        assert_eq!(still_state(-1), None, "no such thread");
    }

    /// A sample; `state` is the `stat` letter.
    fn s(
        t_ns: u64,
        cpu_ns: u64,
        run_delay_ns: u64,
        slices: u64,
        cpu: usize,
        state: char,
    ) -> Sample {
        Sample {
            t_ns,
            cpu_ns,
            run_delay_ns,
            timeslices: slices,
            processor: cpu,
            runnable: state == 'R',
        }
    }

    fn slices_of(track: &ProcTrack) -> Vec<(SliceState, usize, u64, u64)> {
        let mut out = Vec::new();
        track.slices(0, 0, &mut out);
        out.iter()
            .map(|s| (s.state, s.core(), s.start_ns, s.end_ns))
            .collect()
    }

    #[test]
    fn parses_proc_lines() {
        // comm with spaces and a ')' inside.
        let stat = "4242 (we ird) x) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 1 0 0 0\n";
        assert_eq!(parse_stat(stat), Some(('R', 1)));
        assert_eq!(parse_stat("1 (x) S 1 2"), None);
        let status = "Name:\tx\nvoluntary_ctxt_switches:\t12\nnonvoluntary_ctxt_switches:\t3\n";
        assert_eq!(parse_status_switches(status), Some((12, 3)));
        // The real files of this thread parse.
        let me = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let (state, cpu) = parse_stat(&me).unwrap();
        assert_eq!(state, 'R');
        assert!(cpu < 4096);
    }

    #[test]
    fn spinner_sharing_a_core() {
        // Runs 0..2500, preempted, waits until 5000 (credited at the switch-in
        // seen in the sample at 6000), runs again.
        let mut t = ProcTrack::default();
        t.push(s(0, 0, 0, 1, 1, 'R'));
        t.push(s(1_000, 1_000, 0, 1, 1, 'R'));
        t.push(s(2_000, 2_000, 0, 1, 1, 'R'));
        t.push(s(3_000, 2_500, 0, 1, 1, 'R'));
        t.push(s(4_000, 2_500, 0, 1, 1, 'R'));
        t.push(s(5_000, 2_500, 0, 1, 1, 'R'));
        t.push(s(6_000, 3_500, 2_500, 2, 1, 'R'));
        t.push(s(7_000, 4_500, 2_500, 2, 1, 'R'));
        assert_eq!(
            slices_of(&t),
            vec![
                (Running, 1, 0, 2_500),
                (Runnable, 1, 2_500, 5_000),
                (Running, 1, 5_000, 7_000),
            ]
        );
    }

    #[test]
    fn sleeper_is_blocked_with_short_wakeup_wait() {
        let mut t = ProcTrack::default();
        t.push(s(0, 0, 0, 1, 0, 'R'));
        t.push(s(1_000, 300, 0, 1, 0, 'S')); // runs 300, then sleeps
        t.push(s(2_000, 300, 0, 1, 0, 'S'));
        t.push(s(3_000, 500, 100, 2, 0, 'R')); // woke: waited 100, ran 200
        assert_eq!(
            slices_of(&t),
            vec![
                (Running, 0, 0, 300),
                (Blocked, 0, 300, 2_700),
                (Runnable, 0, 2_700, 2_800),
                (Running, 0, 2_800, 3_000),
            ]
        );
    }

    #[test]
    fn clamps_and_ignores_out_of_order() {
        let mut t = ProcTrack::default();
        t.push(s(1_000, 0, 0, 1, 0, 'R'));
        t.push(s(1_000, 0, 0, 1, 0, 'R')); // same time: ignored
        // More CPU than wall: clamped; it ran where it was at the earlier sample.
        t.push(s(2_000, 5_000, 0, 1, 1, 'R'));
        // More wait than not-running time: clamped.
        t.push(s(3_000, 5_000, 9_999, 2, 1, 'R'));
        assert_eq!(
            slices_of(&t),
            vec![(Running, 0, 1_000, 2_000), (Runnable, 1, 2_000, 3_000)]
        );
    }

    #[test]
    fn relabel_skips_trailing_running_and_stops_at_earlier_running() {
        let mut t = ProcTrack::default();
        t.push(s(0, 0, 0, 1, 0, 'R'));
        t.push(s(1_000, 1_000, 0, 1, 0, 'R')); // running
        t.push(s(2_000, 1_000, 0, 1, 0, 'S')); // off
        t.push(s(3_000, 1_500, 0, 2, 0, 'R')); // off 500 then running 500
        t.push(s(4_000, 1_500, 0, 2, 0, 'S')); // off
        // Credited 5000 of wait, but only 1500 of not-running time precede
        // the latest run: the rest cannot be placed.
        t.push(s(5_000, 2_000, 5_000, 3, 0, 'R'));
        assert_eq!(
            slices_of(&t),
            vec![
                (Running, 0, 0, 1_000),
                (Blocked, 0, 1_000, 2_500),
                (Running, 0, 2_500, 3_000),
                (Runnable, 0, 3_000, 4_500),
                (Running, 0, 4_500, 5_000),
            ]
        );
    }

    #[test]
    fn order_inside_an_interval_follows_the_switch_count() {
        // 0..1000: ran 400 then was preempted (no switch-in): run first.
        // 1000..2000: got a CPU again and ran 300: run last.
        let mut t = ProcTrack::default();
        t.push(s(0, 0, 0, 5, 1, 'R'));
        t.push(s(1_000, 400, 0, 5, 1, 'R'));
        t.push(s(2_000, 700, 1_300, 6, 1, 'R'));
        assert_eq!(
            slices_of(&t),
            vec![
                (Running, 1, 0, 400),
                (Runnable, 1, 400, 1_700),
                (Running, 1, 1_700, 2_000),
            ]
        );
    }

    /// A thread's samples every µs for `n` µs, following a fixed pseudo-random
    /// walk: it runs part or all of each interval or not at all, gets a CPU
    /// again now and then after waiting, sleeps, and moves between cores 0 and 1.
    /// Every 4 ms it stalls for 1 ms, moved between cores and woken and put
    /// to sleep again, before a run that credits the whole stall as a wait:
    /// a re-label that reaches back over 200 pieces.
    fn walk(n: u64) -> Vec<Sample> {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut at = s(0, 0, 0, 1, 0, 'R');
        let mut out = vec![at];
        for i in 1..=n {
            let r = next();
            at.t_ns = i * 1_000;
            match i % 4_000 {
                3_000..4_000 => {
                    at.processor ^= usize::from(i % 5 == 0);
                    at.runnable = i % 100 < 50;
                    out.push(at);
                    continue;
                }
                0 => {
                    at.timeslices += 1;
                    at.run_delay_ns += 1_000_000;
                }
                _ => {}
            }
            at.cpu_ns += [0, 300, 1_000, 0][(r % 4) as usize];
            if r >> 8 & 3 == 0 {
                at.timeslices += 1;
                at.run_delay_ns += (r >> 16) % 700;
            }
            if r >> 24 & 7 == 0 {
                at.processor ^= 1;
            }
            at.runnable = r >> 32 & 3 != 0;
            out.push(at);
        }
        out
    }

    fn totals(track: &ProcTrack, origin: u64) -> ThreadSched {
        let mut slices = Vec::new();
        track.slices(0, origin, &mut slices);
        let mut per = vec![ThreadSched::default()];
        crate::telemetry::sched::slices::add_totals(&slices, &mut per);
        per.remove(0)
    }

    /// Long runs keep a bounded track: what it forgets (past the budget or
    /// the window) lives on in totals that, with the kept slices', are
    /// exactly those of the track that forgot nothing, migrations across
    /// the cut and pieces the origin clips included.
    #[test]
    fn a_track_forgets_its_oldest_pieces_into_exact_totals() {
        let samples = walk(20_000);
        let origin = 2_500; // after the first samples: clipped as `slices` clips
        let mut full = ProcTrack::default();
        // Budget-bound: a share of no bytes keeps MIN_PIECES.
        let mut by_budget = ProcTrack::default();
        // Window-bound: pieces that ended over 500 µs ago go.
        let mut by_window = ProcTrack::default();
        let (mut most_budget, mut most_window) = (0, 0);
        for &sample in &samples {
            full.push(sample);
            by_budget.push(sample);
            by_budget.forget(sample.t_ns, origin, 0, u64::MAX);
            by_window.push(sample);
            by_window.forget(sample.t_ns, origin, usize::MAX, 500_000);
            most_budget = most_budget.max(by_budget.pieces.len());
            most_window = most_window.max(by_window.pieces.len());
        }
        let all = full.pieces.len();
        eprintln!(
            "pieces: {all} in all, at most {most_budget} kept by budget, {most_window} by window"
        );
        // A piece or two more than the fewest kept (one push adds up to three).
        assert!(most_budget <= MIN_PIECES + 3, "{most_budget}");
        // 500 of the 20 000 µs, and the eighth past it before the check fires.
        assert!(most_window * 10 < all, "{most_window} of {all}");
        for track in [&by_budget, &by_window] {
            assert!(track.dropped.items > 0);
            let mut t = track.forgotten(origin);
            let kept = totals(track, origin);
            t.running_ns += kept.running_ns;
            t.runnable_ns += kept.runnable_ns;
            t.blocked_ns += kept.blocked_ns;
            t.migrations += kept.migrations;
            assert_eq!(t, totals(&full, origin));
        }
    }

    #[test]
    fn own_sample_reads_this_thread() {
        let a = own_sample().unwrap();
        let b = own_sample().unwrap();
        assert!(a.runnable && b.t_ns > a.t_ns && b.cpu_ns >= a.cpu_ns);
        assert!(b.timeslices >= a.timeslices);
    }
}
