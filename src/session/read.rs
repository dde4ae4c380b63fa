//! Opening a session: the file is read packet by packet (never the whole
//! `Trace` at once), each run rebuilt by feeding its events to a `Recording`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use prost::Message;

use crate::run::{Recording, RunStatus};
use crate::telemetry::events::{RunEvent, TaskRecord};
use crate::telemetry::sched::{SchedReport, SchedSlice, SliceState};

use super::in_order::in_order;
use super::meta::{RunMeta, Version};
use super::proto::{TRACE_PACKET_FIELD, TracePacket, TrackEvent, TrackEventType};
use super::{FORMAT_VERSION, META_NAME, SavedRun, SessionError, slices};

/// Opens the session at `path`, refusing a file larger than half the memory
/// available now (a run in memory takes about as much as its file).
pub fn open(path: &Path) -> Result<Vec<SavedRun>, SessionError> {
    open_with_limit(path, memory_available().map_or(u64::MAX, |m| m / 2))
}

/// `MemAvailable` from `/proc/meminfo`, in bytes.
fn memory_available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib = info
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kib * 1024)
}

/// Opens the session at `path` if it is at most `limit` bytes.
pub fn open_with_limit(path: &Path, limit: u64) -> Result<Vec<SavedRun>, SessionError> {
    let io = |source| SessionError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    if size > limit {
        return Err(SessionError::TooLarge {
            path: path.to_path_buf(),
            size,
            limit,
        });
    }
    let mut reader = Reader {
        path: path.to_path_buf(),
        input: BufReader::with_capacity(1 << 20, file),
        left: size,
        packets: 0,
        failed: None,
    };
    reader.refuse_json()?;
    let mut runs: Vec<RunBuilder> = Vec::new();
    let mut by_seq: HashMap<u32, usize> = HashMap::new();
    let path = path.to_path_buf();
    // Packets are decoded on the other cores, a piece at a time, and taken
    // here in the file's order.
    in_order(
        std::iter::from_fn(|| reader.next_piece().transpose()),
        Piece::decode,
        |decoded| {
            for item in decoded.map_err(|(packets, why)| bad_bytes(&path, packets, &why))? {
                let seq = item.seq();
                let run = by_seq.get(&seq).map(|&run| &mut runs[run]);
                match (item, run) {
                    (Item::Task { ts, event, .. }, Some(run)) => {
                        run.task_event(ts, event, &path)?;
                    }
                    (Item::Switches { cpu, switches, .. }, Some(run)) => {
                        run.switches(cpu, switches, &path)?;
                    }
                    (Item::Whole(packet), Some(run)) => run.take(packet, &path)?,
                    (Item::Whole(packet), None) => {
                        if let Some(meta) = metadata(&packet, &path)? {
                            by_seq.insert(seq, runs.len());
                            runs.push(RunBuilder::new(seq, meta));
                        }
                    }
                    // Before its run's metadata: no run to add it to.
                    (Item::Task { .. } | Item::Switches { .. }, None) => {}
                }
            }
            Ok(())
        },
    )?;
    if runs.is_empty() {
        return Err(if reader.packets == 0 {
            reader.not_perfetto("it is empty")
        } else {
            SessionError::NoRuns {
                path: reader.path.clone(),
            }
        });
    }
    runs.into_iter()
        .enumerate()
        .map(|(i, run)| run.finish(i + 1, &reader.path))
        .collect()
}

struct Reader {
    path: PathBuf,
    input: BufReader<std::fs::File>,
    /// Bytes not read yet.
    left: u64,
    /// Packets framed so far.
    packets: usize,
    /// What went wrong after the packets of the last piece.
    failed: Option<SessionError>,
}

impl Reader {
    fn not_perfetto(&self, why: &str) -> SessionError {
        SessionError::NotPerfetto {
            path: self.path.clone(),
            why: why.into(),
        }
    }

    fn truncated(&self, why: &str) -> SessionError {
        SessionError::Truncated {
            path: self.path.clone(),
            why: why.into(),
        }
    }

    fn io(&self, source: std::io::Error) -> SessionError {
        SessionError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// A JSON trace (Chrome's, or a corelanes summary) renamed `.pftrace`
    /// would otherwise read as garbage protobuf: name it for what it is.
    fn refuse_json(&mut self) -> Result<(), SessionError> {
        let first = match self.input.fill_buf() {
            Ok(head) => head.iter().find(|b| !b.is_ascii_whitespace()).copied(),
            Err(e) => return Err(self.io(e)),
        };
        if matches!(first, Some(b'{' | b'[')) {
            return Err(self.not_perfetto(
                "it is JSON (a Chrome trace or a summary?), not a Perfetto protobuf trace; \
                 ui.perfetto.dev opens Chrome traces",
            ));
        }
        Ok(())
    }

    fn byte(&mut self) -> Result<Option<u8>, SessionError> {
        let mut one = [0u8];
        match self.input.read(&mut one).map_err(|e| self.io(e))? {
            0 => Ok(None),
            _ => {
                self.left -= 1;
                Ok(Some(one[0]))
            }
        }
    }

    /// A varint; `None` at a clean end of file.
    fn varint(&mut self, what: &str) -> Result<Option<u64>, SessionError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(b) = self.byte()? else {
                return match shift {
                    0 => Ok(None),
                    _ => Err(self.truncated(&format!("it ends inside a {what}"))),
                };
            };
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(Some(value));
            }
        }
        Err(self.damaged_or_foreign(&format!("a {what} is not a valid number")))
    }

    fn damaged_or_foreign(&self, why: &str) -> SessionError {
        bad_bytes(&self.path, self.packets, why)
    }

    /// The next packets, about [`PIECE_BYTES`] of them or one larger;
    /// `None` at the end.
    fn next_piece(&mut self) -> Result<Option<Piece>, SessionError> {
        if let Some(error) = self.failed.take() {
            return Err(error);
        }
        let mut piece = Piece {
            first: self.packets,
            bytes: Vec::new(),
            ends: Vec::new(),
        };
        if let Err(error) = self.fill(&mut piece) {
            // The packets before the bad bytes are taken first, as they
            // would be one at a time: a fault in them is the one to report.
            if piece.ends.is_empty() {
                return Err(error);
            }
            self.failed = Some(error);
        }
        Ok((!piece.ends.is_empty()).then_some(piece))
    }

    fn fill(&mut self, piece: &mut Piece) -> Result<(), SessionError> {
        while piece.bytes.len() < PIECE_BYTES {
            let Some(key) = self.varint("packet header")? else {
                return Ok(());
            };
            let (field, wire) = (key >> 3, key & 7);
            // `Trace` has one field, `repeated TracePacket packet = 1`
            // (length-delimited); anything else is not a trace.
            if wire != 2 {
                return Err(self.damaged_or_foreign("a top-level field is not a packet"));
            }
            let len = self
                .varint("packet length")?
                .ok_or_else(|| self.truncated("it ends after a packet header"))?;
            if len > self.left {
                return Err(self.truncated(&format!(
                    "a packet of {len} bytes is announced but only {} remain",
                    self.left
                )));
            }
            let start = piece.bytes.len();
            piece.bytes.resize(start + len as usize, 0);
            self.input
                .read_exact(&mut piece.bytes[start..])
                .map_err(|e| self.io(e))?;
            self.left -= len;
            if field == u64::from(TRACE_PACKET_FIELD) {
                piece.ends.push(piece.bytes.len());
                self.packets += 1;
            } else {
                piece.bytes.truncate(start);
            }
        }
        Ok(())
    }
}

/// Packet bytes read per piece decoded apart: a few hundred small packets,
/// or one bundle of switches.
pub(super) const PIECE_BYTES: usize = 256 << 10;

/// Consecutive packets of the file, undecoded.
struct Piece {
    /// The number of packets before them.
    first: usize,
    bytes: Vec<u8>,
    /// Where each packet ends in `bytes`.
    ends: Vec<usize>,
}

impl Piece {
    /// What the packets hold for a run (those of no sequence are passed
    /// over), or the number of packets before the first that does not
    /// decode, and why.
    fn decode(self) -> Result<Vec<Item>, (usize, String)> {
        // Decoded from one shared buffer: byte fields (comms) then slice it
        // rather than each taking an allocation of its own.
        let bytes = bytes::Bytes::from(self.bytes);
        let mut start = 0;
        let mut packets = Vec::with_capacity(self.ends.len());
        for (k, &end) in self.ends.iter().enumerate() {
            let packet = TracePacket::decode(bytes.slice(start..end))
                .map_err(|e| (self.first + k, format!("a packet does not decode: {e}")))?;
            if packet.trusted_packet_sequence_id.is_some() {
                packets.push(Item::of(packet));
            }
            start = end;
        }
        Ok(packets)
    }
}

/// What rebuilding a run takes from a packet, taken out where the packet
/// was decoded (on a helper thread), so that its many small allocations are
/// freed there and only plain values come back.
enum Item {
    /// A task's begin or end.
    Task { seq: u32, ts: u64, event: TaskEvent },
    /// A bundle of one CPU's switches.
    Switches {
        seq: u32,
        cpu: u32,
        switches: Vec<RawSwitch>,
    },
    /// Anything else (the metadata, the descriptors): taken as it is.
    Whole(TracePacket),
}

impl Item {
    /// Of a packet on a sequence.
    fn of(packet: TracePacket) -> Item {
        let seq = item_seq(&packet);
        match (&packet.track_event, packet.ftrace_events) {
            (Some(event), None)
                if matches!(
                    event.r#type(),
                    TrackEventType::SliceBegin | TrackEventType::SliceEnd
                ) =>
            {
                Item::Task {
                    seq,
                    ts: packet.timestamp.unwrap_or(0),
                    event: TaskEvent::of(event),
                }
            }
            (None, Some(bundle)) => Item::Switches {
                seq,
                cpu: bundle.cpu.unwrap_or(0),
                switches: RawSwitch::all(bundle.event),
            },
            (_, ftrace_events) => Item::Whole(TracePacket {
                ftrace_events,
                ..packet
            }),
        }
    }

    fn seq(&self) -> u32 {
        match self {
            Item::Task { seq, .. } | Item::Switches { seq, .. } => *seq,
            Item::Whole(packet) => item_seq(packet),
        }
    }
}

/// Items are made of packets on a sequence only.
fn item_seq(packet: &TracePacket) -> u32 {
    packet.trusted_packet_sequence_id.unwrap_or_default()
}

/// A track event's part in a task.
struct TaskEvent {
    uuid: Option<u64>,
    kind: TrackEventType,
    task: Option<u64>,
    cpu_ns: Option<u64>,
    core_at_start: Option<u64>,
    core_at_end: Option<u64>,
    ok: Option<bool>,
}

impl TaskEvent {
    fn of(event: &TrackEvent) -> TaskEvent {
        let value = |name: &str| {
            event
                .debug_annotations
                .iter()
                .find(|a| a.name.as_deref() == Some(name))
        };
        let uint = |name: &str| value(name).and_then(|a| a.uint_value);
        TaskEvent {
            uuid: event.track_uuid,
            kind: event.r#type(),
            task: uint("task"),
            cpu_ns: uint("cpu_ns"),
            core_at_start: uint("core_at_start"),
            core_at_end: uint("core_at_end"),
            ok: value("ok").and_then(|a| a.bool_value),
        }
    }
}

/// A `sched_switch` as the rebuild reads it.
struct RawSwitch {
    /// BOOTTIME ns.
    ts: u64,
    prev_pid: Option<i32>,
    prev_state: i64,
    next_pid: Option<i32>,
}

impl RawSwitch {
    /// The switches among a bundle's events.
    fn all(events: Vec<super::proto::FtraceEvent>) -> Vec<RawSwitch> {
        events
            .into_iter()
            .filter_map(|event| {
                let switch = event.sched_switch?;
                Some(RawSwitch {
                    ts: event.timestamp.unwrap_or(0),
                    prev_pid: switch.prev_pid,
                    prev_state: switch.prev_state.unwrap_or(0),
                    next_pid: switch.next_pid,
                })
            })
            .collect()
    }
}

/// Bad bytes in the first packet mean the file never was a trace.
fn bad_bytes(path: &Path, packets: usize, why: &str) -> SessionError {
    if packets == 0 {
        SessionError::NotPerfetto {
            path: path.to_path_buf(),
            why: format!("it does not start like a Perfetto trace ({why})"),
        }
    } else {
        SessionError::Damaged {
            path: path.to_path_buf(),
            why: format!("after packet {packets}, {why}"),
        }
    }
}

/// The run metadata, if `packet` is a corelanes metadata event.
fn metadata(packet: &TracePacket, path: &Path) -> Result<Option<RunMeta>, SessionError> {
    let Some(json) = packet
        .track_event
        .as_ref()
        .filter(|e| e.name.as_deref() == Some(META_NAME))
        .and_then(|e| {
            e.debug_annotations
                .iter()
                .find(|a| a.name.as_deref() == Some(META_NAME))
        })
        .and_then(|a| a.string_value.as_deref())
    else {
        return Ok(None);
    };
    let damaged = |e: serde_json::Error| SessionError::Damaged {
        path: path.to_path_buf(),
        why: format!("its corelanes metadata cannot be read ({e})"),
    };
    let version: Version = serde_json::from_str(json).map_err(damaged)?;
    if version.format > FORMAT_VERSION {
        return Err(SessionError::Newer {
            path: path.to_path_buf(),
            version: version.format,
        });
    }
    serde_json::from_str(json).map(Some).map_err(damaged)
}

/// One switch of one worker, relative to the run's origin.
#[derive(Clone, Copy)]
struct Switch {
    time_ns: u64,
    cpu: usize,
    /// `None`: switched in; else the state it was switched out into.
    out: Option<SliceState>,
}

/// One run as its packets arrive.
struct RunBuilder {
    seq: u32,
    meta: RunMeta,
    /// Worker index by kernel thread id.
    worker_of: HashMap<i32, usize>,
    tasks: Vec<TaskRecord>,
    /// Each worker's begun, unended task.
    open: Vec<Option<TaskRecord>>,
    switches: Vec<Vec<Switch>>,
}

impl RunBuilder {
    fn new(seq: u32, meta: RunMeta) -> RunBuilder {
        let workers = meta.threads.len();
        RunBuilder {
            seq,
            worker_of: meta
                .threads
                .iter()
                .filter(|t| t.tid > 0)
                .map(|t| (t.tid, t.index))
                .collect(),
            tasks: Vec::with_capacity(meta.tasks),
            open: vec![None; workers],
            switches: vec![Vec::new(); workers],
            meta,
        }
    }

    fn relative(&self, monotonic_ns: u64) -> u64 {
        monotonic_ns.saturating_sub(self.meta.origin_ns)
    }

    fn take(&mut self, packet: TracePacket, path: &Path) -> Result<(), SessionError> {
        let ts = packet.timestamp.unwrap_or(0);
        if let Some(event) = &packet.track_event {
            self.task_event(ts, TaskEvent::of(event), path)?;
        }
        if let Some(bundle) = packet.ftrace_events {
            self.switches(bundle.cpu.unwrap_or(0), RawSwitch::all(bundle.event), path)?;
        }
        Ok(())
    }

    fn switches(&mut self, cpu: u32, all: Vec<RawSwitch>, path: &Path) -> Result<(), SessionError> {
        // A slice keeps its core in 16 bits: more than any kernel has.
        let cpu = u16::try_from(cpu)
            .map(usize::from)
            .map_err(|_| SessionError::Damaged {
                path: path.to_path_buf(),
                why: format!("a switch names CPU {cpu}, more than any machine has"),
            })?;
        let base = self.meta.origin_ns + self.meta.boottime_offset_ns;
        for switch in all {
            let time_ns = switch.ts.saturating_sub(base);
            let mut add = |pid: Option<i32>, out: Option<SliceState>| {
                if let Some(&w) = pid.and_then(|p| self.worker_of.get(&p)) {
                    self.switches[w].push(Switch { time_ns, cpu, out });
                }
            };
            add(
                switch.prev_pid,
                Some(slices::from_prev_state(switch.prev_state)),
            );
            add(switch.next_pid, None);
        }
        Ok(())
    }

    fn task_event(&mut self, ts: u64, event: TaskEvent, path: &Path) -> Result<(), SessionError> {
        let Some(uuid) = event.uuid else {
            return Ok(());
        };
        // Counter tracks (derived from the slices) name no worker: passed over.
        let worker = (uuid & u64::from(u32::MAX)) as usize;
        if uuid >> 32 != u64::from(self.seq) || worker == 0 || worker > self.open.len() {
            return Ok(());
        }
        let worker = worker - 1;
        let damaged = |why: String| SessionError::Damaged {
            path: path.to_path_buf(),
            why,
        };
        match event.kind {
            TrackEventType::SliceBegin => {
                let uint = |value: Option<u64>, name: &str| {
                    value.ok_or_else(|| {
                        damaged(format!("a task of worker {worker} lacks its {name}"))
                    })
                };
                let start_ns = self.relative(ts);
                self.open[worker] = Some(TaskRecord {
                    id: uint(event.task, "task")? as u32,
                    thread: worker as u32,
                    start_ns,
                    end_ns: start_ns,
                    core_at_start: uint(event.core_at_start, "core_at_start")? as u32,
                    core_at_end: uint(event.core_at_end, "core_at_end")? as u32,
                    cpu_ns: uint(event.cpu_ns, "cpu_ns")?,
                    ok: event.ok.unwrap_or(false),
                });
            }
            TrackEventType::SliceEnd => {
                let end_ns = self.relative(ts);
                let mut task = self.open[worker].take().ok_or_else(|| {
                    damaged(format!("a task of worker {worker} ends without a start"))
                })?;
                task.end_ns = end_ns;
                self.tasks.push(task);
            }
            _ => {}
        }
        Ok(())
    }

    /// The kernel report, rebuilt from the switches and the metadata.
    fn sched(&mut self, run: usize, path: &Path) -> Result<Option<SchedReport>, SessionError> {
        let Some(meta) = self.meta.sched.take() else {
            return Ok(None);
        };
        let mut all = Vec::with_capacity(meta.slices);
        for (thread, switches) in self.switches.iter_mut().enumerate() {
            // Out before in at one instant: a thread leaving one CPU as it
            // lands on another never runs for zero time.
            switches.sort_by_key(|s| (s.time_ns, s.out.is_none()));
            let mut runs = Vec::new();
            let mut since: Option<&Switch> = None;
            for s in switches.iter() {
                match (s.out, since) {
                    (None, _) => since = Some(s),
                    (Some(state), Some(came)) => {
                        let ran = SchedSlice::new(
                            thread,
                            came.cpu,
                            SliceState::Running,
                            came.time_ns,
                            s.time_ns,
                        );
                        runs.push((ran, state));
                        since = None;
                    }
                    (Some(_), None) => {}
                }
            }
            slices::implied(&runs, &mut all);
        }
        let not_there: std::collections::HashSet<_> = meta.not_there.into_iter().collect();
        all.retain(|s| {
            s.state == SliceState::Running || !not_there.contains(&(s.thread(), s.start_ns))
        });
        all.extend(meta.extra);
        all.sort_by_key(|s| (s.thread, s.start_ns, s.end_ns));
        if all.len() != meta.slices {
            return Err(SessionError::Truncated {
                path: path.to_path_buf(),
                why: format!(
                    "run {run} holds {} of its {} kernel slices",
                    all.len(),
                    meta.slices
                ),
            });
        }
        Ok(Some(SchedReport {
            lost_records: meta.lost_records,
            note: meta.note,
            system_wide: meta.system_wide,
            others: meta.others,
            streamed: false,
            others_before: meta.others_before,
            dropped: meta.dropped,
            capture_cpu_ns: meta.capture_cpu_ns,
            events_per_thread: meta.events_per_thread,
            ..SchedReport::of_slices(meta.source, all, meta.per_thread)
        }))
    }

    /// The run, rebuilt by the events a live run sends.
    fn finish(mut self, run: usize, path: &Path) -> Result<SavedRun, SessionError> {
        if self.tasks.len() != self.meta.tasks {
            return Err(SessionError::Truncated {
                path: path.to_path_buf(),
                why: format!(
                    "run {run} holds {} of its {} tasks",
                    self.tasks.len(),
                    self.meta.tasks
                ),
            });
        }
        let sched = self.sched(run, path)?;
        let meta = self.meta;
        let mut rec = Recording::new(meta.config);
        rec.ingest(RunEvent::Started {
            origin_ns: meta.origin_ns,
            threads: meta.threads,
            sched_source: meta.sched_source,
            sched_note: meta.sched_note,
        });
        rec.tasks_saved_with(meta.task_cpu);
        if let Some(environment) = meta.environment {
            rec.ingest(RunEvent::Environment(Box::new(environment)));
        }
        if let Some(program) = meta.program {
            rec.ingest(RunEvent::Program(program));
        }
        rec.ingest(RunEvent::Tasks(self.tasks));
        for why in meta.failures {
            rec.ingest(RunEvent::Failure(why));
        }
        if let Some(report) = sched {
            rec.ingest(RunEvent::Sched(report));
        }
        // A long run's saved part: what came before is summary-only.
        rec.run_cpu_ns = meta.run_cpu_ns;
        rec.dropped_tasks = meta.dropped_tasks;
        rec.dropped_slices = meta.dropped_slices;
        if let Some(totals) = meta.task_totals {
            rec.task_totals = totals;
        }
        if meta.status != RunStatus::Running {
            rec.ingest(RunEvent::Finished {
                wall_ns: meta.wall_ns,
                cancelled: meta.status == RunStatus::Cancelled,
            });
        }
        Ok(SavedRun {
            recording: rec,
            machine: meta.machine,
        })
    }
}
