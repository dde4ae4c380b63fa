//! The only place that talks to the kernel through raw `libc` calls.
//!
//! Every `unsafe` block of the crate lives in this module (and its `perf`
//! child), each with a `// SAFETY:` note; everything exported is safe to call.
//! The crate denies `unsafe_code` everywhere else (see `Cargo.toml`'s lints).
#![allow(unsafe_code)]

pub mod perf;

use std::io;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

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
/// mapped linearly onto `CLOCK_MONOTONIC` (anchored by [`sync_fast_clock`] at
/// every run start, so the error stays within a few µs over a run).
/// Elsewhere it is [`monotonic_ns`].
#[inline]
pub fn fast_monotonic_ns() -> u64 {
    #[cfg(target_arch = "x86_64")]
    if FAST.state.load(Ordering::Relaxed) == TSC {
        let ticks = rdtsc().wrapping_sub(FAST.tsc0.load(Ordering::Relaxed));
        let ns_per_tick = f64::from_bits(FAST.ns_per_tick.load(Ordering::Relaxed));
        return FAST.ns0.load(Ordering::Relaxed) + (ticks as f64 * ns_per_tick) as u64;
    }
    monotonic_ns()
}

const UNSET: u8 = 0;
const TSC: u8 = 1;
const FALLBACK: u8 = 2;

/// The TSC → `CLOCK_MONOTONIC` map; written only by [`sync_fast_clock`],
/// which runs while no worker is reading it.
struct FastClock {
    state: AtomicU8,
    tsc0: AtomicU64,
    ns0: AtomicU64,
    ns_per_tick: AtomicU64,
    /// The first anchor: later syncs measure the frequency over all the time since.
    first_tsc: AtomicU64,
    first_ns: AtomicU64,
}

static FAST: FastClock = FastClock {
    state: AtomicU8::new(UNSET),
    tsc0: AtomicU64::new(0),
    ns0: AtomicU64::new(0),
    ns_per_tick: AtomicU64::new(0),
    first_tsc: AtomicU64::new(0),
    first_ns: AtomicU64::new(0),
};

/// Anchors [`fast_monotonic_ns`] to `CLOCK_MONOTONIC` now. The first call
/// decides whether the TSC can be used and measures its rate over 20 ms.
pub fn sync_fast_clock() {
    #[cfg(target_arch = "x86_64")]
    {
        let state = FAST.state.load(Ordering::Relaxed);
        if state == FALLBACK || (state == UNSET && !tsc_is_trusted()) {
            FAST.state.store(FALLBACK, Ordering::Relaxed);
            return;
        }
        if state == UNSET {
            let (tsc, ns) = paired_reading();
            FAST.first_tsc.store(tsc, Ordering::Relaxed);
            FAST.first_ns.store(ns, Ordering::Relaxed);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let (tsc, ns) = paired_reading();
        let ticks = tsc.wrapping_sub(FAST.first_tsc.load(Ordering::Relaxed));
        let elapsed = ns - FAST.first_ns.load(Ordering::Relaxed);
        FAST.ns_per_tick
            .store((elapsed as f64 / ticks as f64).to_bits(), Ordering::Relaxed);
        FAST.tsc0.store(tsc, Ordering::Relaxed);
        FAST.ns0.store(ns, Ordering::Relaxed);
        FAST.state.store(TSC, Ordering::Release);
    }
    #[cfg(not(target_arch = "x86_64"))]
    FAST.state.store(FALLBACK, Ordering::Relaxed);
}

/// The TSC is usable when it ticks at a constant rate through sleep states and
/// the kernel's own clocksource is the TSC (so the kernel vouches for it).
#[cfg(target_arch = "x86_64")]
fn tsc_is_trusted() -> bool {
    let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let source =
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .unwrap_or_default();
    flags.contains(" constant_tsc") && flags.contains(" nonstop_tsc") && source.trim() == "tsc"
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

#[cfg(target_arch = "x86_64")]
#[inline]
fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no preconditions on x86_64; it only reads the time-stamp counter.
    #[allow(unused_unsafe)]
    unsafe {
        core::arch::x86_64::_rdtsc()
    }
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

/// The CPU the calling thread is running on right now (`sched_getcpu`).
#[inline]
pub fn current_cpu() -> Option<usize> {
    // SAFETY: sched_getcpu takes no arguments and only reads kernel state.
    let cpu = unsafe { libc::sched_getcpu() };
    usize::try_from(cpu).ok()
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
