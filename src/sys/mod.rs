//! The only place that talks to the kernel through raw `libc` calls.
//!
//! Every `unsafe` block of the crate lives in this module (and its `perf`
//! child), each with a `// SAFETY:` note; everything exported is safe to call.

pub mod perf;

use std::io;

/// Nanoseconds of `CLOCK_MONOTONIC`: the one clock every timestamp uses
/// (`std::time::Instant` reads the same clock but hides the raw value, and
/// `perf_event_open` can be told to stamp records with it).
#[inline]
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// CPU time consumed by the calling thread, in nanoseconds.
#[inline]
pub fn thread_cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

#[inline]
fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock ids used here are
    // supported on every Linux this crate targets, so the call cannot fail.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
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
