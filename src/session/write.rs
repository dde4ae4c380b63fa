//! Saving runs as a session: packets encoded one at a time into a buffered
//! temporary file, renamed into place at the end.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Write};
use std::path::Path;

use prost::Message;
use prost::encoding::{WireType, encode_key};

use crate::export::{self, ExportError};
use crate::run::Recording;
use crate::telemetry::events::TaskRecord;
use crate::telemetry::sched::{SchedSlice, SliceState};

use super::in_order::in_order;
use super::meta::{RunMeta, SchedMeta};
use super::proto::*;
use super::{FORMAT_VERSION, META_NAME, Machine, counters, slices};

/// Switches per `ftrace_events` bundle: about what a real ftrace page holds.
const BUNDLE: usize = 4096;
/// CFS's default priority (nice 0), which the workers run at.
const NORMAL_PRIO: i32 = 120;

/// Saves `runs` (each with the machine it ran on) to `path` as one session.
pub fn save(path: &Path, runs: &[(&Recording, &Machine)]) -> Result<(), ExportError> {
    // Perfetto reads ftrace timestamps as BOOTTIME and has no MONOTONIC
    // ftrace clock, while every corelanes time is MONOTONIC. So the switches
    // are stamped MONOTONIC + (BOOTTIME − MONOTONIC), read together once here,
    // and each run also gets a clock snapshot pairing the two clocks, so that
    // its track events (stamped MONOTONIC, clock id 3) land on the same
    // timeline. The offset only grows while the machine is suspended; if it
    // was between the run and this save, the whole run shifts as one in
    // Perfetto's absolute time, and the reader subtracts the same stored
    // offset, so nothing is lost.
    let offset = crate::sys::boottime_offset_ns();
    export::write_streaming(path, |out| {
        for (i, (rec, machine)) in runs.iter().enumerate() {
            let mut packets = Packets {
                out: &mut *out,
                encoder: Encoder::new(i as u32 + 1),
            };
            write_run(&mut packets, rec, machine, offset)?;
        }
        Ok(())
    })
}

/// The track of a run (`worker` = None) or of one of its workers. Sequence
/// ids start at 1, so no uuid is 0.
pub fn track_uuid(seq: u32, worker: Option<usize>) -> u64 {
    (u64::from(seq) << 32) | worker.map_or(0, |w| w as u64 + 1)
}

/// The counters a run with kernel slices carries: its threads in each
/// state, counted over time (see [`counters`]).
const COUNTERS: [(SliceState, &str); 2] = [
    (SliceState::Running, "running threads"),
    (SliceState::Runnable, "runnable threads (waiting for a CPU)"),
];

/// The track of a run's `k`-th counter: the top bit of the low half tells
/// it from a worker's, so a reader looking for tasks passes over it.
pub fn counter_uuid(seq: u32, k: usize) -> u64 {
    (u64::from(seq) << 32) | (1 << 31) | k as u64
}

/// One run's packets encoded on its own sequence, appended to `buf`.
struct Encoder {
    seq: u32,
    buf: Vec<u8>,
}

impl Encoder {
    fn new(seq: u32) -> Encoder {
        Encoder {
            seq,
            buf: Vec::with_capacity(64 << 10),
        }
    }

    fn put(&mut self, mut packet: TracePacket) {
        self.put_ref(&mut packet);
    }

    fn put_ref(&mut self, packet: &mut TracePacket) {
        packet.trusted_packet_sequence_id = Some(self.seq);
        encode_key(TRACE_PACKET_FIELD, WireType::LengthDelimited, &mut self.buf);
        packet
            .encode_length_delimited(&mut self.buf)
            .expect("a Vec grows as needed");
    }

    /// A track event stamped with `CLOCK_MONOTONIC` ns.
    fn event(&mut self, monotonic_ns: u64, event: TrackEvent) {
        self.put(TracePacket {
            timestamp: Some(monotonic_ns),
            timestamp_clock_id: Some(BUILTIN_CLOCK_MONOTONIC),
            track_event: Some(event),
            ..TracePacket::default()
        });
    }
}

/// Writes one run's packets on its own sequence.
struct Packets<'a> {
    out: &'a mut dyn Write,
    encoder: Encoder,
}

impl Packets<'_> {
    fn put(&mut self, packet: TracePacket) -> io::Result<()> {
        self.write(|e| e.put(packet))
    }

    fn event(&mut self, monotonic_ns: u64, event: TrackEvent) -> io::Result<()> {
        self.write(|e| e.event(monotonic_ns, event))
    }

    fn write(&mut self, encode: impl FnOnce(&mut Encoder)) -> io::Result<()> {
        self.encoder.buf.clear();
        encode(&mut self.encoder);
        self.out.write_all(&self.encoder.buf)
    }

    /// Encodes `pieces` on the other cores, then writes them in order:
    /// encoding is most of what saving costs.
    fn write_pieces<P: Send>(
        &mut self,
        pieces: impl Iterator<Item = P>,
        encode: impl Fn(P, &mut Encoder) + Sync,
    ) -> io::Result<()> {
        let seq = self.encoder.seq;
        in_order(
            pieces.map(Ok),
            |piece| {
                let mut encoder = Encoder::new(seq);
                encode(piece, &mut encoder);
                encoder.buf
            },
            |bytes| self.out.write_all(&bytes),
        )
    }
}

/// Tasks encoded per piece: about 200 KiB of packets.
pub(super) const TASKS_PER_PIECE: usize = 2048;
/// Counter values encoded per piece: about 200 KiB of packets.
pub(super) const CHANGES_PER_PIECE: usize = 8192;

fn write_run(
    packets: &mut Packets,
    rec: &Recording,
    machine: &Machine,
    offset: u64,
) -> io::Result<()> {
    let seq = packets.encoder.seq;
    let origin = rec.origin_ns;
    // Streamed or not, a report's slices are in its order, by thread then
    // start (the recording groups streamed ones), as the file holds them.
    let sched = rec.sched.as_ref();
    packets.put(TracePacket {
        sequence_flags: Some(SEQ_INCREMENTAL_STATE_CLEARED),
        clock_snapshot: Some(ClockSnapshot {
            clocks: [
                (BUILTIN_CLOCK_BOOTTIME, origin + offset),
                (BUILTIN_CLOCK_MONOTONIC, origin),
            ]
            .map(|(id, ts)| Clock {
                clock_id: Some(id),
                timestamp: Some(ts),
            })
            .to_vec(),
        }),
        ..TracePacket::default()
    })?;
    // Names only: a session never holds command lines or the environment.
    let threads = rec
        .threads
        .iter()
        .filter(|t| t.tid > 0)
        .map(|t| Thread {
            tid: Some(t.tid),
            name: Some(t.name.clone()),
        })
        .collect();
    packets.put(TracePacket {
        process_tree: Some(ProcessTree { threads }),
        ..TracePacket::default()
    })?;
    // A recorded program is named by its first thread's comm, never by its
    // command line: sessions are shared.
    let program = rec.program.as_ref().map(|p| crate::record::ProgramInfo {
        command: rec
            .threads
            .first()
            .map_or("program", |t| &t.name)
            .to_owned(),
        ..p.clone()
    });
    let title = match &program {
        Some(p) => format!("{} · pid {}", p.command, p.pid),
        None => rec.title(),
    };
    let run_track = track_uuid(seq, None);
    let window = counters::busy_window_ns(rec.wall_ns);
    let busy = sched.map_or_else(Default::default, |report| {
        counters::core_busy(&report.slices, window, rec.wall_ns)
    });
    let descriptors = std::iter::once(TrackDescriptor {
        uuid: Some(run_track),
        parent_uuid: None,
        name: Some(format!("corelanes run {seq}: {title}")),
        counter: None,
    })
    .chain(rec.threads.iter().map(|t| TrackDescriptor {
        uuid: Some(track_uuid(seq, Some(t.index))),
        parent_uuid: Some(run_track),
        name: Some(format!("{} tasks", t.name)),
        counter: None,
    }))
    .chain(busy.iter().map(|(&core, _)| TrackDescriptor {
        uuid: Some(counter_uuid(seq, COUNTERS.len() + core)),
        parent_uuid: Some(run_track),
        name: Some(format!(
            "cpu {core}: this run's threads (% of each {} ms)",
            window / 1_000_000
        )),
        counter: Some(CounterDescriptor {
            unit_name: Some("%".into()),
        }),
    }))
    .chain(sched.iter().flat_map(|_| {
        COUNTERS
            .iter()
            .enumerate()
            .map(|(k, (_, name))| TrackDescriptor {
                uuid: Some(counter_uuid(seq, k)),
                parent_uuid: Some(run_track),
                name: Some((*name).into()),
                counter: Some(CounterDescriptor {
                    unit_name: Some("threads".into()),
                }),
            })
    }));
    for descriptor in descriptors {
        packets.put(TracePacket {
            track_descriptor: Some(descriptor),
            ..TracePacket::default()
        })?;
    }
    let meta = RunMeta {
        format: FORMAT_VERSION,
        config: rec.config.clone(),
        status: rec.status.clone(),
        origin_ns: origin,
        boottime_offset_ns: offset,
        wall_ns: rec.wall_ns,
        run_cpu_ns: rec.run_cpu_ns,
        machine: machine.clone(),
        metrics: rec.metrics(),
        threads: rec.threads.clone(),
        sched_source: rec.sched_source,
        sched_note: rec.sched_note.clone(),
        task_cpu: rec.task_cpu,
        sched: sched.map(|report| {
            let (extra, not_there) = not_implied(&report.slices);
            SchedMeta {
                source: report.source,
                lost_records: report.lost_records,
                note: report.note.clone(),
                per_thread: report.per_thread.clone(),
                slices: report.slices.len(),
                extra,
                not_there,
                system_wide: report.system_wide,
                others: report.others.clone(),
                others_before: report.others_before.clone(),
                dropped: report.dropped,
                capture_cpu_ns: report.capture_cpu_ns,
                events_per_thread: report.events_per_thread,
            }
        }),
        failures: rec.failures.clone(),
        tasks: rec.tasks.len(),
        environment: rec.environment.clone(),
        program,
        dropped_tasks: rec.dropped_tasks,
        dropped_slices: rec.dropped_slices,
        task_totals: Some(rec.task_totals),
    };
    let json = serde_json::to_string(&meta).map_err(io::Error::other)?;
    packets.event(
        origin,
        TrackEvent {
            r#type: Some(TrackEventType::Instant as i32),
            track_uuid: Some(run_track),
            name: Some(META_NAME.into()),
            debug_annotations: vec![DebugAnnotation::string(META_NAME, json)],
            counter_value: None,
        },
    )?;
    packets.write_pieces(rec.tasks.chunks(TASKS_PER_PIECE), |tasks, encoder| {
        let mut packets = TaskPackets::new();
        for task in tasks {
            packets.put(encoder, origin, task);
        }
    })?;
    if let Some(report) = sched {
        for (k, (state, _)) in COUNTERS.iter().enumerate() {
            let track_uuid = Some(counter_uuid(seq, k));
            let mut changes = counters::count_changes(&report.slices, *state);
            let pieces = std::iter::from_fn(|| {
                let piece: Vec<_> = changes.by_ref().take(CHANGES_PER_PIECE).collect();
                (!piece.is_empty()).then_some(piece)
            });
            packets.write_pieces(pieces, |piece, encoder| {
                for (t, count) in piece {
                    encoder.event(origin + t, counter(track_uuid, count));
                }
            })?;
        }
        for (&core, per_window) in &busy {
            let track_uuid = Some(counter_uuid(seq, COUNTERS.len() + core));
            let mut shown = None;
            // A value where it changes, and 0 from the run's end on.
            for (w, &ns) in per_window.iter().enumerate() {
                // The last window may end early, with the run.
                let len = window.min(rec.wall_ns - w as u64 * window).max(1);
                let percent = ((ns * 100 + len / 2) / len) as i64;
                if shown != Some(percent) {
                    shown = Some(percent);
                    packets.event(origin + w as u64 * window, counter(track_uuid, percent))?;
                }
            }
            if shown != Some(0) {
                packets.event(origin + rec.wall_ns, counter(track_uuid, 0))?;
            }
        }
        write_switches(packets, rec, &report.slices, origin + offset)?;
    }
    Ok(())
}

/// A task's begin and end packets, made once and refilled for each task:
/// a million tasks would otherwise allocate their seven strings each.
struct TaskPackets {
    begin: TracePacket,
    end: TracePacket,
}

impl TaskPackets {
    fn new() -> TaskPackets {
        let packet = |kind: TrackEventType, name, debug_annotations| TracePacket {
            timestamp_clock_id: Some(BUILTIN_CLOCK_MONOTONIC),
            track_event: Some(TrackEvent {
                r#type: Some(kind as i32),
                name,
                debug_annotations,
                ..TrackEvent::default()
            }),
            ..TracePacket::default()
        };
        TaskPackets {
            // In the order `put` fills them.
            begin: packet(
                TrackEventType::SliceBegin,
                Some(String::new()),
                vec![
                    DebugAnnotation::uint("task", 0),
                    DebugAnnotation::uint("cpu_ns", 0),
                    DebugAnnotation::bool("ok", false),
                    DebugAnnotation::uint("core_at_start", 0),
                    DebugAnnotation::uint("core_at_end", 0),
                ],
            ),
            end: packet(TrackEventType::SliceEnd, None, Vec::new()),
        }
    }

    /// `task`'s begin and end on its worker's track.
    fn put(&mut self, encoder: &mut Encoder, origin: u64, task: &TaskRecord) {
        use std::fmt::Write as _;
        let track = Some(track_uuid(encoder.seq, Some(task.thread as usize)));
        let begin = self.begin.track_event.as_mut().expect("made with one");
        begin.track_uuid = track;
        let name = begin.name.as_mut().expect("made with one");
        name.clear();
        write!(name, "task {}", task.id).expect("a String grows as needed");
        let [id, cpu, ok, core_at_start, core_at_end] = &mut begin.debug_annotations[..] else {
            unreachable!("made with five");
        };
        id.uint_value = Some(task.id.into());
        cpu.uint_value = Some(task.cpu_ns);
        ok.bool_value = Some(task.ok);
        core_at_start.uint_value = Some(task.core_at_start.into());
        core_at_end.uint_value = Some(task.core_at_end.into());
        self.begin.timestamp = Some(origin + task.start_ns);
        encoder.put_ref(&mut self.begin);
        self.end
            .track_event
            .as_mut()
            .expect("made with one")
            .track_uuid = track;
        self.end.timestamp = Some(origin + task.end_ns);
        encoder.put_ref(&mut self.end);
    }
}

/// A counter's value on its track.
fn counter(track_uuid: Option<u64>, value: i64) -> TrackEvent {
    TrackEvent {
        r#type: Some(TrackEventType::Counter as i32),
        track_uuid,
        counter_value: Some(value),
        ..TrackEvent::default()
    }
}

/// Per thread (the slices are sorted by thread, then start), what the
/// switches do not imply; see [`slices`].
fn not_implied(all: &[SchedSlice]) -> (Vec<SchedSlice>, Vec<(usize, u64)>) {
    let (mut extra, mut not_there) = (Vec::new(), Vec::new());
    for thread in all.chunk_by(|a, b| a.thread == b.thread) {
        let runs: Vec<_> = (0..thread.len())
            .filter(|&i| thread[i].state == SliceState::Running)
            .map(|i| (thread[i].clone(), slices::out_state(thread, i)))
            .collect();
        let mut implied = Vec::with_capacity(thread.len());
        slices::implied(&runs, &mut implied);
        slices::difference(thread, &implied, &mut extra, &mut not_there);
    }
    (extra, not_there)
}

/// The running slices as `sched_switch` pairs, per CPU in time order (a
/// switch-out before a switch-in at the same instant). What else ran on the
/// CPU was not captured (perf follows only this process's threads), so the
/// other side of each switch is pid 0.
fn write_switches(
    packets: &mut Packets,
    rec: &Recording,
    all: &[SchedSlice],
    base_ns: u64,
) -> io::Result<()> {
    let mut running: Vec<u32> = (0..all.len() as u32)
        .filter(|&i| all[i as usize].state == SliceState::Running)
        .collect();
    running.sort_by_key(|&i| (all[i as usize].core, all[i as usize].start_ns));
    let pieces = running
        .chunk_by(|&a, &b| all[a as usize].core == all[b as usize].core)
        .flat_map(|core| pieces_of(all, core));
    packets.write_pieces(pieces, |piece, encoder| {
        encode_switches(encoder, rec, all, piece, base_ns);
    })
}

/// Running slices encoded per piece: about eight bundles.
pub(super) const SLICES_PER_PIECE: usize = 4 * BUNDLE;

/// One CPU's running slices (in start order) cut into pieces, each cut
/// where every slice before it has ended, so that each piece's switches
/// are in time order on their own.
fn pieces_of<'a>(all: &[SchedSlice], core: &'a [u32]) -> Vec<&'a [u32]> {
    let mut pieces = Vec::new();
    let (mut from, mut ended) = (0, 0);
    for (k, &i) in core.iter().enumerate() {
        let slice = &all[i as usize];
        if k - from >= SLICES_PER_PIECE && ended <= slice.start_ns {
            pieces.push(&core[from..k]);
            from = k;
        }
        ended = ended.max(slice.end_ns);
    }
    pieces.push(&core[from..]);
    pieces
}

/// The switches of `piece`, running slices of one CPU, in bundles.
fn encode_switches(
    encoder: &mut Encoder,
    rec: &Recording,
    all: &[SchedSlice],
    piece: &[u32],
    base_ns: u64,
) {
    // This piece's own copies: the helpers encoding pieces side by side
    // would otherwise all count references on the same few names.
    let names: Vec<bytes::Bytes> = rec
        .threads
        .iter()
        .map(|t| bytes::Bytes::copy_from_slice(t.name.as_bytes()))
        .collect();
    let who = |thread: usize| match (rec.threads.get(thread), names.get(thread)) {
        (Some(t), Some(name)) => (t.tid, name.clone()),
        _ => (0, bytes::Bytes::new()),
    };
    let switch = |ts: u64, slice: usize, switching_in: bool| {
        let s = &all[slice];
        let (tid, comm) = who(s.thread());
        let (worker, other) = (
            (Some(comm), Some(tid), Some(NORMAL_PRIO)),
            (Some(bytes::Bytes::new()), Some(0), Some(NORMAL_PRIO)),
        );
        let ((prev_comm, prev_pid, prev_prio), (next_comm, next_pid, next_prio)) = if switching_in {
            (other, worker)
        } else {
            (worker, other)
        };
        let prev_state = if switching_in {
            TASK_RUNNING
        } else {
            slices::prev_state(slices::out_state(all, slice))
        };
        FtraceEvent {
            timestamp: Some(base_ns + ts),
            pid: Some(prev_pid.unwrap_or(0) as u32),
            sched_switch: Some(SchedSwitchFtraceEvent {
                prev_comm,
                prev_pid,
                prev_prio,
                prev_state: Some(prev_state),
                next_comm,
                next_pid,
                next_prio,
            }),
        }
    };
    let cpu = u32::from(all[piece[0] as usize].core);
    let mut bundle = Vec::with_capacity(BUNDLE);
    let flush = |bundle: &mut Vec<FtraceEvent>, encoder: &mut Encoder| {
        encoder.put(TracePacket {
            ftrace_events: Some(FtraceEventBundle {
                cpu: Some(cpu),
                event: std::mem::take(bundle),
            }),
            ..TracePacket::default()
        });
    };
    // Slices on one CPU do not overlap when exact; a coarse source's may,
    // so pending switch-outs wait in a heap and the order stays by time.
    let mut outs = BinaryHeap::new();
    let pending_end = piece.iter().map(|&i| (all[i as usize].start_ns, Some(i)));
    for (now, slice) in pending_end.chain([(u64::MAX, None)]) {
        while let Some(&Reverse((end, out))) = outs.peek()
            && end <= now
        {
            outs.pop();
            bundle.push(switch(end, out as usize, false));
        }
        if let Some(i) = slice {
            bundle.push(switch(now, i as usize, true));
            outs.push(Reverse((all[i as usize].end_ns, i)));
        }
        if bundle.len() >= BUNDLE {
            flush(&mut bundle, encoder);
        }
    }
    if !bundle.is_empty() {
        flush(&mut bundle, encoder);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cpus_slices_are_cut_into_pieces_only_where_nothing_still_runs() {
        let slices = 3 * SLICES_PER_PIECE as u64;
        let mut all: Vec<SchedSlice> = (0..slices)
            .map(|k| SchedSlice::new(0, 0, SliceState::Running, k * 10, k * 10 + 10))
            .collect();
        // A coarse source's slice that outlasts the next five starts, just
        // before where the first cut would fall.
        all[SLICES_PER_PIECE - 1].end_ns += 45;
        let core: Vec<u32> = (0..slices as u32).collect();
        let pieces = pieces_of(&all, &core);
        assert_eq!(pieces.concat(), core, "every slice once, in order");
        assert_eq!(
            pieces[0].len(),
            SLICES_PER_PIECE + 5,
            "the cut waits for it"
        );
        for (k, piece) in pieces.iter().enumerate().skip(1) {
            let first = piece[0] as usize;
            assert!(
                all[..first].iter().all(|s| s.end_ns <= all[first].start_ns),
                "piece {k} starts while an earlier slice still runs"
            );
        }
        assert!(pieces.len() >= 3, "{} pieces", pieces.len());
    }
}
