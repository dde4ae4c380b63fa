//! The tasks as CSV, one row a task, for spreadsheets and pandas.

use std::io::{self, Write};

use crate::run::Recording;

/// Writes the tasks of `rec` to `out`, a header line first.
pub fn write_tasks_csv(rec: &Recording, out: &mut dyn Write) -> io::Result<()> {
    let mut out = super::buffered(out);
    out.write_all(
        b"id,thread,thread_name,start_ns,end_ns,duration_ns,core_at_start,core_at_end,cpu_ns,ok\n",
    )?;
    for t in &rec.tasks {
        let name = rec
            .threads
            .get(t.thread as usize)
            .map_or("", |th| th.name.as_str());
        writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{}",
            t.id,
            t.thread,
            name,
            t.start_ns,
            t.end_ns,
            t.duration_ns(),
            t.core_at_start,
            t.core_at_end,
            t.cpu_ns,
            t.ok
        )?;
    }
    out.flush()
}
