//! The task each worker is running now, published in a slot that whoever
//! watches the run reads whenever it likes (each frame), so an unfinished
//! task is seen growing without any channel traffic.
//!
//! Each slot is a sequence lock: the worker (its only writer) makes the
//! sequence odd, writes, and makes it even again; a reader retries until it
//! saw the same even sequence before and after reading, so it never sees
//! half of one task and half of another.

use std::sync::atomic::{AtomicU64, Ordering, fence};

use crate::telemetry::events::InFlight;

/// No task: the id word's value.
const NONE: u64 = u64::MAX;

/// One cache line each: workers on different cores publish at every task,
/// and slots sharing a line would bounce it between their cores.
#[derive(Debug)]
#[repr(align(64))]
pub struct Slot {
    seq: AtomicU64,
    id: AtomicU64,
    start_ns: AtomicU64,
}

impl Default for Slot {
    fn default() -> Slot {
        Slot {
            seq: AtomicU64::new(0),
            id: AtomicU64::new(NONE),
            start_ns: AtomicU64::new(0),
        }
    }
}

impl Slot {
    /// Publishes the worker's current task (`None` between tasks). One writer only.
    #[inline]
    pub fn publish(&self, task: Option<InFlight>) {
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        let (id, start) = task.map_or((NONE, 0), |t| (u64::from(t.id), t.start_ns));
        self.id.store(id, Ordering::Relaxed);
        self.start_ns.store(start, Ordering::Relaxed);
        self.seq.store(seq + 2, Ordering::Release);
    }

    /// The task published last, read whole.
    pub fn read(&self) -> Option<InFlight> {
        loop {
            let before = self.seq.load(Ordering::Acquire);
            let id = self.id.load(Ordering::Relaxed);
            let start_ns = self.start_ns.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            let after = self.seq.load(Ordering::Relaxed);
            if before == after && before.is_multiple_of(2) {
                return (id != NONE).then_some(InFlight {
                    id: id as u32,
                    start_ns,
                });
            }
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn a_reader_never_sees_a_torn_task() {
        let slot = Arc::new(Slot::default());
        assert_eq!(slot.read(), None);
        let stop = Arc::new(AtomicBool::new(false));
        let (w, flag) = (slot.clone(), stop.clone());
        // The writer keeps start = 1000 × id, so a mix of two tasks shows.
        let writer = std::thread::spawn(move || {
            let mut id = 0u32;
            while !flag.load(Ordering::Relaxed) {
                id = id.wrapping_add(1) % 1_000_000;
                w.publish(Some(InFlight {
                    id,
                    start_ns: 1000 * u64::from(id),
                }));
            }
        });
        // Until many tasks were read while the writer writes (it may start late on a busy machine).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut seen = 0;
        while seen < 100_000 {
            assert!(
                std::time::Instant::now() < deadline,
                "the writer never published"
            );
            if let Some(t) = slot.read() {
                assert_eq!(t.start_ns, 1000 * u64::from(t.id), "{t:?}");
                seen += 1;
            }
        }
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        slot.publish(None);
        assert_eq!(slot.read(), None);
    }
}
