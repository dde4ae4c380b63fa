//! The cost of one UI frame (build + tessellate) with many spans stored,
//! measured without a window: shared by `corelanes bench` and `benches/frame.rs`.

use std::time::Instant;

use eframe::egui;
use egui::{Context, Event, RawInput, Rect, pos2, vec2};

use super::timeline::{RunView, TimelineView};
use crate::run::{Recording, RunConfig};
use crate::telemetry::events::{RunEvent, TaskSink, ThreadRecord};
use crate::telemetry::sched::SchedSource;
use crate::topology::Topology;

/// Screen size of the measured frame, in points.
const SCREEN: [f32; 2] = [1600.0, 1000.0];

/// A finished two-thread recording holding `spans` spans (each task is
/// stored twice: on its thread's lane and on its core's lane).
pub fn synthetic(spans: usize) -> Recording {
    let threads = 2;
    let mut rec = Recording::new(RunConfig {
        threads,
        ..RunConfig::defaults(Topology::get())
    });
    rec.ingest(RunEvent::Started {
        origin_ns: 1,
        threads: (0..threads)
            .map(|index| ThreadRecord {
                index,
                name: format!("worker-{index}"),
                pinned_core: Some(index),
                ..ThreadRecord::default()
            })
            .collect(),
        sched_source: SchedSource::Off,
        sched_note: None,
    });
    let tasks: Vec<usize> = (0..spans / 2).collect();
    for chunk in tasks.chunks(TaskSink::BATCH) {
        rec.ingest(RunEvent::Tasks(
            chunk
                .iter()
                .map(|&i| crate::bench::sample_task(i, threads))
                .collect(),
        ));
    }
    rec.ingest(RunEvent::Finished {
        wall_ns: rec.wall_ns,
        cancelled: false,
    });
    rec
}

/// A headless egui context drawing the timeline of one recording.
pub struct Frame {
    ctx: Context,
    view: TimelineView,
    rec: Recording,
}

impl Frame {
    pub fn new(rec: Recording) -> Frame {
        Frame {
            ctx: Context::default(),
            view: TimelineView::default(),
            rec,
        }
    }

    /// Builds and tessellates one frame with the pointer over a lane (so the
    /// hover path and its tooltip are part of the cost); returns the number
    /// of primitives.
    pub fn run(&mut self) -> usize {
        let input = RawInput {
            screen_rect: Some(Rect::from_min_size(
                pos2(0.0, 0.0),
                vec2(SCREEN[0], SCREEN[1]),
            )),
            events: vec![Event::PointerMoved(pos2(SCREEN[0] / 2.0, 120.0))],
            ..RawInput::default()
        };
        let (view, rec) = (&mut self.view, &self.rec);
        let runs = [RunView {
            index: 0,
            rec,
            caption: rec.title(),
        }];
        let mut output = self.ctx.run_ui(input, |ui| {
            egui::CentralPanel::default().show(ui, |ui| view.ui(ui, &runs));
        });
        // No renderer takes the font atlas: dropping its updates is intended.
        output.textures_delta.clear();
        self.ctx
            .tessellate(output.shapes, output.pixels_per_point)
            .len()
    }
}

/// Median milliseconds per frame with each number of spans stored.
pub fn frame_times(spans: &[usize]) -> Vec<(usize, f64)> {
    spans
        .iter()
        .map(|&n| {
            let mut frame = Frame::new(synthetic(n));
            // The first frames lay out fonts: not what is measured.
            for _ in 0..5 {
                frame.run();
            }
            let mut ms: Vec<f64> = (0..30)
                .map(|_| {
                    let t0 = Instant::now();
                    std::hint::black_box(frame.run());
                    t0.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            (n, crate::bench::median(&mut ms))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_recordings_store_the_asked_spans_and_draw() {
        let rec = synthetic(10_000);
        assert_eq!(rec.timeline.len(), 10_000);
        let mut frame = Frame::new(rec);
        assert!(frame.run() > 0);
    }
}
