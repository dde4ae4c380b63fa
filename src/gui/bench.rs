//! The store's costs (ingest, memory) and one UI frame's (build +
//! tessellate) with many spans stored, measured without a window: shared by
//! `corelanes bench` and `benches/`.
//!
//! The recordings here are synthetic (made by a generator, for scale only,
//! never shown as a run): the worst case for drawing, every thread
//! time-sliced on one core, so every lane is dense everywhere.

use std::time::Instant;

use eframe::egui;
use egui::{Context, Event, RawInput, Rect, pos2, vec2};

use super::history::Entry;
use super::timeline::{RunView, TimelineView};
use crate::bench::{median, sample_task};
use crate::run::{Placement, Recording, RunConfig};
use crate::telemetry::events::{RunEvent, TaskRecord, TaskSink, ThreadRecord};
use crate::telemetry::sched::{SchedReport, SchedSlice, SchedSource, SliceState};
use crate::topology::Topology;

/// Screen size of the measured frame, in points.
const SCREEN: [f32; 2] = [1600.0, 1000.0];
const THREADS: usize = 2;
/// Each synthetic slice lasts 1 µs.
const SLICE_NS: u64 = 1_000;

/// The kernel's slices of turn `k`: thread `k % THREADS` runs on core 0
/// while the others wait for it (time order, as a live capture streams them).
fn turn(k: u64, out: &mut Vec<SchedSlice>) {
    let running = (k % THREADS as u64) as usize;
    for thread in 0..THREADS {
        let state = if thread == running {
            SliceState::Running
        } else {
            SliceState::Runnable
        };
        out.push(SchedSlice::new(
            thread,
            0,
            state,
            k * SLICE_NS,
            (k + 1) * SLICE_NS,
        ));
    }
}

/// Spans stored per turn: the running slice on the core lane, and one
/// state slice per thread.
const SPANS_PER_TURN: usize = 1 + THREADS;

/// A synthetic run of `config` that has started with perf capture: its
/// threads named `worker-i`, pinned where a one-core placement says.
fn perf_run_started(config: RunConfig) -> Entry {
    let pinned_core = match config.placement {
        Placement::OneCore(core) => Some(core),
        _ => None,
    };
    let threads = (0..config.threads)
        .map(|index| ThreadRecord {
            index,
            name: format!("worker-{index}"),
            pinned_core,
            ..ThreadRecord::default()
        })
        .collect();
    let mut run = Entry::new(Recording::new(config));
    run.ingest([RunEvent::Started {
        origin_ns: 1,
        threads,
        sched_source: SchedSource::Perf,
        sched_note: None,
    }]);
    run
}

/// A synthetic recording of `THREADS` threads time-sliced on core 0,
/// holding about `spans` spans. `live`: still running, its slices streamed
/// as a capture streams them; else finished with its complete report.
pub fn synthetic(spans: usize, live: bool) -> Entry {
    let mut rec = perf_run_started(RunConfig {
        threads: THREADS,
        placement: Placement::OneCore(0),
        ..RunConfig::defaults(Topology::get())
    });
    let turns = (spans / SPANS_PER_TURN) as u64;
    let end_ns = turns * SLICE_NS;
    // One long task per thread: its lifetime covers the run, as on one core.
    rec.ingest([RunEvent::Tasks(
        (0..THREADS)
            .map(|thread| TaskRecord {
                id: thread as u32,
                thread: thread as u32,
                start_ns: 0,
                end_ns,
                core_at_start: 0,
                core_at_end: 0,
                cpu_ns: end_ns / THREADS as u64,
                ok: true,
            })
            .collect(),
    )]);
    if live {
        let mut k = 0;
        while k < turns {
            let mut batch = Vec::new();
            for _ in 0..4096.min(turns - k) {
                turn(k, &mut batch);
                k += 1;
            }
            rec.ingest([RunEvent::Slices(batch)]);
        }
        rec.observe(1 + end_ns, Vec::new());
    } else {
        let mut slices = Vec::with_capacity(turns as usize * THREADS);
        for k in 0..turns {
            turn(k, &mut slices);
        }
        slices.sort_by_key(|s| (s.thread, s.start_ns));
        rec.ingest([
            RunEvent::Sched(SchedReport::of_slices(
                SchedSource::Perf,
                slices,
                Vec::new(),
            )),
            RunEvent::Finished {
                wall_ns: end_ns,
                cancelled: false,
            },
        ]);
    }
    rec
}

/// The synthetic many-core machine: 2 packages × 64 cores × 2 threads,
/// an L3 per 8 cores (256 CPUs in 16 groups), running 1 000 threads.
pub const MANY_CPUS: usize = 256;
pub const MANY_THREADS: usize = 1_000;
/// How long the synthetic many-core recording lasts.
const MANY_NS: u64 = 10_000_000_000;

/// A synthetic recording of [`MANY_THREADS`] unpinned threads on
/// [`MANY_CPUS`] CPUs, holding about `spans` spans, labelled synthetic
/// wherever it is shown. Each CPU time-slices its four or so threads; the
/// cache groups are busy in different patterns (some always, some in
/// phases, some mostly idle), so that grouping and the summary have
/// something to show.
pub fn many_core(spans: usize) -> Entry {
    let layout = crate::topology::Layout::synthetic(2, 64, 2, 8);
    let topo = Topology::with_layout((0..MANY_CPUS).collect(), MANY_CPUS, layout);
    let mut run = perf_run_started(RunConfig {
        threads: MANY_THREADS,
        tasks: MANY_THREADS,
        placement: Placement::Unpinned,
        ..RunConfig::defaults(Topology::get())
    });
    // Three spans a busy turn: the running slice (core lane and state
    // strip) and the runnable slice of the thread it replaced; idle
    // phases make fewer, about 2.4 a turn over the whole pattern.
    let turns = (spans as f64 / (2.4 * MANY_CPUS as f64)).max(1.0) as u64;
    let turn_ns = (MANY_NS / turns).max(1);
    let mut slices = Vec::with_capacity(spans);
    let mut per_thread = vec![crate::telemetry::sched::ThreadSched::default(); MANY_THREADS];
    for cpu in 0..MANY_CPUS {
        let group = topo.layout.place(cpu).map_or(0, |p| p.llc);
        let threads: Vec<usize> = (cpu..MANY_THREADS).step_by(MANY_CPUS).collect();
        // Each thread's state and since when, emitted as a slice when it changes.
        let mut state: Vec<(SliceState, u64)> = vec![(SliceState::Blocked, 0); threads.len()];
        for k in 0..turns {
            let t = k * turn_ns;
            let phase = (t / 400_000_000) as usize;
            let busy = group < 6
                || (group < 12 && !(phase + group).is_multiple_of(3))
                || (phase + group).is_multiple_of(5);
            let runner = (k as usize) % threads.len();
            for (j, &thread) in threads.iter().enumerate() {
                let now = match (busy, j == runner) {
                    (true, true) => SliceState::Running,
                    (true, false) => SliceState::Runnable,
                    (false, _) => SliceState::Blocked,
                };
                let (was, since) = state[j];
                if now != was || now == SliceState::Running {
                    if t > since {
                        slices.push(SchedSlice::new(thread, cpu, was, since, t));
                        if was == SliceState::Running {
                            per_thread[thread].running_ns += t - since;
                        }
                    }
                    state[j] = (now, t);
                }
            }
        }
        for (j, &thread) in threads.iter().enumerate() {
            let (was, since) = state[j];
            slices.push(SchedSlice::new(thread, cpu, was, since, MANY_NS));
        }
    }
    slices.sort_by_key(|s| (s.thread, s.start_ns));
    // One task per thread over the whole run, its CPU time the thread's running time.
    run.ingest([RunEvent::Tasks(
        (0..MANY_THREADS)
            .map(|thread| TaskRecord {
                id: thread as u32,
                thread: thread as u32,
                start_ns: 0,
                end_ns: MANY_NS,
                core_at_start: (thread % MANY_CPUS) as u32,
                core_at_end: (thread % MANY_CPUS) as u32,
                cpu_ns: per_thread[thread].running_ns,
                ok: true,
            })
            .collect(),
    )]);
    run.ingest([
        RunEvent::Sched(SchedReport::of_slices(
            SchedSource::Perf,
            slices,
            per_thread,
        )),
        RunEvent::Finished {
            wall_ns: MANY_NS,
            cancelled: false,
        },
    ]);
    run.topo = Some(std::sync::Arc::new(topo));
    run.synthetic = true;
    run
}

/// A headless egui context drawing the timeline of one recording.
pub struct Frame {
    ctx: Context,
    view: TimelineView,
    run: Entry,
    /// The next turn a live recording gets.
    next_turn: u64,
}

impl Frame {
    pub fn new(run: Entry) -> Frame {
        let next_turn = run.timeline.end_ns() / SLICE_NS;
        Frame {
            ctx: Context::default(),
            view: TimelineView::default(),
            run,
            next_turn,
        }
    }

    /// Shows `[from, to]` of the run (fractions of its length) instead of all of it.
    pub fn zoom(&mut self, from: f64, to: f64) {
        let end = self.run.timeline.end_ns() as f64;
        self.view.show_range([from * end, to * end]);
    }

    /// A live run goes on: `turns` more turns of slices arrive, as a
    /// capture streams them between two frames.
    pub fn ingest_live(&mut self, turns: u64) {
        let mut batch = Vec::new();
        for k in self.next_turn..self.next_turn + turns {
            turn(k, &mut batch);
        }
        self.next_turn += turns;
        self.run.ingest([RunEvent::Slices(batch)]);
        self.run.observe(1 + self.next_turn * SLICE_NS, Vec::new());
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
        let (view, run) = (&mut self.view, &self.run);
        let runs = [RunView {
            caption: run.rec.title(),
            ..run.view(0)
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

    pub fn entry(&self) -> &Entry {
        &self.run
    }
}

/// Median ms of `f` over 30 calls, after 5 unmeasured ones (the first frames lay out fonts).
fn median_ms(mut f: impl FnMut()) -> f64 {
    for _ in 0..5 {
        f();
    }
    let mut ms: Vec<f64> = (0..30)
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    median(&mut ms)
}

/// Frame times with one number of spans stored (median ms).
#[derive(Clone, Copy, Debug)]
pub struct FrameTimes {
    pub spans: usize,
    /// Finished run, whole run in view.
    pub fit_ms: f64,
    /// Finished run, a thousandth of it in view.
    pub zoomed_ms: f64,
    /// Running run, whole run in view, after 80 more slices per ms of frame
    /// arrived (a capture at 80 000 switches a second, at 60 frames a second).
    pub live_ms: f64,
    /// Taking in those slices, before the frame.
    pub live_ingest_ms: f64,
}

pub fn frame_times(spans: &[usize]) -> Vec<FrameTimes> {
    spans
        .iter()
        .map(|&spans| {
            let mut frame = Frame::new(synthetic(spans, false));
            let fit_ms = median_ms(|| {
                std::hint::black_box(frame.run());
            });
            frame.zoom(0.5, 0.501);
            let zoomed_ms = median_ms(|| {
                std::hint::black_box(frame.run());
            });
            drop(frame);
            let mut live = Frame::new(synthetic(spans, true));
            let per_frame = 80_000 / 60 / THREADS as u64;
            let (mut ingest, mut draw) = (Vec::new(), Vec::new());
            for round in 0..35 {
                let t0 = Instant::now();
                live.ingest_live(per_frame);
                let t1 = Instant::now();
                std::hint::black_box(live.run());
                // The first frames lay out fonts: not what is measured.
                if round >= 5 {
                    ingest.push((t1 - t0).as_secs_f64() * 1e3);
                    draw.push(t1.elapsed().as_secs_f64() * 1e3);
                }
            }
            let live_ingest_ms = median(&mut ingest);
            let live_ms = median(&mut draw);
            FrameTimes {
                spans,
                fit_ms,
                zoomed_ms,
                live_ms,
                live_ingest_ms,
            }
        })
        .collect()
}

/// Frame times of the synthetic many-core recording ([`many_core`]), in
/// median ms: (fit, still; fit, the first frame at that range; zoomed to a
/// thousandth). A still view reuses its folded groups' sums; the first frame
/// after a zoom or pan sums them again.
pub fn many_core_frame_times(spans: usize) -> (f64, f64, f64) {
    let mut frame = Frame::new(many_core(spans));
    let fit_ms = median_ms(|| {
        std::hint::black_box(frame.run());
    });
    // Two ranges a pixel apart, in turn: every frame is a new range.
    let mut turn = 0;
    let first_ms = median_ms(|| {
        turn += 1;
        frame.zoom(-0.01 - 1e-4 * f64::from(turn % 2), 1.02);
        std::hint::black_box(frame.run());
    });
    frame.zoom(0.5, 0.501);
    let zoomed_ms = median_ms(|| {
        std::hint::black_box(frame.run());
    });
    (fit_ms, first_ms, zoomed_ms)
}

/// A run about to take `tasks` task events on `threads` threads, each
/// pinned to the core its [`sample_task`](crate::bench::sample_task)s name
/// (thread i on core i), as a spread run without kernel capture.
pub fn started(threads: usize, tasks: usize) -> Entry {
    let config = RunConfig {
        threads,
        tasks,
        ..RunConfig::defaults(Topology::get())
    };
    let mut run = Entry::new(Recording::new(config));
    run.ingest([RunEvent::Started {
        origin_ns: 0,
        threads: (0..threads)
            .map(|i| ThreadRecord {
                index: i,
                pinned_core: Some(i),
                ..Default::default()
            })
            .collect(),
        sched_source: SchedSource::Off,
        sched_note: None,
    }]);
    run
}

/// Task batches as `threads` workers send them.
pub fn task_batches(events: usize, threads: usize) -> Vec<RunEvent> {
    (0..events)
        .collect::<Vec<_>>()
        .chunks(TaskSink::BATCH)
        .map(|chunk| RunEvent::Tasks(chunk.iter().map(|&i| sample_task(i, threads)).collect()))
        .collect()
}

/// Ingest of one run of task events into the store (recording and lanes).
#[derive(Clone, Copy, Debug)]
pub struct IngestRate {
    /// Task events per second of wall time…
    pub per_s: f64,
    /// …and per second of this thread's CPU time (the same on an idle
    /// machine; higher where other processes took the core).
    pub per_cpu_s: f64,
    /// ms the run's start took to reserve the memory (touched up front, so
    /// ingest does not wait for page zeroing).
    pub start_ms: f64,
    /// Tasks the recording dropped from its front past its budget (see
    /// `retention`), as a long run's are: their cost is in the rates.
    pub dropped: u64,
}

/// Task events ingested per second into the store (recording and lanes),
/// for one run of `events` tasks.
pub fn ingest_rate(events: usize) -> IngestRate {
    let threads = 2;
    let batches = task_batches(events, threads);
    let t0 = Instant::now();
    let mut run = started(threads, events);
    let start_ms = t0.elapsed().as_secs_f64() * 1e3;
    let (t0, cpu0) = (Instant::now(), crate::sys::thread_cpu_ns());
    run.ingest(batches);
    let secs = t0.elapsed().as_secs_f64();
    let cpu_secs = (crate::sys::thread_cpu_ns() - cpu0) as f64 / 1e9;
    // Tasks older than the raw window (see `retention`) are counted, not kept.
    let dropped = run.rec.dropped_tasks.items;
    assert_eq!(run.rec.tasks.len() as u64 + dropped, events as u64);
    IngestRate {
        per_s: events as f64 / secs,
        per_cpu_s: events as f64 / cpu_secs,
        start_ms,
        dropped,
    }
}

/// Prints the store's and the frame's figures (for `corelanes bench`).
pub fn print_figures(events: usize) {
    let events = events.max(1_000_000);
    let rate = ingest_rate(events);
    println!(
        "ingest into the store (recording and lanes): {:.1} M task events/s   (target ≥ 20 M/s)",
        rate.per_s / 1e6
    );
    println!(
        "  ({:.1} M/s by this thread's CPU time; {events} tasks, {} of them dropped from the \
         recording's front past its budget as in a long run; the run's start reserved and \
         touched the memory in {:.1} ms)",
        rate.per_cpu_s / 1e6,
        rate.dropped,
        rate.start_ms
    );
    for f in frame_times(&[1_000_000, 10_000_000]) {
        println!(
            "one UI frame (build + tessellate), {:>9} spans, all threads time-sliced on one core: \
             fit {:.2} ms, zoomed {:.2} ms, live {:.2} ms (+{:.2} ms taking in a frame's slices)   (target ≤ 8 ms)",
            f.spans, f.fit_ms, f.zoomed_ms, f.live_ms, f.live_ingest_ms
        );
    }
    let (fit_ms, first_ms, zoomed_ms) = many_core_frame_times(10_000_000);
    println!(
        "one UI frame, synthetic {MANY_CPUS} cpus in 16 cache groups, {MANY_THREADS} threads, 10 M spans \
         (summary lane, folded groups): fit {fit_ms:.2} ms still, {first_ms:.2} ms the first frame at a new range; \
         zoomed {zoomed_ms:.2} ms   (target ≤ 8 ms)"
    );
    let run = synthetic(10_000_000, false);
    let tl = &run.timeline;
    let heap = tl.heap();
    let per_span = |bytes: usize| bytes as f64 / tl.len() as f64;
    println!(
        "memory per stored span, summary included: {:.1} B over {} spans   (target ≤ 24 B)",
        per_span(heap.total()),
        tl.len()
    );
    println!(
        "  (of which spans {:.1} B, summary {:.1} B, spare capacity {:.1} B; the oldest spans \
         past the cap are kept only in the summary)",
        per_span(heap.spans),
        per_span(heap.summary),
        per_span(heap.spare)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_many_core_recording_is_labelled_and_every_cpu_ran() {
        let run = many_core(100_000);
        assert!(run.synthetic, "labelled synthetic");
        let topo = run.topo.clone().expect("its own machine");
        assert_eq!(topo.allowed.len(), MANY_CPUS);
        assert!(
            run.caption(0).starts_with("SYNTHETIC"),
            "{}",
            run.caption(0)
        );
        let spans = run.timeline.len();
        assert!((80_000..130_000).contains(&spans), "{spans} spans");
        // Every CPU ran some of it, and the summary counts all of it.
        assert_eq!(run.timeline.busy_cores().len(), MANY_CPUS);
        let mut levels = Vec::new();
        run.timeline.counts.columns(&[0, MANY_NS], &mut levels);
        let running = levels[0].running;
        assert!(running > 100.0 && running <= MANY_CPUS as f64, "{running}");
        assert!(Frame::new(run).run() > 0);
    }

    #[test]
    fn synthetic_recordings_store_the_asked_spans_and_draw() {
        for live in [false, true] {
            let run = synthetic(30_000, live);
            assert_eq!(run.timeline.len(), 30_000 + THREADS, "slices and the tasks");
            assert_eq!(run.rec.is_running(), live);
            let mut frame = Frame::new(run);
            assert!(frame.run() > 0);
            frame.ingest_live(10);
            assert!(frame.run() > 0);
        }
    }
}
