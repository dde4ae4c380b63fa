//! The files one run is written to when it ends (`--json`, `--csv`,
//! `--trace`, `--pftrace`), as `corelanes run` and a scripted app take them.

use std::path::PathBuf;

use crate::export;
use crate::run::Recording;
use crate::session::{self, Machine};

const STDOUT: &str = "-";

/// Whether `path` is `-`, standing for stdout.
pub fn is_stdout(path: &std::path::Path) -> bool {
    path.as_os_str() == STDOUT
}

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
        let summary = || {
            let s = export::Summary::on(rec, &machine.allowed_cores, machine.cpu_iters_per_ms);
            serde_json::to_string_pretty(&s).expect("the summary is plain data")
        };
        if json_to_stdout {
            println!("{}", summary());
        }
        let said = |path: &std::path::Path| {
            if !json_to_stdout {
                println!("wrote {}", path.display());
            }
        };
        let renders: [(&Option<PathBuf>, &dyn Fn() -> String); 3] = [
            (&self.json, &summary),
            (&self.csv, &|| export::tasks_csv(rec)),
            (&self.trace, &|| export::chrome_trace(rec)),
        ];
        for (path, render) in renders {
            if let Some(path) = path.as_deref().filter(|p| !is_stdout(p)) {
                export::write_atomically(path, render().as_bytes())?;
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
