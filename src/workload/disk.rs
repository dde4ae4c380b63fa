//! The disk workload: real writes made durable with `fsync`.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::TaskBody;

const BLOCK: usize = 64 * 1024;

/// Each task writes 64 KiB blocks to its own file, each followed by `fsync`,
/// until the task duration has passed (at least one block). The directory is
/// removed when the run's plan is dropped, even after a panic or a cancel.
pub struct FsyncWrites {
    dir: tempfile::TempDir,
    dur: Duration,
}

impl FsyncWrites {
    pub fn new(dur: Duration) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("corelanes-disk-")
            .tempdir()
            .map_err(|e| {
                format!("cannot create a temporary directory for the disk workload: {e}")
            })?;
        Ok(FsyncWrites { dir, dur })
    }
}

impl TaskBody for FsyncWrites {
    fn run(&self, task: usize, cancel: &AtomicBool) -> Result<(), String> {
        let path = self.dir.path().join(format!("task-{task}.bin"));
        let deadline = Instant::now() + self.dur;
        let block = vec![task as u8; BLOCK];
        let result = (|| -> std::io::Result<()> {
            let mut file = std::fs::File::create(&path)?;
            loop {
                file.write_all(&block)?;
                file.sync_data()?;
                if Instant::now() >= deadline || cancel.load(Ordering::Relaxed) {
                    return Ok(());
                }
            }
        })();
        let _ = std::fs::remove_file(&path);
        result.map_err(|e| format!("disk write in {} failed: {e}", self.dir.path().display()))
    }
}
