//! Starting another program stopped just before its `exec`, so that the
//! scheduler capture can be opened on it first, and signalling it.

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::thread::JoinHandle;

/// A child process forked and waiting, before `exec`, for [`Gated::release`].
/// Dropped without release, the child gives up and never runs the program.
pub struct Gated {
    pid: i32,
    gate: io::PipeWriter,
    spawner: JoinHandle<io::Result<Child>>,
}

impl Gated {
    /// The child's pid (also the program's, once it has exec'd).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Lets the child `exec` the program; returns it once it has (or the
    /// error if `exec` failed, e.g. no such program).
    pub fn release(mut self) -> io::Result<Child> {
        self.gate.write_all(&[1])?;
        drop(self.gate);
        self.spawner
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the spawning thread panicked")))
    }
}

/// Forks `command` with a hook that runs in the child before `exec`: it
/// reports its pid and waits for one byte on a pipe. `Command::spawn` returns
/// only after `exec`, so it runs on a helper thread while the caller gets the
/// pid from the pipe.
pub fn spawn_gated(mut command: Command) -> io::Result<Gated> {
    let (mut pid_rx, pid_tx) = io::pipe()?;
    let (gate_rx, gate_tx) = io::pipe()?;
    let (pid_fd, gate_read_fd, gate_write_fd) =
        (pid_tx.as_raw_fd(), gate_rx.as_raw_fd(), gate_tx.as_raw_fd());
    let hook = move || -> io::Result<()> {
        // Runs in the forked child: only async-signal-safe calls, no allocation.
        // SAFETY: closes the child's copy of the gate's write end (so that a
        // parent that goes away without releasing reads as end of file) and
        // uses only fds inherited from the parent, open in this process.
        unsafe {
            libc::close(gate_write_fd);
            let pid = libc::getpid().to_ne_bytes();
            if libc::write(pid_fd, pid.as_ptr().cast(), pid.len()) != pid.len() as isize {
                return Err(io::Error::last_os_error());
            }
            let mut byte = 0u8;
            loop {
                match libc::read(gate_read_fd, (&raw mut byte).cast(), 1) {
                    1 => return Ok(()),
                    -1 if *libc::__errno_location() == libc::EINTR => {}
                    // Not released: do not run the program unrecorded.
                    _ => return Err(io::Error::from_raw_os_error(libc::ECANCELED)),
                }
            }
        }
    };
    // SAFETY: the hook only makes async-signal-safe calls (close, getpid,
    // write, read) on fds that stay open until `spawn` returns, as `pre_exec` requires.
    unsafe {
        command.pre_exec(hook);
    }
    let spawner = std::thread::Builder::new()
        .name("corelanes-spawn".into())
        .spawn(move || {
            let child = command.spawn();
            // The pipes' ends the hook used live until the child has exec'd.
            drop((pid_tx, gate_rx));
            child
        })?;
    let mut pid = [0u8; 4];
    if let Err(e) = pid_rx.read_exact(&mut pid) {
        // The fork failed: the spawner says why.
        drop(gate_tx);
        return Err(spawner.join().ok().and_then(Result::err).unwrap_or(e));
    }
    Ok(Gated {
        pid: i32::from_ne_bytes(pid),
        gate: gate_tx,
        spawner,
    })
}

/// Sends `signal` to process `pid`.
pub fn send_signal(pid: i32, signal: i32) -> io::Result<()> {
    // SAFETY: kill only asks the kernel to deliver a signal; a stale pid or
    // one we may not signal makes it return an error.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// This process's limits on open files: (soft, hard).
fn open_files_limits() -> io::Result<libc::rlimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(limit)
}

/// Raises this process's soft limit on open files to its hard limit (one
/// perf event per thread and CPU adds up fast) and returns the new soft limit.
pub fn raise_open_files_limit() -> io::Result<u64> {
    let mut limit = open_files_limits()?;
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: `limit` is a valid rlimit whose soft value does not exceed its hard one.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(limit.rlim_cur)
}

/// The soft limit on open files (`ulimit -n`).
pub fn open_files_limit() -> io::Result<u64> {
    open_files_limits().map(|l| l.rlim_cur)
}

/// How many more files this process may open now: the soft limit less the
/// descriptors open (`/proc/self/fd`; `None` if either cannot be read).
pub fn spare_fds() -> Option<u64> {
    let limit = open_files_limit().ok()?;
    // The directory's own descriptor is counted while it is read, and closed after.
    let open = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    Some(limit.saturating_sub(open.saturating_sub(1)))
}
