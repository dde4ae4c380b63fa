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
use crate::telemetry::sched::{SchedSlice, SliceState};

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
                buf: Vec::with_capacity(64 << 10),
                seq: i as u32 + 1,
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

/// Writes one run's packets on its own sequence.
struct Packets<'a> {
    out: &'a mut dyn Write,
    buf: Vec<u8>,
    seq: u32,
}

impl Packets<'_> {
    fn put(&mut self, mut packet: TracePacket) -> io::Result<()> {
        packet.trusted_packet_sequence_id = Some(self.seq);
        self.buf.clear();
        encode_key(TRACE_PACKET_FIELD, WireType::LengthDelimited, &mut self.buf);
        packet
            .encode_length_delimited(&mut self.buf)
            .expect("a Vec grows as needed");
        self.out.write_all(&self.buf)
    }

    /// A track event stamped with `CLOCK_MONOTONIC` ns.
    fn event(&mut self, monotonic_ns: u64, event: TrackEvent) -> io::Result<()> {
        self.put(TracePacket {
            timestamp: Some(monotonic_ns),
            timestamp_clock_id: Some(BUILTIN_CLOCK_MONOTONIC),
            track_event: Some(event),
            ..TracePacket::default()
        })
    }
}

fn write_run(
    packets: &mut Packets,
    rec: &Recording,
    machine: &Machine,
    offset: u64,
) -> io::Result<()> {
    let seq = packets.seq;
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
    for task in &rec.tasks {
        let track = Some(track_uuid(seq, Some(task.thread as usize)));
        packets.event(
            origin + task.start_ns,
            TrackEvent {
                r#type: Some(TrackEventType::SliceBegin as i32),
                track_uuid: track,
                name: Some(format!("task {}", task.id)),
                debug_annotations: vec![
                    DebugAnnotation::uint("task", task.id.into()),
                    DebugAnnotation::uint("cpu_ns", task.cpu_ns),
                    DebugAnnotation::bool("ok", task.ok),
                    DebugAnnotation::uint("core_at_start", task.core_at_start.into()),
                    DebugAnnotation::uint("core_at_end", task.core_at_end.into()),
                ],
                counter_value: None,
            },
        )?;
        packets.event(
            origin + task.end_ns,
            TrackEvent {
                r#type: Some(TrackEventType::SliceEnd as i32),
                track_uuid: track,
                ..TrackEvent::default()
            },
        )?;
    }
    if let Some(report) = sched {
        for (k, (state, _)) in COUNTERS.iter().enumerate() {
            let track_uuid = Some(counter_uuid(seq, k));
            counters::count_changes(&report.slices, *state, |t, count| {
                packets.event(origin + t, counter(track_uuid, count))
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
    for core in running.chunk_by(|&a, &b| all[a as usize].core == all[b as usize].core) {
        let cpu = all[core[0] as usize].core as u32;
        let mut bundle = Vec::with_capacity(BUNDLE);
        let flush = |bundle: &mut Vec<FtraceEvent>, packets: &mut Packets| {
            packets.put(TracePacket {
                ftrace_events: Some(FtraceEventBundle {
                    cpu: Some(cpu),
                    event: std::mem::take(bundle),
                }),
                ..TracePacket::default()
            })
        };
        // Slices on one CPU do not overlap when exact; a coarse source's may,
        // so pending switch-outs wait in a heap and the order stays by time.
        let mut outs = BinaryHeap::new();
        let pending_end = core.iter().map(|&i| (all[i as usize].start_ns, Some(i)));
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
                flush(&mut bundle, packets)?;
            }
        }
        if !bundle.is_empty() {
            flush(&mut bundle, packets)?;
        }
    }
    Ok(())
}
