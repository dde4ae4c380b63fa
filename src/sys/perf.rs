//! `perf_event_open`: the per-CPU context-switch rings of the scheduler capture.
//!
//! One [`PerfSwitchRing`] is a software dummy event opened on the calling
//! thread (`pid = 0`) for one CPU, with `inherit = 1` so that threads spawned
//! afterwards carry child events whose records land in this ring. It asks for
//! `PERF_RECORD_SWITCH` (`context_switch`), fork/exit records (`task`), and a
//! `sample_id` trailer of `TID | TIME | CPU` on every record, stamped with
//! `CLOCK_MONOTONIC`. Reading returns raw record bytes; parsing them is pure
//! code in `telemetry::sched::perf`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use pe::bindings;
use perf_event_open_sys as pe;

/// Which system call of [`PerfSwitchRing::open`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenStep {
    /// `perf_event_open` itself (EACCES / EPERM: `perf_event_paranoid` too high).
    Open,
    /// `mmap` of the ring (EPERM / ENOMEM: over the locked-memory allowance).
    Mmap,
}

/// Why a ring could not be opened.
#[derive(Debug)]
pub struct OpenError {
    pub step: OpenStep,
    pub cpu: usize,
    pub source: io::Error,
}

/// A mapped perf ring buffer of context-switch records for one CPU.
pub struct PerfSwitchRing {
    fd: OwnedFd,
    /// Further events writing into this ring (see [`PerfSwitchRing::add`]).
    more: Vec<OwnedFd>,
    base: NonNull<u8>,
    map_len: usize,
    data_offset: usize,
    data_size: usize,
    cpu: usize,
}

// SAFETY: the ring is a private mapping handle plus an fd; nothing in it is
// tied to the thread that opened it, and `&mut self` serialises reads.
unsafe impl Send for PerfSwitchRing {}

/// Bytes per memory page.
pub fn page_size() -> usize {
    // SAFETY: sysconf only reads a system constant.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size)
        .ok()
        .filter(|&s| s > 0)
        .unwrap_or(4096)
}

/// Whose switches a ring records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Watch {
    /// The calling thread and the threads it spawns from now on, enabled at once.
    Own,
    /// Process `pid` (stopped before its `exec`) and every thread and child
    /// process it starts, enabled by the kernel at its next `exec` so that
    /// capture begins with the program's first instruction.
    FromExec(i32),
    /// Thread `tid` of another process and the threads it starts from now
    /// on, enabled at once.
    Thread(i32),
    /// The calling thread alone, wherever it runs (`cpu = -1`), enabled at
    /// once and not inherited. The kernel walks a thread's events at each of
    /// its switches: this gives a thread one event, where an inherited
    /// capture gives it one per CPU. The kernel sends such an event's
    /// records to a ring of its own only (the CPU given is not used).
    Me,
    /// Every task on the CPU (`pid = -1`), enabled at once: the kernel then
    /// writes `PERF_RECORD_SWITCH_CPU_WIDE`, which names the other task too.
    /// Needs CAP_PERFMON (or root) or `perf_event_paranoid` ≤ 0.
    Cpu,
}

/// Opens a software dummy event on `cpu` for `watch` (see the module docs).
fn open_event(watch: Watch, cpu: usize) -> Result<OwnedFd, OpenError> {
    let fail = |source| OpenError {
        step: OpenStep::Open,
        cpu,
        source,
    };
    let cpu_arg = match watch {
        Watch::Me => -1,
        _ => i32::try_from(cpu).map_err(|_| fail(io::Error::from(io::ErrorKind::InvalidInput)))?,
    };
    let mut attr = bindings::perf_event_attr {
        size: std::mem::size_of::<bindings::perf_event_attr>() as u32,
        type_: bindings::PERF_TYPE_SOFTWARE,
        config: bindings::PERF_COUNT_SW_DUMMY as u64,
        sample_type: (bindings::PERF_SAMPLE_TID
            | bindings::PERF_SAMPLE_TIME
            | bindings::PERF_SAMPLE_CPU) as u64,
        clockid: libc::CLOCK_MONOTONIC,
        ..Default::default()
    };
    let (pid, from_exec) = match watch {
        Watch::Own | Watch::Me => (0, false),
        Watch::FromExec(pid) => (pid, true),
        Watch::Thread(tid) => (tid, false),
        Watch::Cpu => (-1, false),
    };
    let cpu_wide = watch == Watch::Cpu;
    attr.set_disabled(u64::from(from_exec));
    attr.set_enable_on_exec(u64::from(from_exec));
    // A CPU-wide event has no task to pass on, and every task's fork and
    // exit would only add noise: its switch records name the tasks.
    // A thread's own event is not passed on either: the kernel maps no ring
    // for an inherited event that follows its task across CPUs.
    attr.set_inherit(u64::from(!cpu_wide && watch != Watch::Me));
    attr.set_exclude_kernel(1);
    attr.set_exclude_hv(1);
    attr.set_context_switch(1);
    attr.set_task(u64::from(!cpu_wide));
    // Another program's threads are named by their `comm`, which changes at
    // exec and prctl(PR_SET_NAME): those records carry the new name.
    attr.set_comm(u64::from(!matches!(watch, Watch::Own | Watch::Me)));
    attr.set_sample_id_all(1);
    attr.set_use_clockid(1);

    // SAFETY: `attr` is a fully initialised perf_event_attr with its size
    // set; a dummy software event only produces side-band records.
    let fd = unsafe {
        pe::perf_event_open(
            &mut attr,
            pid,
            cpu_arg,
            -1,
            bindings::PERF_FLAG_FD_CLOEXEC as libc::c_ulong,
        )
    };
    if fd < 0 {
        return Err(fail(io::Error::last_os_error()));
    }
    // SAFETY: `fd` was just returned by the kernel and is owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// For `corelanes bench`: `n` events on `cpu`, without a ring, carried by
/// the calling thread and every thread and process it starts from now on:
/// what an inherited capture adds to each thread on a machine with `n` more
/// CPUs, since the kernel walks a thread's events at each of its switches.
pub fn inherited_load(cpu: usize, n: usize) -> Result<Vec<OwnedFd>, OpenError> {
    (0..n).map(|_| open_event(Watch::Own, cpu)).collect()
}

impl PerfSwitchRing {
    /// Opens the event on `cpu` for the calling thread and the threads it
    /// spawns from now on, enabled at once, with a ring of `data_pages` pages
    /// (rounded up to a power of two, as the kernel requires).
    pub fn open(cpu: usize, data_pages: usize) -> Result<Self, OpenError> {
        Self::open_for(Watch::Own, cpu, data_pages)
    }

    /// As [`PerfSwitchRing::open`], for whom `watch` names.
    pub fn open_for(watch: Watch, cpu: usize, data_pages: usize) -> Result<Self, OpenError> {
        let fd = open_event(watch, cpu)?;
        let page = page_size();
        let pages = data_pages.max(1).next_power_of_two();
        let map_len = (1 + pages) * page;
        // SAFETY: a fresh shared mapping of a perf fd; the kernel checks the
        // length (1 + 2^n pages) and we check the result below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(OpenError {
                step: OpenStep::Mmap,
                cpu,
                source: io::Error::last_os_error(),
            });
        }
        let base = NonNull::new(ptr.cast::<u8>()).expect("mmap returned null");
        let meta = base.as_ptr().cast::<bindings::perf_event_mmap_page>();
        // SAFETY: the first page of the mapping is the kernel's
        // perf_event_mmap_page; data_offset and data_size are set once at mmap
        // time and never change afterwards.
        let (offset, size) = unsafe {
            (
                std::ptr::addr_of!((*meta).data_offset).read_volatile(),
                std::ptr::addr_of!((*meta).data_size).read_volatile(),
            )
        };
        let (data_offset, data_size) = if size == 0 {
            (page, pages * page) // kernels before 4.1 leave these fields zero
        } else {
            (offset as usize, size as usize)
        };
        Ok(Self {
            fd,
            more: Vec::new(),
            base,
            map_len,
            data_offset,
            data_size,
            cpu,
        })
    }

    /// Opens one more event on this ring's CPU for `watch` and sends its
    /// records into this ring (`PERF_EVENT_IOC_SET_OUTPUT`): attaching to a
    /// process takes one event per thread and CPU, and one ring each would
    /// exhaust the locked-memory allowance after a few threads.
    pub fn add(&mut self, watch: Watch) -> Result<(), OpenError> {
        let fd = open_event(watch, self.cpu)?;
        // SAFETY: both fds are live perf events on the same CPU with the same
        // clock, as SET_OUTPUT requires; the kernel checks it and we check the result.
        let rc = unsafe { pe::ioctls::SET_OUTPUT(fd.as_raw_fd(), self.fd.as_raw_fd()) };
        if rc < 0 {
            return Err(OpenError {
                step: OpenStep::Open,
                cpu: self.cpu,
                source: io::Error::last_os_error(),
            });
        }
        self.more.push(fd);
        Ok(())
    }

    /// Closes the event the last [`PerfSwitchRing::add`] opened (a thread
    /// that could not get an event on every CPU is better left to another source).
    pub fn remove_last(&mut self) {
        self.more.pop();
    }

    /// The CPU this ring records.
    pub fn cpu(&self) -> usize {
        self.cpu
    }

    /// Bytes of record space in the ring.
    pub fn capacity(&self) -> usize {
        self.data_size
    }

    fn head_tail(&self) -> (&AtomicU64, &AtomicU64) {
        let meta = self.base.as_ptr().cast::<bindings::perf_event_mmap_page>();
        // SAFETY: data_head and data_tail are 8-byte aligned u64 fields of the
        // mapped control page, which lives as long as `self`; the kernel writes
        // data_head and reads data_tail concurrently, so both are only ever
        // accessed atomically.
        unsafe {
            (
                AtomicU64::from_ptr(std::ptr::addr_of_mut!((*meta).data_head)),
                AtomicU64::from_ptr(std::ptr::addr_of_mut!((*meta).data_tail)),
            )
        }
    }

    /// Hands every byte written since the last call to `f` where it lies in
    /// the ring, without copying: in order, as two slices (the second is
    /// empty unless the data wraps around the ring's end, where one record
    /// may straddle the two). Then frees that space for the kernel, and
    /// returns what `f` returned.
    pub fn read_with<R>(&mut self, f: impl FnOnce(&[u8], &[u8]) -> R) -> R {
        let (head_atomic, tail_atomic) = self.head_tail();
        // Acquire pairs with the kernel's barrier before it publishes data_head:
        // every record below `head` is completely written.
        let head = head_atomic.load(Ordering::Acquire);
        let tail = tail_atomic.load(Ordering::Relaxed); // only we write it
        let avail = (head.wrapping_sub(tail) as usize).min(self.data_size);
        let start = (tail % self.data_size as u64) as usize;
        let first = avail.min(self.data_size - start);
        // SAFETY: [data_offset, data_offset + data_size) is the ring inside the
        // mapping; the bytes between tail and head are complete records the
        // kernel will not touch until we advance data_tail below, after `f`
        // has returned (the slices cannot outlive this call).
        let result = unsafe {
            let data = self.base.as_ptr().add(self.data_offset);
            f(
                std::slice::from_raw_parts(data.add(start), first),
                std::slice::from_raw_parts(data, avail - first),
            )
        };
        // Release: our reads of the records happen before the kernel may reuse the space.
        tail_atomic.store(tail.wrapping_add(avail as u64), Ordering::Release);
        result
    }

    /// Stops recording (for these events and all their inherited children).
    pub fn disable(&self) -> io::Result<()> {
        for fd in std::iter::once(&self.fd).chain(&self.more) {
            // SAFETY: the fd is a live perf event fd owned by `self`.
            let rc = unsafe { pe::ioctls::DISABLE(fd.as_raw_fd(), 0) };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

impl Drop for PerfSwitchRing {
    fn drop(&mut self) {
        // SAFETY: base/map_len describe exactly the mapping made in `open`,
        // and no reference into it outlives `self`. The fd closes afterwards.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.map_len);
        }
    }
}
