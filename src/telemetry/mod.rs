//! Where the data comes from: task events sent by the workers, the kernel's
//! record of scheduling, and system-wide utilisation.

pub mod events;
pub mod sched;
pub mod thread_stats;
pub mod utilisation;
