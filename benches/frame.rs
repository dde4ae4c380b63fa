//! One UI frame of the timeline (build + tessellate, no window), every
//! thread time-sliced on one core (the densest lanes), at fit, zoomed, and
//! live while slices stream in. Target: ≤ 8 ms per frame at 10 M spans.

use std::hint::black_box;

use corelanes::gui::bench::{Frame, many_core, synthetic};
use criterion::{Criterion, criterion_group, criterion_main};

fn frame(c: &mut Criterion) {
    let mut group = c.benchmark_group("ui frame (build + tessellate)");
    group.sample_size(30);
    for spans in [100_000, 10_000_000] {
        let mut frame = Frame::new(synthetic(spans, false));
        group.bench_function(format!("{spans} spans, fit"), |b| {
            b.iter(|| black_box(frame.run()));
        });
        frame.zoom(0.5, 0.501);
        group.bench_function(format!("{spans} spans, zoomed"), |b| {
            b.iter(|| black_box(frame.run()));
        });
        drop(frame);
        let mut live = Frame::new(synthetic(spans, true));
        group.bench_function(
            format!("{spans} spans, live, 666 turns arriving per frame"),
            |b| {
                b.iter(|| {
                    live.ingest_live(666);
                    black_box(live.run())
                });
            },
        );
    }
    // 256 CPUs in 16 cache groups, 1 000 threads: the many-core view
    // (summary lane, folded groups), synthetic.
    let mut frame = Frame::new(many_core(10_000_000));
    group.bench_function("256 cpus, 1000 threads, 10000000 spans, fit", |b| {
        b.iter(|| black_box(frame.run()));
    });
    frame.zoom(0.5, 0.501);
    group.bench_function("256 cpus, 1000 threads, 10000000 spans, zoomed", |b| {
        b.iter(|| black_box(frame.run()));
    });
    group.finish();
}

criterion_group!(benches, frame);
criterion_main!(benches);
