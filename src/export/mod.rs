//! Files a run can be saved as: a summary JSON, the tasks as CSV, and a
//! Chrome trace (opens in Perfetto and `chrome://tracing`). PNG pictures are
//! made by the GUI, which owns the pixels.
//!
//! Every file is written to a temporary file beside its destination and
//! renamed into place, so a failure never leaves a half-written file.

mod csv;
mod summary;
mod trace;

pub use csv::tasks_csv;
pub use summary::{Summary, summary_json};
pub use trace::chrome_trace;

use std::io::Write;
use std::path::{Path, PathBuf};

/// Why a file could not be written: names the path and what to do. The
/// reason is part of the sentence (not a `source`), so it is said once.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {reason}. Choose a folder that exists and that you may write to.", path.display())]
pub struct ExportError {
    pub path: PathBuf,
    pub reason: std::io::Error,
}

impl ExportError {
    /// Names the real cause: the temporary file's error speaks of a random
    /// name the user never chose, so look at the folder itself first.
    fn new(path: &Path, error: std::io::Error) -> ExportError {
        let folder = folder_of(path);
        let reason = match std::fs::metadata(folder) {
            Err(missing) => std::io::Error::new(
                missing.kind(),
                format!("the folder {} cannot be used ({missing})", folder.display()),
            ),
            Ok(meta) if !meta.is_dir() => std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                format!("{} is not a folder", folder.display()),
            ),
            Ok(_) => match error.raw_os_error() {
                Some(code) => std::io::Error::from_raw_os_error(code),
                None => std::io::Error::from(error.kind()),
            },
        };
        ExportError {
            path: path.to_path_buf(),
            reason,
        }
    }
}

fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Checks, before any work, that `path` can be written (its folder exists and
/// accepts a new file), so a long run is not wasted on a bad path.
pub fn check_writable(path: &Path) -> Result<(), ExportError> {
    let fail = |error| ExportError::new(path, error);
    if path.is_dir() {
        return Err(fail(std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            "it is a folder",
        )));
    }
    temp_file_beside(path).map(drop).map_err(fail)
}

/// A temporary file in `path`'s folder, created with mode 0666 so that the
/// kernel applies the user's umask, as for any file a program saves
/// (tempfile's own default, 0600, would hide exports from other users).
fn temp_file_beside(path: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::PermissionsExt;
    tempfile::Builder::new()
        .prefix(".corelanes-")
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(folder_of(path))
}

/// Writes `bytes` to `path` atomically (temporary file, then rename).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    write_streaming(path, |out| out.write_all(bytes))
}

/// Writes what `write` produces to `path` through a buffer into a temporary
/// file beside it, then renames it into place: large exports stream, and a
/// failure half way leaves nothing behind.
pub fn write_streaming(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), ExportError> {
    let fail = |error| ExportError::new(path, error);
    let file = temp_file_beside(path).map_err(fail)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    write(&mut out).map_err(fail)?;
    let file = out.into_inner().map_err(|e| fail(e.into_error()))?;
    file.as_file().sync_all().map_err(fail)?;
    file.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwritable_paths_are_refused_and_nothing_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no/such/folder/out.json");
        let err = check_writable(&missing).unwrap_err();
        assert!(err.to_string().contains("no/such/folder/out.json"), "{err}");
        assert!(write_atomically(&missing, b"x").is_err());
        assert!(
            check_writable(dir.path()).is_err(),
            "a folder is not a file"
        );
        let ok = dir.path().join("out.json");
        write_atomically(&ok, b"{}").unwrap();
        assert_eq!(std::fs::read(&ok).unwrap(), b"{}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&ok).unwrap().permissions().mode();
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let umask = status
            .lines()
            .find_map(|l| l.strip_prefix("Umask:"))
            .and_then(|m| u32::from_str_radix(m.trim(), 8).ok())
            .unwrap();
        assert_eq!(
            mode & 0o777,
            0o666 & !umask,
            "as any saved file: 0666 less the umask"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }
}
