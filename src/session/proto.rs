//! The few Perfetto trace messages a session uses, written by hand with
//! `prost` derives (field numbers and types checked against Perfetto's own
//! `perfetto_trace_pb2`, 0.59). Fields we do not use are left out: prost
//! skips unknown fields when decoding, as Perfetto does.

/// `Trace { repeated TracePacket packet = 1; }`: the file itself. Never
/// decoded whole (see `read.rs`); kept to name the field number.
pub const TRACE_PACKET_FIELD: u32 = 1;

#[derive(Clone, PartialEq, prost::Message)]
pub struct TracePacket {
    #[prost(uint64, optional, tag = "8")]
    pub timestamp: Option<u64>,
    #[prost(uint32, optional, tag = "58")]
    pub timestamp_clock_id: Option<u32>,
    #[prost(uint32, optional, tag = "10")]
    pub trusted_packet_sequence_id: Option<u32>,
    #[prost(uint32, optional, tag = "13")]
    pub sequence_flags: Option<u32>,
    #[prost(message, optional, tag = "1")]
    pub ftrace_events: Option<FtraceEventBundle>,
    #[prost(message, optional, tag = "2")]
    pub process_tree: Option<ProcessTree>,
    #[prost(message, optional, tag = "6")]
    pub clock_snapshot: Option<ClockSnapshot>,
    #[prost(message, optional, tag = "11")]
    pub track_event: Option<TrackEvent>,
    #[prost(message, optional, tag = "60")]
    pub track_descriptor: Option<TrackDescriptor>,
}

/// `TracePacket.sequence_flags`: this packet starts the sequence afresh.
pub const SEQ_INCREMENTAL_STATE_CLEARED: u32 = 1;

pub const BUILTIN_CLOCK_MONOTONIC: u32 = 3;
pub const BUILTIN_CLOCK_BOOTTIME: u32 = 6;

#[derive(Clone, PartialEq, prost::Message)]
pub struct FtraceEventBundle {
    #[prost(uint32, optional, tag = "1")]
    pub cpu: Option<u32>,
    #[prost(message, repeated, tag = "2")]
    pub event: Vec<FtraceEvent>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct FtraceEvent {
    /// BOOTTIME ns: ftrace's own clock as Perfetto reads it.
    #[prost(uint64, optional, tag = "1")]
    pub timestamp: Option<u64>,
    /// The task that was running when the event fired.
    #[prost(uint32, optional, tag = "2")]
    pub pid: Option<u32>,
    #[prost(message, optional, tag = "4")]
    pub sched_switch: Option<SchedSwitchFtraceEvent>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SchedSwitchFtraceEvent {
    /// Comms are `bytes` here (the same wire form as `string`), so that a
    /// thread's name is shared by its millions of switches, not copied.
    #[prost(bytes = "bytes", optional, tag = "1")]
    pub prev_comm: Option<bytes::Bytes>,
    #[prost(int32, optional, tag = "2")]
    pub prev_pid: Option<i32>,
    #[prost(int32, optional, tag = "3")]
    pub prev_prio: Option<i32>,
    /// The kernel's task state bits: 0 = R (still runnable: preempted), 1 = S (sleeping).
    #[prost(int64, optional, tag = "4")]
    pub prev_state: Option<i64>,
    #[prost(bytes = "bytes", optional, tag = "5")]
    pub next_comm: Option<bytes::Bytes>,
    #[prost(int32, optional, tag = "6")]
    pub next_pid: Option<i32>,
    #[prost(int32, optional, tag = "7")]
    pub next_prio: Option<i32>,
}

pub const TASK_RUNNING: i64 = 0;
pub const TASK_INTERRUPTIBLE: i64 = 1;

#[derive(Clone, PartialEq, prost::Message)]
pub struct ProcessTree {
    #[prost(message, repeated, tag = "2")]
    pub threads: Vec<Thread>,
}

/// `ProcessTree.Thread`: a thread's id and name (comm), nothing more.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Thread {
    #[prost(int32, optional, tag = "1")]
    pub tid: Option<i32>,
    #[prost(string, optional, tag = "2")]
    pub name: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ClockSnapshot {
    #[prost(message, repeated, tag = "1")]
    pub clocks: Vec<Clock>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Clock {
    #[prost(uint32, optional, tag = "1")]
    pub clock_id: Option<u32>,
    #[prost(uint64, optional, tag = "2")]
    pub timestamp: Option<u64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TrackDescriptor {
    #[prost(uint64, optional, tag = "1")]
    pub uuid: Option<u64>,
    #[prost(uint64, optional, tag = "5")]
    pub parent_uuid: Option<u64>,
    #[prost(string, optional, tag = "2")]
    pub name: Option<String>,
    /// Present on a counter track: its events carry values, not slices.
    #[prost(message, optional, tag = "8")]
    pub counter: Option<CounterDescriptor>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CounterDescriptor {
    /// What the values count, as the UI labels them.
    #[prost(string, optional, tag = "6")]
    pub unit_name: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TrackEvent {
    #[prost(enumeration = "TrackEventType", optional, tag = "9")]
    pub r#type: Option<i32>,
    #[prost(uint64, optional, tag = "11")]
    pub track_uuid: Option<u64>,
    #[prost(string, optional, tag = "23")]
    pub name: Option<String>,
    #[prost(message, repeated, tag = "4")]
    pub debug_annotations: Vec<DebugAnnotation>,
    /// A counter track's value from this event's time on.
    #[prost(int64, optional, tag = "30")]
    pub counter_value: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum TrackEventType {
    Unspecified = 0,
    SliceBegin = 1,
    SliceEnd = 2,
    Instant = 3,
    Counter = 4,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct DebugAnnotation {
    #[prost(string, optional, tag = "10")]
    pub name: Option<String>,
    #[prost(bool, optional, tag = "2")]
    pub bool_value: Option<bool>,
    #[prost(uint64, optional, tag = "3")]
    pub uint_value: Option<u64>,
    #[prost(string, optional, tag = "6")]
    pub string_value: Option<String>,
}

impl DebugAnnotation {
    pub fn uint(name: &str, value: u64) -> DebugAnnotation {
        DebugAnnotation {
            name: Some(name.into()),
            uint_value: Some(value),
            ..DebugAnnotation::default()
        }
    }

    pub fn bool(name: &str, value: bool) -> DebugAnnotation {
        DebugAnnotation {
            name: Some(name.into()),
            bool_value: Some(value),
            ..DebugAnnotation::default()
        }
    }

    pub fn string(name: &str, value: String) -> DebugAnnotation {
        DebugAnnotation {
            name: Some(name.into()),
            string_value: Some(value),
            ..DebugAnnotation::default()
        }
    }
}
