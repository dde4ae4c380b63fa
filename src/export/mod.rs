//! Files a run can be saved as: a summary JSON, the tasks as CSV, and a
//! Chrome trace (opens in Perfetto and `chrome://tracing`). PNG pictures are
//! made by the GUI, which owns the pixels.
//!
//! Each file is written by typed serialisation into a `Write`, through a
//! buffer into a temporary file beside its destination ([`write_streaming`]),
//! then renamed into place: no export is ever whole in memory, and a failure
//! never leaves a half-written file.

mod csv;
mod summary;
mod trace;

pub use csv::write_tasks_csv;
pub use summary::{Summary, write_summary_json};
pub use trace::write_chrome_trace;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::run::Recording;

/// Why a file could not be written: names the path, the real cause, and
/// advice that fits that cause.
#[derive(Debug, thiserror::Error)]
#[error("cannot write{}: {cause}. {}.", shown(path), cause.advice())]
pub struct ExportError {
    pub path: PathBuf,
    pub cause: Cause,
}

/// " PATH", or nothing for an empty path (the cause says so).
fn shown(path: &Path) -> String {
    match path.as_os_str().is_empty() {
        true => String::new(),
        false => format!(" {}", path.display()),
    }
}

/// What stood in the way, in the user's terms.
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    #[error("no file name was given")]
    EmptyPath,
    #[error("it is a folder")]
    IsAFolder,
    #[error("the folder {} does not exist", .0.display())]
    MissingFolder(PathBuf),
    #[error("{} is a file, not a folder", .0.display())]
    NotAFolder(PathBuf),
    #[error("you may not write to {}", .0.display())]
    NoPermission(PathBuf),
    #[error("{} is on a read-only file system", .0.display())]
    ReadOnly(PathBuf),
    #[error("no space is left on the disk")]
    DiskFull,
    #[error("{0}")]
    Other(std::io::Error),
}

impl Cause {
    /// What the user can do about it.
    pub fn advice(&self) -> &'static str {
        match self {
            Cause::EmptyPath => "Give a file name, such as run.json",
            Cause::IsAFolder => "Add a file name to the path, such as run.json",
            Cause::MissingFolder(_) => "Create the folder first, or choose one that exists",
            Cause::NotAFolder(_) => "Choose a file inside a folder, not inside a file",
            Cause::NoPermission(_) => {
                "Choose a folder you may write to, or get write permission on this one"
            }
            Cause::ReadOnly(_) => "Choose a folder on a disk that can be written",
            Cause::DiskFull => "Free some space on that disk, or choose a folder on another disk",
            Cause::Other(_) => "Check the path, or choose another one",
        }
    }

    /// The cause of `error`, met while writing `path`. The folder is looked
    /// at first: the temporary file's error speaks of a name the user never
    /// chose, and "no such file" does not say which folder is missing.
    fn of(path: &Path, error: std::io::Error) -> Cause {
        if path.as_os_str().is_empty() {
            return Cause::EmptyPath;
        }
        if names_a_folder(path) {
            return Cause::IsAFolder;
        }
        let folder = folder_of(path);
        match std::fs::metadata(folder) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Cause::MissingFolder(folder.to_path_buf());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
                let file = folder.ancestors().find(|a| a.is_file()).unwrap_or(folder);
                return Cause::NotAFolder(file.to_path_buf());
            }
            Ok(meta) if !meta.is_dir() => return Cause::NotAFolder(folder.to_path_buf()),
            _ => {}
        }
        let written = match is_special(path) {
            true => path,
            false => folder,
        };
        // By kind: tempfile wraps its errors to add a path, which hides the errno.
        use std::io::ErrorKind as Kind;
        match error.kind() {
            Kind::StorageFull | Kind::QuotaExceeded => Cause::DiskFull,
            Kind::PermissionDenied => Cause::NoPermission(written.to_path_buf()),
            Kind::ReadOnlyFilesystem => Cause::ReadOnly(written.to_path_buf()),
            Kind::IsADirectory => Cause::IsAFolder,
            _ => Cause::Other(error),
        }
    }
}

impl ExportError {
    pub(crate) fn new(path: &Path, error: std::io::Error) -> ExportError {
        ExportError {
            path: path.to_path_buf(),
            cause: Cause::of(path, error),
        }
    }
}

fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A path that can only be a folder's: an existing folder, or one ending in '/'.
fn names_a_folder(path: &Path) -> bool {
    path.is_dir() || path.as_os_str().as_encoded_bytes().ends_with(b"/")
}

/// Refuses, before touching the disk, a path that names no file.
fn names_a_file(path: &Path) -> Result<(), ExportError> {
    match path.as_os_str().is_empty() || names_a_folder(path) {
        true => Err(ExportError::new(
            path,
            std::io::ErrorKind::InvalidInput.into(),
        )),
        false => Ok(()),
    }
}

/// Opens a special file (see [`is_special`]) to write at its end.
fn open_in_place(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().append(true).open(path)
}

/// A device, pipe or socket (`/dev/stdout`, `/dev/full`): written in place,
/// since renaming a file over it would replace it (as root, even a device).
fn is_special(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|meta| !meta.is_file() && !meta.is_dir())
}

/// Checks, before any work, that `path` can be written (its folder exists and
/// accepts a new file), so a long run is not wasted on a bad path.
pub fn check_writable(path: &Path) -> Result<(), ExportError> {
    let fail = |error| ExportError::new(path, error);
    names_a_file(path)?;
    if is_special(path) {
        return open_in_place(path).map(drop).map_err(fail);
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

/// What writes one export of a run into a file.
pub type Render = fn(&Recording, &mut dyn Write) -> std::io::Result<()>;

/// Writes `render`'s export of `rec` to `path` (see [`write_streaming`]).
pub fn write_run(path: &Path, rec: &Recording, render: Render) -> Result<(), ExportError> {
    write_streaming(path, |out| render(rec, out))
}

/// `out` behind a small buffer of its own, for serialisers that write a
/// token at a time: each write through `dyn Write` is a call that cannot be
/// inlined, which made a pretty summary half as fast as into a `Vec`. The
/// caller flushes it, to see the error.
fn buffered(out: &mut dyn Write) -> std::io::BufWriter<&mut dyn Write> {
    std::io::BufWriter::with_capacity(64 << 10, out)
}

/// Writes `bytes` to `path` atomically (temporary file, then rename); a
/// device or a pipe is written in place.
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
    names_a_file(path)?;
    if is_special(path) {
        // Buffered too: a pipe or `/dev/stdout` would otherwise take a
        // system call per packet or event.
        let file = open_in_place(path).map_err(fail)?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        return write(&mut out).and_then(|()| out.flush()).map_err(fail);
    }
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

    /// A folder this process may not write in, whoever it runs as: root
    /// ignores mode bits, so it gets the immutable attribute (undone on drop).
    struct Unwritable {
        dir: tempfile::TempDir,
        immutable: bool,
    }

    impl Unwritable {
        fn new() -> Unwritable {
            use std::os::unix::fs::PermissionsExt;
            let dir = tempfile::tempdir().unwrap();
            let immutable = std::process::Command::new("chattr")
                .arg("+i")
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            if !immutable {
                std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555))
                    .unwrap();
            }
            assert!(
                std::fs::File::create(dir.path().join("probe")).is_err(),
                "could not make a folder unwritable here (chattr from e2fsprogs is needed as root)"
            );
            Unwritable { dir, immutable }
        }
    }

    impl Drop for Unwritable {
        fn drop(&mut self) {
            use std::os::unix::fs::PermissionsExt;
            if self.immutable {
                let _ = std::process::Command::new("chattr")
                    .arg("-i")
                    .arg(self.dir.path())
                    .status();
            }
            let _ =
                std::fs::set_permissions(self.dir.path(), std::fs::Permissions::from_mode(0o755));
        }
    }

    #[test]
    fn every_cause_is_named_with_advice_that_fits_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file.txt");
        std::fs::write(&file, "x").unwrap();
        let locked = Unwritable::new();
        let p = |s: &str| PathBuf::from(s);
        let cases: [(PathBuf, &str, &str); 6] = [
            (p(""), "no file name was given", "Give a file name"),
            (
                dir.path().to_path_buf(),
                "it is a folder",
                "Add a file name",
            ),
            (
                dir.path().join("no/such/out.json"),
                "no/such does not exist",
                "Create the folder first",
            ),
            (
                file.join("out.json"),
                "file.txt is a file, not a folder",
                "not inside a file",
            ),
            (
                locked.dir.path().join("out.json"),
                "you may not write to",
                "get write permission",
            ),
            // A real ENOSPC, as a full disk gives it, on the write itself.
            (
                p("/dev/full"),
                "no space is left on the disk",
                "Free some space",
            ),
        ];
        for (path, cause, advice) in cases {
            let checked = check_writable(&path);
            let err = write_atomically(&path, b"{}").unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains(cause) && text.contains(advice),
                "{path:?}: {text}"
            );
            assert_eq!(
                text.matches(". ").count(),
                1,
                "one cause, one advice: {text}"
            );
            if path != p("/dev/full") {
                // A full disk shows only when data is written.
                assert_eq!(checked.unwrap_err().to_string(), text, "{path:?}");
            }
        }
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "nothing left beside the one file"
        );
    }

    #[test]
    fn errors_from_the_system_map_to_their_cause() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        let cause = |errno| Cause::of(&path, std::io::Error::from_raw_os_error(errno));
        assert!(matches!(cause(libc::ENOSPC), Cause::DiskFull));
        assert!(matches!(cause(libc::EDQUOT), Cause::DiskFull));
        assert!(matches!(cause(libc::EACCES), Cause::NoPermission(f) if f == dir.path()));
        assert!(matches!(cause(libc::EPERM), Cause::NoPermission(_)));
        assert!(matches!(cause(libc::EROFS), Cause::ReadOnly(_)));
        assert!(matches!(cause(libc::EIO), Cause::Other(_)));
    }

    #[test]
    fn a_file_is_written_whole_with_the_users_umask_and_nothing_else_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("out.json");
        check_writable(&ok).unwrap();
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
