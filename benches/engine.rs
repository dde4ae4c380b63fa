//! The engine's hot paths: recording a task event on the worker side,
//! ingesting batches into a run's recording, a lane's per-pixel shares, and
//! saving, opening and exporting a large run.

use std::hint::black_box;

use corelanes::bench::sample_task;
use corelanes::gui::bench::{started, task_batches};
use corelanes::telemetry::events::{TaskRecord, TaskSink};
use corelanes::timeline::{Lane, Mix};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn record_event(c: &mut Criterion) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut sink = TaskSink::new(tx);
    let mut i = 0usize;
    corelanes::sys::sync_fast_clock();
    c.bench_function("record one task event (clock read + batch push)", |b| {
        b.iter(|| {
            let now = corelanes::sys::fast_monotonic_ns();
            sink.record(TaskRecord {
                start_ns: now - 900,
                end_ns: now,
                ..sample_task(i, 2)
            });
            i += 1;
            if i.is_multiple_of(1 << 16) {
                while rx.try_recv().is_ok() {}
            }
        });
    });
}

/// What a worker adds to each task where the capture is perf: two stamps
/// (time and CPU) and the record; `corelanes bench` measures the same in a
/// real run.
fn per_task(c: &mut Criterion) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut sink = TaskSink::new(tx);
    let mut i = 0usize;
    corelanes::sys::sync_fast_clock();
    c.bench_function(
        "per task, worker side (two stamps with CPU + record)",
        |b| {
            b.iter(|| {
                let start = corelanes::sys::stamp();
                let end = corelanes::sys::stamp();
                sink.record(TaskRecord {
                    start_ns: start.ns,
                    end_ns: end.ns,
                    core_at_start: start.cpu.unwrap_or(0) as u32,
                    core_at_end: end.cpu.unwrap_or(0) as u32,
                    ..sample_task(i, 2)
                });
                i += 1;
                if i.is_multiple_of(1 << 16) {
                    while rx.try_recv().is_ok() {}
                }
            });
        },
    );
}

fn ingest(c: &mut Criterion) {
    const EVENTS: usize = 256 * 1024;
    let batches = task_batches(EVENTS, 2);
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("task batches into the store (recording and lanes)", |b| {
        b.iter_batched(
            || (started(2, EVENTS), batches.clone()),
            |(mut run, batches)| {
                run.ingest(batches);
                run
            },
            criterion::BatchSize::LargeInput,
        );
    });
    group.finish();
}

fn columns(c: &mut Criterion) {
    // Two threads taking turns every µs on one core, 1 M slices.
    let mut lane = Lane::default();
    for i in 0..1_000_000u64 {
        lane.push(i * 1000, i * 1000 + 1000, i as u32, (i % 2) as u16);
    }
    let bounds: Vec<u64> = (0..=1500u64).map(|k| k * 1_000_000_000 / 1500).collect();
    let mut out = vec![Mix::default(); 1500];
    let mut wide = Vec::new();
    c.bench_function("exact shares of 1 M spans in 1500 pixel columns", |b| {
        b.iter(|| {
            wide.clear();
            lane.columns(&bounds, &mut out, &mut wide, 2_000_000);
            black_box(out[0].covered_ns())
        });
    });
}

fn sessions(c: &mut Criterion) {
    // A tenth of what `corelanes bench --sessions` measures, with its peak memory.
    let rec = corelanes::bench::synthetic_run(100_000, 500_000);
    let machine = corelanes::session::Machine::this();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.pftrace");
    let mut group = c.benchmark_group("session of 100 k tasks, 500 k slices");
    group.sample_size(10);
    group.bench_function("save", |b| {
        b.iter(|| corelanes::session::save(&path, &[(&rec, &machine)]).unwrap());
    });
    group.bench_function("open", |b| {
        b.iter(|| corelanes::session::open(&path).unwrap().len());
    });
    group.bench_function("Chrome trace into memory", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            corelanes::export::write_chrome_trace(&rec, &mut out).unwrap();
            out.len()
        });
    });
    group.finish();
}

criterion_group!(benches, record_event, per_task, ingest, columns, sessions);
criterion_main!(benches);
