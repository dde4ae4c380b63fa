//! One UI frame of the timeline (build + tessellate, no window) with 10 k,
//! 100 k and 1 M spans stored. Target: ≤ 8 ms per frame at 1 M.

use std::hint::black_box;

use corelanes::gui::bench::{Frame, synthetic};
use criterion::{Criterion, criterion_group, criterion_main};

fn frame(c: &mut Criterion) {
    let mut group = c.benchmark_group("ui frame (build + tessellate)");
    for spans in [10_000, 100_000, 1_000_000] {
        let mut frame = Frame::new(synthetic(spans));
        // The first frames lay out fonts: not what is measured.
        for _ in 0..5 {
            frame.run();
        }
        group.bench_function(format!("{spans} spans stored"), |b| {
            b.iter(|| black_box(frame.run()))
        });
    }
    group.finish();
}

criterion_group!(benches, frame);
criterion_main!(benches);
