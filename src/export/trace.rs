//! Chrome trace-event JSON: complete ("X") events in microseconds with
//! thread-name metadata. One track per worker thread with its tasks and, when
//! the kernel's scheduling was captured, one track per core with what ran there.

use serde_json::{Value, json};

use crate::run::Recording;
use crate::telemetry::sched::SliceState;

const WORKERS_PID: u32 = 1;
const CORES_PID: u32 = 2;

pub fn chrome_trace(rec: &Recording) -> String {
    let us = |ns: u64| ns as f64 / 1000.0;
    let tid_of = |thread: usize| {
        rec.threads
            .get(thread)
            .map_or(thread as i64, |t| i64::from(t.tid))
    };
    let name_of = |thread: usize| {
        rec.threads
            .get(thread)
            .map_or_else(|| format!("worker-{thread}"), |t| t.name.clone())
    };
    let meta = |pid: u32, tid: i64, what: &str, name: &str| json!({"ph": "M", "pid": pid, "tid": tid, "name": what, "args": {"name": name}});
    let mut events: Vec<Value> = vec![meta(
        WORKERS_PID,
        0,
        "process_name",
        &format!("corelanes workers: {}", rec.title()),
    )];
    for (i, t) in rec.threads.iter().enumerate() {
        events.push(meta(WORKERS_PID, tid_of(i), "thread_name", &t.name));
        events.push(json!({"ph": "M", "pid": WORKERS_PID, "tid": tid_of(i), "name": "thread_sort_index", "args": {"sort_index": i}}));
    }
    for t in &rec.tasks {
        events.push(json!({
            "ph": "X", "cat": "task", "name": format!("task {}", t.id),
            "pid": WORKERS_PID, "tid": tid_of(t.thread as usize),
            "ts": us(t.start_ns), "dur": us(t.duration_ns()),
            "args": {"core_at_start": t.core_at_start, "core_at_end": t.core_at_end, "cpu_ns": t.cpu_ns, "ok": t.ok},
        }));
    }
    if let Some(sched) = &rec.sched {
        events.push(meta(
            CORES_PID,
            0,
            "process_name",
            "cores (kernel scheduler)",
        ));
        let mut cores: Vec<usize> = sched.slices.iter().map(|s| s.core).collect();
        cores.sort_unstable();
        cores.dedup();
        for core in cores {
            events.push(meta(
                CORES_PID,
                core as i64,
                "thread_name",
                &format!("core {core}"),
            ));
        }
        for s in sched
            .slices
            .iter()
            .filter(|s| s.state == SliceState::Running)
        {
            events.push(json!({
                "ph": "X", "cat": "sched", "name": name_of(s.thread),
                "pid": CORES_PID, "tid": s.core,
                "ts": us(s.start_ns), "dur": us(s.end_ns.saturating_sub(s.start_ns)),
                "args": {"thread": s.thread},
            }));
        }
    }
    json!({"traceEvents": events, "displayTimeUnit": "ms"}).to_string()
}
