//! The only place that talks to the kernel through raw `libc` calls.
//!
//! Every `unsafe` block of the crate lives in this module (and its `perf`
//! child), each with a `// SAFETY:` note; everything exported is safe to call.
//! The crate denies `unsafe_code` everywhere else (see `Cargo.toml`'s lints).
#![allow(unsafe_code)]

pub mod perf;
pub mod process;

use std::io;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};

/// Nanoseconds of `CLOCK_MONOTONIC`: the one clock every timestamp uses
/// (`std::time::Instant` reads the same clock but hides the raw value, and
/// `perf_event_open` can be told to stamp records with it).
#[inline]
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// `CLOCK_BOOTTIME` − `CLOCK_MONOTONIC` now, in ns: the time spent suspended
/// since boot. BOOTTIME is read between two MONOTONIC readings and set
/// against their midpoint, so the pair is as close to simultaneous as user
/// space gets (tens of ns).
pub fn boottime_offset_ns() -> u64 {
    let before = monotonic_ns();
    let boot = clock_ns(libc::CLOCK_BOOTTIME);
    let after = monotonic_ns();
    boot.saturating_sub(before + (after - before) / 2)
}

/// `CLOCK_MONOTONIC` ns for the workers' hot path. On this project's VMs a
/// `clock_gettime` costs ~29 ns while `rdtsc` costs ~12 ns, so where the TSC
/// is invariant and the kernel itself keeps time with it, the TSC is read and
/// mapped linearly onto `CLOCK_MONOTONIC` by the published anchor.
/// Elsewhere, before [`sync_fast_clock`], and while an anchor is being
/// replaced, it is [`monotonic_ns`].
///
/// The TSC's rate against `CLOCK_MONOTONIC` drifts (NTP steers the latter),
/// so an anchor older than 250 ms is replaced by the reader that notices
/// (that read uses the clock itself), which bounds the error at any age.
#[inline]
pub fn fast_monotonic_ns() -> u64 {
    #[cfg(target_arch = "x86_64")]
    if let Some(anchor) = PUBLISHED.load() {
        let ns = anchor.ns_at(rdtsc());
        if ns.saturating_sub(anchor.ns0) < REANCHOR_NS {
            return ns;
        }
        reanchor_if_free();
    }
    monotonic_ns()
}

/// Where and when: `CLOCK_MONOTONIC` ns and the CPU the calling thread ran
/// on at that moment (`None` where the kernel would not say).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub ns: u64,
    pub cpu: Option<usize>,
}

/// How [`stamp`] reads the time and the CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StampPath {
    /// One `rdtscp` (x86-64, where the TSC is the kernel's clocksource):
    /// the TSC mapped onto `CLOCK_MONOTONIC` by the anchor, and the CPU
    /// number Linux keeps in `TSC_AUX`.
    Rdtscp,
    /// [`fast_monotonic_ns`] and `sched_getcpu`: where `rdtscp` was
    /// measured dearer, and (with `clock_gettime`) on other architectures or
    /// where the TSC is not trusted.
    Portable,
}

/// The workers' stamp of a task's start and end: both readings from one
/// `rdtscp` where [`stamp_path`] says so, else [`portable_stamp`].
#[inline]
pub fn stamp() -> Stamp {
    #[cfg(target_arch = "x86_64")]
    if STAMP_RDTSCP.load(Ordering::Relaxed)
        && let Some(stamp) = rdtscp_stamp()
    {
        return stamp;
    }
    portable_stamp()
}

/// The portable stamp: the clock, then `sched_getcpu` (two readings, so the
/// thread may move between them; on a pinned thread it cannot).
#[inline]
pub fn portable_stamp() -> Stamp {
    Stamp {
        ns: fast_monotonic_ns(),
        cpu: current_cpu(),
    }
}

/// Which path [`stamp`] takes (decided by the first [`sync_fast_clock`]).
pub fn stamp_path() -> StampPath {
    if STAMP_RDTSCP.load(Ordering::Relaxed) {
        StampPath::Rdtscp
    } else {
        StampPath::Portable
    }
}

/// Set once the TSC is anchored, where the CPU has `rdtscp` and it is no
/// dearer than the portable pair.
static STAMP_RDTSCP: AtomicBool = AtomicBool::new(false);

/// One `rdtscp` as a [`Stamp`]: `None` before an anchor exists, while one is
/// being replaced, and when the anchor is too old (it starts replacing it).
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn rdtscp_stamp() -> Option<Stamp> {
    let anchor = PUBLISHED.load()?;
    let (tsc, aux) = rdtscp();
    let ns = anchor.ns_at(tsc);
    if ns.saturating_sub(anchor.ns0) >= REANCHOR_NS {
        reanchor_if_free();
        return None;
    }
    Some(Stamp {
        ns,
        cpu: Some(cpu_of_tsc_aux(aux)),
    })
}

/// Linux writes `(node << 12) | cpu` into `TSC_AUX` on each CPU (what the
/// vDSO's getcpu reads too).
#[inline]
fn cpu_of_tsc_aux(aux: u32) -> usize {
    (aux & 0xfff) as usize
}

/// For tests: makes [`stamp`] read `rdtscp` wherever the CPU has it, also
/// where it was found dearer and where the clocksource is not the TSC (the
/// TSC is anchored anyway if the CPU says it is invariant), so that the
/// rdtscp path can be checked. True when [`stamp`] now reads `rdtscp`.
#[doc(hidden)]
pub fn force_rdtscp_stamps() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let mut anchoring = ANCHORING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !matches!(*anchoring, Anchoring::Tsc { .. }) && cpu_has_invariant_tsc() {
            measure_rate(&mut anchoring);
            reanchor(&mut anchoring);
        }
        if matches!(*anchoring, Anchoring::Tsc { .. }) && cpu_has_rdtscp() {
            STAMP_RDTSCP.store(true, Ordering::Relaxed);
        }
    }
    stamp_path() == StampPath::Rdtscp
}

/// How long one anchor is trusted: at the worst rate error seen here (~2 ppm,
/// right after the first 20 ms measurement) that is 0.5 µs of drift.
const REANCHOR_NS: u64 = 250_000_000;

/// A map from the TSC onto `CLOCK_MONOTONIC`: ns = ns0 + (tsc − tsc0) × ns_per_tick,
/// the rate held as ns per 2³² ticks, so that a stamp multiplies integers
/// (a few ns less than converting to and from floating point).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Anchor {
    tsc0: u64,
    ns0: u64,
    ns_per_2_32_ticks: u64,
}

impl Anchor {
    fn new(tsc0: u64, ns0: u64, ns_per_tick: f64) -> Anchor {
        Anchor {
            tsc0,
            ns0,
            ns_per_2_32_ticks: (ns_per_tick * 4_294_967_296.0).round() as u64,
        }
    }

    /// Signed: a TSC read a moment before the anchor was taken (another
    /// thread re-anchored meanwhile) maps a little before `ns0`; it never
    /// wraps to ~10¹⁹ ns.
    #[inline]
    fn ns_at(&self, tsc: u64) -> u64 {
        let ticks = i128::from(tsc.wrapping_sub(self.tsc0) as i64);
        let ns = (ticks * i128::from(self.ns_per_2_32_ticks)) >> 32;
        self.ns0
            .saturating_add_signed(i64::try_from(ns).unwrap_or(i64::MAX))
    }
}

/// The anchor in force, published as a seqlock so that readers get it whole
/// or not at all: `seq` is odd while a writer stores the fields, and a reader
/// keeps what it read only if `seq` was even and unchanged around its loads.
/// The fields are atomics only so that a racing read is not undefined
/// behaviour; the sequence number is what makes the three of them one value.
struct Published {
    seq: AtomicU64,
    tsc0: AtomicU64,
    ns0: AtomicU64,
    ns_per_2_32_ticks: AtomicU64,
}

impl Published {
    const fn new() -> Published {
        Published {
            seq: AtomicU64::new(0),
            tsc0: AtomicU64::new(0),
            ns0: AtomicU64::new(0),
            ns_per_2_32_ticks: AtomicU64::new(0),
        }
    }

    /// The anchor, or `None` before the first one and while one is being
    /// written: the caller then reads the clock itself rather than wait for
    /// a writer that may have been preempted on its own core.
    #[inline]
    fn load(&self) -> Option<Anchor> {
        let seq = self.seq.load(Ordering::Acquire);
        if seq == 0 || seq & 1 == 1 {
            return None;
        }
        let anchor = Anchor {
            tsc0: self.tsc0.load(Ordering::Relaxed),
            ns0: self.ns0.load(Ordering::Relaxed),
            ns_per_2_32_ticks: self.ns_per_2_32_ticks.load(Ordering::Relaxed),
        };
        // Orders the field loads before the second look at `seq`: a field
        // written by a later store is then seen with that store's odd `seq`.
        fence(Ordering::Acquire);
        (self.seq.load(Ordering::Relaxed) == seq).then_some(anchor)
    }

    /// Writers must be serialised (the [`ANCHORING`] lock does it).
    fn store(&self, anchor: Anchor) {
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq + 1, Ordering::Relaxed);
        // Orders the odd `seq` before the field stores (pairs with `load`'s fence).
        fence(Ordering::Release);
        self.tsc0.store(anchor.tsc0, Ordering::Relaxed);
        self.ns0.store(anchor.ns0, Ordering::Relaxed);
        self.ns_per_2_32_ticks
            .store(anchor.ns_per_2_32_ticks, Ordering::Relaxed);
        self.seq.store(seq + 2, Ordering::Release);
    }
}

static PUBLISHED: Published = Published::new();

/// The writers' side: whether the TSC may be used, and the reading that the
/// rate is measured from.
enum Anchoring {
    Unset,
    Fallback,
    Tsc {
        /// A paired reading at least [`MIN_BASELINE_NS`] old, when possible.
        base: (u64, u64),
        ns_per_tick: f64,
    },
}

/// The rate is measured over at least this long (two runs starting together
/// would otherwise measure it over microseconds)…
const MIN_BASELINE_NS: u64 = 20_000_000;
/// …and over at most about this long, so it follows the drift.
const MAX_BASELINE_NS: u64 = 4_000_000_000;

static ANCHORING: Mutex<Anchoring> = Mutex::new(Anchoring::Unset);

/// Anchors [`fast_monotonic_ns`] to `CLOCK_MONOTONIC` now. The first call
/// decides whether the TSC can be used and measures its rate over 20 ms.
/// Safe to call from any thread at any time: readers never see a torn anchor.
pub fn sync_fast_clock() {
    let mut anchoring = ANCHORING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    reanchor(&mut anchoring);
}

/// Whether [`fast_monotonic_ns`] reads the TSC (after the first [`sync_fast_clock`]).
pub fn fast_clock_reads_tsc() -> bool {
    let anchoring = ANCHORING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    matches!(*anchoring, Anchoring::Tsc { .. })
}

/// Re-anchors unless another thread is doing it right now (then its anchor will do).
#[cold]
#[inline(never)]
fn reanchor_if_free() {
    if let Ok(mut anchoring) = ANCHORING.try_lock() {
        reanchor(&mut anchoring);
    }
}

/// Starts the TSC's rate measurement: a paired reading now, the rate from
/// the next one [`MIN_BASELINE_NS`] later.
#[cfg(target_arch = "x86_64")]
fn measure_rate(anchoring: &mut Anchoring) {
    let base = paired_reading();
    std::thread::sleep(std::time::Duration::from_nanos(MIN_BASELINE_NS));
    *anchoring = Anchoring::Tsc {
        base,
        ns_per_tick: 0.0,
    };
}

#[cfg(target_arch = "x86_64")]
fn reanchor(anchoring: &mut Anchoring) {
    if let Anchoring::Unset = anchoring {
        if !(cpu_has_invariant_tsc() && clocksource_is_tsc()) {
            *anchoring = Anchoring::Fallback;
            return;
        }
        measure_rate(anchoring);
    }
    let Anchoring::Tsc { base, ns_per_tick } = anchoring else {
        return;
    };
    let (tsc, ns) = paired_reading();
    let baseline = ns.saturating_sub(base.1);
    if baseline >= MIN_BASELINE_NS {
        *ns_per_tick = baseline as f64 / tsc.wrapping_sub(base.0) as f64;
    }
    if baseline >= MAX_BASELINE_NS {
        *base = (tsc, ns);
    }
    PUBLISHED.store(Anchor::new(tsc, ns, *ns_per_tick));
    STAMP_PATH_DECIDED.call_once(|| {
        STAMP_RDTSCP.store(rdtscp_is_no_dearer(), Ordering::Relaxed);
    });
}

/// [`stamp`]'s path is chosen once, at the first anchor, by cost: one
/// `rdtscp` is one reading of both, but it waits for the instructions
/// before it, and on this project's KVM guests it costs 38 ns of thread
/// time against 28 ns for `rdtsc` + the vDSO's `sched_getcpu` (which reads
/// `TSC_AUX` with `rdpid`). Where it is no dearer, its single reading wins.
#[cfg(target_arch = "x86_64")]
fn rdtscp_is_no_dearer() -> bool {
    if !cpu_has_rdtscp() {
        return false;
    }
    // The least of a few rounds: a preemption inflates a round, never shrinks it.
    let cost = |read: &dyn Fn() -> Option<Stamp>| {
        (0..5)
            .map(|_| {
                let t0 = monotonic_ns();
                for _ in 0..2000 {
                    std::hint::black_box(read());
                }
                monotonic_ns() - t0
            })
            .min()
            .unwrap_or(u64::MAX)
    };
    cost(&rdtscp_stamp) <= cost(&|| Some(portable_stamp()))
}

#[cfg(target_arch = "x86_64")]
static STAMP_PATH_DECIDED: std::sync::Once = std::sync::Once::new();

#[cfg(not(target_arch = "x86_64"))]
fn reanchor(anchoring: &mut Anchoring) {
    *anchoring = Anchoring::Fallback;
}

/// The TSC is usable when it ticks at a constant rate through sleep states
/// (the CPU's word) and the kernel's own clocksource is the TSC (so the
/// kernel vouches for it being in step across CPUs).
#[cfg(target_arch = "x86_64")]
fn cpu_has_invariant_tsc() -> bool {
    cpu_flag("constant_tsc") && cpu_flag("nonstop_tsc")
}

#[cfg(target_arch = "x86_64")]
fn cpu_has_rdtscp() -> bool {
    cpu_flag("rdtscp")
}

/// Whether the kernel keeps time with the TSC.
pub fn clocksource_is_tsc() -> bool {
    std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
        .is_ok_and(|source| source.trim() == "tsc")
}

/// Whether /proc/cpuinfo's first `flags` line lists `flag`.
#[cfg(target_arch = "x86_64")]
fn cpu_flag(flag: &str) -> bool {
    std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|info| {
        info.lines()
            .find(|l| l.starts_with("flags"))
            .is_some_and(|l| l.split_whitespace().any(|f| f == flag))
    })
}

/// A TSC reading and a `CLOCK_MONOTONIC` reading taken at the same moment:
/// the tightest of a few brackets, with the clock read in its middle.
#[cfg(target_arch = "x86_64")]
fn paired_reading() -> (u64, u64) {
    (0..16)
        .map(|_| {
            let before = rdtsc();
            let ns = monotonic_ns();
            let after = rdtsc();
            (after - before, before + (after - before) / 2, ns)
        })
        .min()
        .map(|(_, tsc, ns)| (tsc, ns))
        .unwrap_or((rdtsc(), monotonic_ns()))
}

/// The TSC and `TSC_AUX`, read together by one instruction.
#[cfg(target_arch = "x86_64")]
#[inline]
fn rdtscp() -> (u64, u32) {
    let mut aux = 0u32;
    // SAFETY: RDTSCP only reads the time-stamp counter and TSC_AUX into
    // `aux`, a valid u32; callers use it only where cpuinfo lists `rdtscp`.
    let tsc = unsafe { core::arch::x86_64::__rdtscp(&mut aux) };
    (tsc, aux)
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no preconditions on x86_64; it only reads the time-stamp counter.
    #[allow(unused_unsafe)]
    unsafe {
        core::arch::x86_64::_rdtsc()
    }
}

/// CPU time consumed by this whole process (every thread), in nanoseconds.
pub fn process_cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// CPU time consumed by the calling thread, in nanoseconds.
#[inline]
pub fn thread_cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// Reads a clock that always exists (the monotonic and own-thread clocks).
#[inline]
fn clock_ns(clock: libc::clockid_t) -> u64 {
    try_clock_ns(clock).unwrap_or(0)
}

#[inline]
fn try_clock_ns(clock: libc::clockid_t) -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; a clock id the kernel does
    // not know only makes the call return an error.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// CPU time consumed so far by thread `tid` of this process, in nanoseconds,
/// exact even while it is running (the thread's `CLOCK_THREAD_CPUTIME_ID`,
/// named by the kernel's `MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED)`).
/// `None` once the thread has exited. Used by the /proc sampler, where
/// schedstat's on-CPU total lags by up to a scheduler tick.
pub fn thread_cpu_ns_of(tid: i32) -> Option<u64> {
    if tid <= 0 {
        return None;
    }
    // CPUCLOCK_PERTHREAD_MASK (4) | CPUCLOCK_SCHED (2), pid in the upper bits, inverted.
    let clock = (((!(tid as u32)) << 3) | 6) as libc::clockid_t;
    // An unknown or foreign thread clock makes the read fail with EINVAL: None.
    try_clock_ns(clock)
}

/// Asks the kernel for a short time slice (`sched_runtime` of
/// `sched_setattr`: EEVDF custom slices, Linux ≥ 6.12) for the calling
/// thread, keeping its policy and nice value. A thread that wakes often and
/// works briefly then preempts CPU-bound threads on wake-up instead of
/// waiting out their slice. Older kernels ignore the field; errors are for
/// the caller to treat as best effort.
pub fn request_short_slice(slice_ns: u64) -> io::Result<()> {
    // SAFETY: an all-zero sched_attr is a valid value of this plain C struct.
    let mut attr: libc::sched_attr = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::sched_attr>() as libc::c_uint;
    // SAFETY: `attr` is valid and writable for `size` bytes; pid 0 is the
    // calling thread; flags must be 0.
    let rc = unsafe { libc::syscall(libc::SYS_sched_getattr, 0, &raw mut attr, size, 0) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let policy = attr.sched_policy as libc::c_int;
    if policy != libc::SCHED_OTHER && policy != libc::SCHED_BATCH {
        return Err(io::Error::from(io::ErrorKind::Unsupported));
    }
    attr.size = size;
    attr.sched_flags = 0;
    attr.sched_runtime = slice_ns;
    // SAFETY: `attr` is a valid sched_attr of the size it states, read back
    // from the kernel for this thread with only the slice changed.
    let rc = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &raw mut attr, 0) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets the nice value of thread `tid` of this process (`setpriority` with
/// `PRIO_PROCESS` and a thread id acts on that one thread on Linux). Raising
/// it needs no privilege; lowering it below the current value needs
/// CAP_SYS_NICE or RLIMIT_NICE, and the kernel's refusal is returned.
pub fn set_thread_nice(tid: i32, nice: i32) -> io::Result<()> {
    let Ok(who) = libc::id_t::try_from(tid) else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    // SAFETY: setpriority takes plain integers and only changes kernel state
    // of the named thread; a bad id makes it return an error.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, who, nice) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sleeps until `CLOCK_MONOTONIC` reads `deadline_ns` (an absolute deadline,
/// so a periodic loop does not drift by its own wake-up delays), resuming
/// after signals. Returns at once if the deadline has passed.
pub fn sleep_until_monotonic_ns(deadline_ns: u64) {
    let ts = libc::timespec {
        tv_sec: (deadline_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (deadline_ns % 1_000_000_000) as libc::c_long,
    };
    loop {
        // SAFETY: `ts` is a valid timespec; with TIMER_ABSTIME the remainder
        // pointer is unused and may be null.
        let rc = unsafe {
            libc::clock_nanosleep(
                libc::CLOCK_MONOTONIC,
                libc::TIMER_ABSTIME,
                &ts,
                std::ptr::null_mut(),
            )
        };
        // clock_nanosleep returns the error number itself; only EINTR retries.
        if rc != libc::EINTR {
            return;
        }
    }
}

/// The CPU the calling thread is running on right now (`sched_getcpu`).
#[inline]
pub fn current_cpu() -> Option<usize> {
    // SAFETY: sched_getcpu takes no arguments and only reads kernel state.
    let cpu = unsafe { libc::sched_getcpu() };
    usize::try_from(cpu).ok()
}

/// Hands the allocator's free memory back to the kernel, so that resident
/// memory counts what is in use (before measuring a step's peak memory).
pub fn release_free_memory() {
    // SAFETY: malloc_trim only walks glibc's own free lists; any pad is valid.
    unsafe { libc::malloc_trim(0) };
}

/// The kernel's id of the calling thread (what `/proc/self/task/<tid>` and
/// perf records name).
pub fn gettid() -> i32 {
    // SAFETY: gettid takes no arguments and always succeeds.
    unsafe { libc::gettid() }
}

/// Context switches of the calling thread so far: (voluntary, involuntary).
pub fn thread_switches() -> (u64, u64) {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is valid and writable; RUSAGE_THREAD is supported on Linux ≥ 2.6.26.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    if rc != 0 {
        return (0, 0);
    }
    (usage.ru_nvcsw as u64, usage.ru_nivcsw as u64)
}

/// CPU time (user + system) of this process's children that have ended and
/// been waited for, and of theirs.
pub fn children_cpu_ns() -> u64 {
    rusage_cpu_ns(libc::RUSAGE_CHILDREN)
}

fn rusage_cpu_ns(who: libc::c_int) -> u64 {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is valid and writable; `who` is a RUSAGE_* constant.
    if unsafe { libc::getrusage(who, &mut usage) } != 0 {
        return 0;
    }
    let ns = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    ns(usage.ru_utime) + ns(usage.ru_stime)
}

/// The CPUs the calling thread may run on (`sched_getaffinity`), ascending.
pub fn affinity_of_current_thread() -> io::Result<Vec<usize>> {
    // SAFETY: an all-zero cpu_set_t is the empty set, a valid value.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is valid and its size is passed; pid 0 means this thread.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: CPU_ISSET only reads `set`, and every index is below its capacity.
    Ok((0..max)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect())
}

/// Restricts the calling thread to `cpus` (threads it creates afterwards inherit the mask).
pub fn set_affinity_of_current_thread(cpus: &[usize]) -> io::Result<()> {
    // SAFETY: an all-zero cpu_set_t is the empty set, a valid value.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let capacity = 8 * std::mem::size_of::<libc::cpu_set_t>();
    for &cpu in cpus.iter().filter(|&&cpu| cpu < capacity) {
        // SAFETY: `cpu` is below the set's capacity, checked above.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: `set` is a valid cpu_set_t and its size is passed; pid 0 means this thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether this process runs as root (effective uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid takes no arguments and always succeeds.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Pinned to each allowed CPU in turn, every stamp of `read` lies
    /// within `clock_gettime` readings around it (give or take the anchor's
    /// error, well under a µs) and names the CPU that `sched_getcpu` names.
    fn check_stamps(path: &'static str, read: fn() -> Stamp) {
        const SLACK_NS: u64 = 3_000;
        let cpus = affinity_of_current_thread().unwrap();
        std::thread::spawn(move || {
            for &cpu in &cpus {
                set_affinity_of_current_thread(&[cpu]).unwrap();
                for _ in 0..2000 {
                    let before = monotonic_ns();
                    let stamp = read();
                    let after = monotonic_ns();
                    assert!(
                        stamp.ns + SLACK_NS >= before && stamp.ns <= after + SLACK_NS,
                        "{path}: stamp {} ns outside [{before}, {after}] ± {SLACK_NS}",
                        stamp.ns
                    );
                    assert_eq!(stamp.cpu, current_cpu(), "{path} on CPU {cpu}");
                    assert_eq!(stamp.cpu, Some(cpu), "{path}: pinned to {cpu}");
                }
            }
        })
        .join()
        .unwrap();
    }

    #[test]
    fn portable_stamps_agree_with_the_clock_and_the_cpu() {
        sync_fast_clock();
        check_stamps("portable", portable_stamp);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn rdtscp_stamps_agree_with_the_clock_and_the_cpu() {
        sync_fast_clock();
        if !force_rdtscp_stamps() {
            let _ = writeln!(
                io::stderr(),
                "SKIPPED rdtscp_stamps_agree_with_the_clock_and_the_cpu: this CPU has no invariant \
                 TSC or no rdtscp, so stamps use clock_gettime + sched_getcpu (checked by the portable test)"
            );
            return;
        }
        check_stamps("rdtscp", || {
            loop {
                // None only while an anchor is being replaced.
                if let Some(stamp) = rdtscp_stamp() {
                    return stamp;
                }
            }
        });
        check_stamps("stamp()", stamp);
    }

    #[test]
    fn the_cpu_is_the_low_twelve_bits_of_tsc_aux() {
        assert_eq!(cpu_of_tsc_aux((3 << 12) | 5), 5);
        assert_eq!(cpu_of_tsc_aux(4095), 4095);
    }

    #[test]
    fn a_tsc_read_just_before_the_anchor_maps_just_before_it() {
        let anchor = Anchor::new(1_000_000, 5_000_000_000, 0.5);
        assert_eq!(anchor.ns_at(1_000_400), 5_000_000_200);
        // The stamp of a worker that read the TSC, then saw a newer anchor.
        assert_eq!(anchor.ns_at(999_000), 4_999_999_500, "no wrap to ~1e19");
    }

    #[test]
    fn a_published_anchor_is_read_whole_or_not_at_all() {
        // Each anchor written has its three fields equal, so a read that
        // mixes two anchors shows at once.
        let published = Published::new();
        let anchor = |k: u64| Anchor {
            tsc0: k,
            ns0: k,
            ns_per_2_32_ticks: k,
        };
        published.store(anchor(1));
        let done = std::sync::atomic::AtomicBool::new(false);
        let writing = std::sync::Barrier::new(2);
        let (whole, torn) = std::thread::scope(|s| {
            s.spawn(|| {
                writing.wait();
                let mut k = 2;
                while !done.load(Ordering::Relaxed) {
                    published.store(anchor(k));
                    k += 1;
                }
            });
            let (mut whole, mut torn) = (0u64, Vec::new());
            writing.wait();
            let until = std::time::Instant::now() + std::time::Duration::from_millis(500);
            while std::time::Instant::now() < until {
                for _ in 0..1000 {
                    match published.load() {
                        Some(a) if a == anchor(a.tsc0) => whole += 1,
                        Some(a) => torn.push(a),
                        None => {}
                    }
                }
            }
            done.store(true, Ordering::Relaxed);
            (whole, torn)
        });
        assert!(
            torn.is_empty(),
            "{} torn reads, such as {:?}",
            torn.len(),
            torn.first()
        );
        assert!(whole > 1000, "the reader saw whole anchors ({whole})");
    }
}
