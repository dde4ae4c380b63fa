//! The files one run is written to when it ends (`--json`, `--csv`,
//! `--trace`, `--pftrace`), as `corelanes run` and a scripted app take them.

use std::io::Write;
use std::path::PathBuf;

use crate::export;
use crate::run::Recording;
use crate::session::{self, Machine};

const STDOUT: &str = "-";

/// Whether `path` is `-`, standing for stdout.
pub fn is_stdout(path: &std::path::Path) -> bool {
    path.as_os_str() == STDOUT
}

/// What writes one file's content.
type Writer<'a> = &'a dyn Fn(&mut dyn Write) -> std::io::Result<()>;

/// Where to write a run's summary, tasks, trace and session; `-` for the
/// summary means stdout.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outputs {
    pub json: Option<PathBuf>,
    pub csv: Option<PathBuf>,
    pub trace: Option<PathBuf>,
    pub pftrace: Option<PathBuf>,
}

impl Outputs {
    /// Whether any file (or stdout) is asked for.
    pub fn any(&self) -> bool {
        self.json.is_some() || self.csv.is_some() || self.trace.is_some() || self.pftrace.is_some()
    }

    pub fn json_to_stdout(&self) -> bool {
        self.json.as_deref().is_some_and(is_stdout)
    }

    /// Checks, before anything runs, that every file can be written.
    pub fn check_writable(&self) -> Result<(), export::ExportError> {
        let files = [&self.json, &self.csv, &self.trace, &self.pftrace];
        for path in files.into_iter().flatten().filter(|p| !is_stdout(p)) {
            export::check_writable(path)?;
        }
        Ok(())
    }

    /// Writes `rec` as asked: the summary JSON to stdout for `--json -`
    /// (stdout then carries it alone), and each file atomically, said with
    /// "wrote PATH" on stdout.
    pub fn write(&self, rec: &Recording) -> Result<(), export::ExportError> {
        self.write_on(rec, &Machine::this())
    }

    /// As [`Outputs::write`], for a run made on `machine`.
    pub fn write_on(&self, rec: &Recording, machine: &Machine) -> Result<(), export::ExportError> {
        let json_to_stdout = self.json_to_stdout();
        let summary = export::Summary::on(rec, &machine.allowed_cores, machine.cpu_iters_per_ms);
        if json_to_stdout {
            // Buffered: stdout alone flushes at every line of a pretty JSON.
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let printed = summary.write(&mut out).and_then(|()| {
                out.write_all(b"\n")?;
                out.flush()
            });
            printed.map_err(|e| export::ExportError::new("/dev/stdout".as_ref(), e))?;
        }
        let said = |path: &std::path::Path| {
            if !json_to_stdout {
                println!("wrote {}", path.display());
            }
        };
        let writers: [(&Option<PathBuf>, Writer); 3] = [
            (&self.json, &|out| summary.write(out)),
            (&self.csv, &|out| export::write_tasks_csv(rec, out)),
            (&self.trace, &|out| export::write_chrome_trace(rec, out)),
        ];
        for (path, write) in writers {
            if let Some(path) = path.as_deref().filter(|p| !is_stdout(p)) {
                export::write_streaming(path, write)?;
                said(path);
            }
        }
        if let Some(path) = &self.pftrace {
            session::save(path, &[(rec, machine)])?;
            said(path);
        }
        Ok(())
    }
}
