//! Chrome trace-event JSON: complete ("X") events in microseconds with
//! thread-name metadata. One track per worker thread with its tasks and, when
//! the kernel's scheduling was captured, one track per core with what ran there.
//!
//! Written one typed event at a time: a run of millions of slices never sits
//! in memory as JSON. Keys come in alphabetical order, as they always have.

use std::collections::BTreeSet;
use std::fmt::Display;
use std::io::{self, BufWriter, Write};

use serde::Serialize;

use crate::run::Recording;
use crate::telemetry::sched::{SchedSlice, SliceState};

const WORKERS_PID: u32 = 1;
const CORES_PID: u32 = 2;

/// One trace event; the fields a kind of event lacks are left out.
#[derive(Serialize)]
#[serde(bound(serialize = "A: Serialize, N: Display"))]
struct Event<A, N> {
    args: A,
    #[serde(skip_serializing_if = "Option::is_none")]
    cat: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dur: Option<f64>,
    #[serde(serialize_with = "as_text")]
    name: N,
    ph: &'static str,
    pid: u32,
    tid: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    ts: Option<f64>,
}

/// Names are written as they are formatted, with no `String` per event.
fn as_text<S: serde::Serializer>(name: &impl Display, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(name)
}

#[derive(Serialize)]
struct Name<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct SortIndex {
    sort_index: usize,
}

#[derive(Serialize)]
struct TaskArgs {
    core_at_end: u32,
    core_at_start: u32,
    cpu_ns: u64,
    ok: bool,
}

#[derive(Serialize)]
struct SliceArgs {
    thread: usize,
}

/// A task's name, "task ID".
struct TaskName(u32);

impl Display for TaskName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "task {}", self.0)
    }
}

/// A worker's name, or "worker-INDEX" for one the run did not list.
struct ThreadName<'a>(&'a Recording, usize);

impl Display for ThreadName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.threads.get(self.1) {
            Some(t) => f.write_str(&t.name),
            None => write!(f, "worker-{}", self.1),
        }
    }
}

/// Metadata naming a process or thread (`what`: `process_name`, `thread_name`).
fn meta<'a>(
    pid: u32,
    tid: i64,
    what: &'static str,
    name: &'a str,
) -> Event<Name<'a>, &'static str> {
    metadata(pid, tid, what, Name { name })
}

/// A metadata ("M") event.
fn metadata<A>(pid: u32, tid: i64, what: &'static str, args: A) -> Event<A, &'static str> {
    Event {
        args,
        cat: None,
        dur: None,
        name: what,
        ph: "M",
        pid,
        tid,
        ts: None,
    }
}

/// A complete ("X") event over `span` (start, end ns).
fn complete<A, N>(
    cat: &'static str,
    name: N,
    pid: u32,
    tid: i64,
    span: (u64, u64),
    args: A,
) -> Event<A, N> {
    let us = |ns: u64| ns as f64 / 1000.0;
    Event {
        args,
        cat: Some(cat),
        dur: Some(us(span.1.saturating_sub(span.0))),
        name,
        ph: "X",
        pid,
        tid,
        ts: Some(us(span.0)),
    }
}

/// Writes the events of a JSON array, a comma before all but the first.
struct Events<'a> {
    out: BufWriter<&'a mut dyn Write>,
    first: bool,
}

impl Events<'_> {
    fn put(&mut self, event: &impl Serialize) -> io::Result<()> {
        if !std::mem::take(&mut self.first) {
            self.out.write_all(b",")?;
        }
        serde_json::to_writer(&mut self.out, event).map_err(io::Error::from)
    }
}

/// Writes `rec` as a Chrome trace to `out`: the same JSON the whole-`String`
/// rendering gave, keys in the same (alphabetical) order.
pub fn write_chrome_trace(rec: &Recording, out: &mut dyn Write) -> io::Result<()> {
    let tid_of = |thread: usize| {
        rec.threads
            .get(thread)
            .map_or(thread as i64, |t| i64::from(t.tid))
    };
    let mut out = super::buffered(out);
    out.write_all(br#"{"displayTimeUnit":"ms","traceEvents":["#)?;
    let mut events = Events { out, first: true };
    let title = format!("corelanes workers: {}", rec.title());
    events.put(&meta(WORKERS_PID, 0, "process_name", &title))?;
    for (i, t) in rec.threads.iter().enumerate() {
        events.put(&meta(WORKERS_PID, tid_of(i), "thread_name", &t.name))?;
        let sort = SortIndex { sort_index: i };
        events.put(&metadata(WORKERS_PID, tid_of(i), "thread_sort_index", sort))?;
    }
    for t in &rec.tasks {
        let args = TaskArgs {
            core_at_end: t.core_at_end,
            core_at_start: t.core_at_start,
            cpu_ns: t.cpu_ns,
            ok: t.ok,
        };
        let (tid, span) = (tid_of(t.thread as usize), (t.start_ns, t.end_ns));
        events.put(&complete(
            "task",
            TaskName(t.id),
            WORKERS_PID,
            tid,
            span,
            args,
        ))?;
    }
    if let Some(sched) = &rec.sched {
        events.put(&meta(
            CORES_PID,
            0,
            "process_name",
            "cores (kernel scheduler)",
        ))?;
        let cores: BTreeSet<usize> = sched.slices.iter().map(SchedSlice::core).collect();
        for core in cores {
            let name = format!("core {core}");
            events.put(&meta(CORES_PID, core as i64, "thread_name", &name))?;
        }
        let running = sched
            .slices
            .iter()
            .filter(|s| s.state == SliceState::Running);
        for s in running {
            let args = SliceArgs { thread: s.thread() };
            let name = ThreadName(rec, s.thread());
            let span = (s.start_ns, s.end_ns);
            events.put(&complete(
                "sched",
                name,
                CORES_PID,
                s.core as i64,
                span,
                args,
            ))?;
        }
    }
    events.out.write_all(b"]}")?;
    events.out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{Placement, RunConfig};
    use crate::telemetry::events::{RunEvent, TaskRecord, ThreadRecord};
    use crate::telemetry::sched::{SchedReport, SchedSlice, SchedSource};
    use crate::workload::WorkloadKind;

    /// Two workers on one core, a task each, and three kernel slices, one of
    /// a worker the run does not list.
    fn small_run() -> Recording {
        let mut rec = Recording::new(RunConfig {
            workload: WorkloadKind::Cpu,
            threads: 2,
            tasks: 2,
            task_ms: 1.0,
            placement: Placement::OneCore(3),
            serial: 0.1,
            sched: crate::telemetry::sched::SchedMode::Auto,
            system_wide: false,
            task_iters: None,
            until_stop: false,
        });
        let thread = |index: usize| ThreadRecord {
            index,
            name: format!("w\"{index}"),
            tid: 11 + index as i32,
            ..ThreadRecord::default()
        };
        rec.ingest(RunEvent::Started {
            origin_ns: 5,
            threads: vec![thread(0), thread(1)],
            sched_source: SchedSource::Perf,
            sched_note: None,
        });
        let task = |id: u32, start_ns: u64| TaskRecord {
            id,
            thread: id,
            start_ns,
            end_ns: start_ns + 1500,
            core_at_start: 3,
            core_at_end: 3,
            cpu_ns: 1234,
            ok: id == 0,
        };
        rec.ingest(RunEvent::Tasks(vec![task(0, 0), task(1, 2001)]));
        let slice = |thread: usize, state: SliceState, start_ns: u64| {
            SchedSlice::new(thread, 3, state, start_ns, start_ns + 1000)
        };
        let slices = vec![
            slice(0, SliceState::Running, 0),
            slice(0, SliceState::Runnable, 1000),
            slice(5, SliceState::Running, 1000),
        ];
        rec.ingest(RunEvent::Sched(SchedReport::of_slices(
            SchedSource::Perf,
            slices,
            Vec::new(),
        )));
        rec
    }

    #[test]
    fn the_trace_is_written_as_it_always_was() {
        let mut out = Vec::new();
        write_chrome_trace(&small_run(), &mut out).unwrap();
        // What the whole-`String` rendering (a `serde_json::Value` per event) gave.
        let expected = concat!(
            r#"{"displayTimeUnit":"ms","traceEvents":["#,
            r#"{"args":{"name":"corelanes workers: cpu · 2 threads · one core (3)"},"name":"process_name","ph":"M","pid":1,"tid":0},"#,
            r#"{"args":{"name":"w\"0"},"name":"thread_name","ph":"M","pid":1,"tid":11},"#,
            r#"{"args":{"sort_index":0},"name":"thread_sort_index","ph":"M","pid":1,"tid":11},"#,
            r#"{"args":{"name":"w\"1"},"name":"thread_name","ph":"M","pid":1,"tid":12},"#,
            r#"{"args":{"sort_index":1},"name":"thread_sort_index","ph":"M","pid":1,"tid":12},"#,
            // A perf run's task CPU times are its thread's running slices inside
            // the task: thread 0 ran 1 µs of task 0; thread 1 never ran.
            r#"{"args":{"core_at_end":3,"core_at_start":3,"cpu_ns":1000,"ok":true},"cat":"task","dur":1.5,"name":"task 0","ph":"X","pid":1,"tid":11,"ts":0.0},"#,
            r#"{"args":{"core_at_end":3,"core_at_start":3,"cpu_ns":0,"ok":false},"cat":"task","dur":1.5,"name":"task 1","ph":"X","pid":1,"tid":12,"ts":2.001},"#,
            r#"{"args":{"name":"cores (kernel scheduler)"},"name":"process_name","ph":"M","pid":2,"tid":0},"#,
            r#"{"args":{"name":"core 3"},"name":"thread_name","ph":"M","pid":2,"tid":3},"#,
            r#"{"args":{"thread":0},"cat":"sched","dur":1.0,"name":"w\"0","ph":"X","pid":2,"tid":3,"ts":0.0},"#,
            r#"{"args":{"thread":5},"cat":"sched","dur":1.0,"name":"worker-5","ph":"X","pid":2,"tid":3,"ts":1.0}"#,
            "]}"
        );
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn a_failing_writer_stops_the_trace_with_its_error() {
        let mut full = [0u8; 100];
        let err = write_chrome_trace(&small_run(), &mut full.as_mut_slice()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WriteZero);
    }
}
