//! corelanes: see concurrency versus parallelism with real data from the kernel.
//!
//! *Concurrency* is dealing with many things at once (task lifetimes overlap,
//! interleaved by time-slicing, even on one core); *parallelism* is doing many
//! things at once (tasks executing at the same instant on different cores).
//! This crate runs real workloads on real, pinned threads and measures what
//! happened, so the difference is shown by measurement, never by animation.
//!
//! Data flows one way: workers and capture threads → channel → [`run::Recording`]
//! → [`timeline`] store → views (GUI, CLI, exports).
//!
//! - [`topology`]: which cores this process may use, and where each CPU sits
//!   (package, core, SMT thread, cache group, P/E), read from `/sys`.
//! - [`environment`]: the machine a run ran on (CPU, SMT, VM, kernel, load at its start).
//! - [`workload`]: what one task does (cpu, io, disk, mixed, lock, amdahl, server).
//! - [`run`]: validated experiment config, pinned worker threads, cancel, panics.
//! - [`telemetry`]: task events from workers, the kernel's scheduler capture, utilisation.
//! - [`timeline`]: the drawing store: spans per lane, range queries, folding.
//! - [`metrics`]: wall, CPU, parallelism, concurrency, speedup, Amdahl.
//! - [`sweep`]: the same work on 1..N threads.
//! - [`lesson`]: each claim (time-slicing, parallelism, Amdahl…) measured, with a verdict.
//! - [`record`]: another program, launched with capture from its `exec` or attached by PID.
//! - [`export`]: summary JSON, CSV, Chrome trace.
//! - [`session`]: runs saved as a Perfetto trace (`.pftrace`) and opened again.
//! - [`bench`]: the engine's own costs, for `corelanes bench` and `benches/`.
//! - [`sys`]: the only `unsafe` code: clocks, `sched_getcpu`, `getrusage`, perf rings.
//! - [`cli`] and [`gui`]: thin shells over the above; [`interrupt`]: their Ctrl+C.

pub mod bench;
pub mod cli;
pub mod environment;
pub mod export;
#[cfg(feature = "gui")]
pub mod gui;
pub mod interrupt;
pub mod lesson;
pub mod metrics;
pub mod outputs;
pub mod record;
pub mod retention;
pub mod run;
pub mod session;
pub mod sweep;
pub mod sys;
pub mod telemetry;
pub mod timeline;
pub mod topology;
pub mod workload;
