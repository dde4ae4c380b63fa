"""Reads a corelanes session with Perfetto's own generated protos
(perfetto_trace_pb2, PyPI `perfetto`) and checks it against the summary JSON
that `corelanes run --json` wrote for the same run:

- every kernel running slice appears as a sched_switch pair on its CPU
  (switch-in with next_pid = the worker's tid at its start, switch-out with
  prev_pid = that tid at its end, R when preempted and S when it blocked);
- the pids in the switches are exactly the worker tids;
- timestamps are monotonic per CPU;
- the run's counter tracks ("running threads", "runnable threads") exist,
  never count more threads than the run has, and at sample times (each
  slice's middle, start and end) equal the slices in that state then;
- each core's utilisation counter ("cpu N: this run's threads (% of each W
  ms)") holds, in every window, the rounded share of it that the run's
  running slices on that core cover.

Usage: check_pftrace.py SESSION.pftrace SUMMARY.json
"""

import json
import re
import sys
from collections import defaultdict

from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb

BOOTTIME, MONOTONIC = 6, 3
COUNTERS = {"running": "running threads", "runnable": "runnable threads (waiting for a CPU)"}


def main(trace_path, summary_path):
    trace = pb.Trace()
    with open(trace_path, "rb") as f:
        trace.ParseFromString(f.read())
    summary = json.load(open(summary_path))
    tids = {t["index"]: t["tid"] for t in summary["threads"]}

    boot_origin = mono_origin = None
    switches = defaultdict(list)  # cpu -> [(ts, prev_pid, prev_state, next_pid)]
    counter_tracks = {}  # uuid -> name
    counts = defaultdict(list)  # uuid -> [(ts, value)]
    for packet in trace.packet:
        if packet.HasField("clock_snapshot") and boot_origin is None:
            clocks = {c.clock_id: c.timestamp for c in packet.clock_snapshot.clocks}
            assert MONOTONIC in clocks and BOOTTIME in clocks, clocks
            boot_origin, mono_origin = clocks[BOOTTIME], clocks[MONOTONIC]
        if packet.HasField("track_descriptor") and packet.track_descriptor.HasField("counter"):
            counter_tracks[packet.track_descriptor.uuid] = packet.track_descriptor.name
        if packet.HasField("track_event") and packet.track_event.type == pb.TrackEvent.TYPE_COUNTER:
            assert packet.timestamp_clock_id == MONOTONIC, packet
            event = packet.track_event
            counts[event.track_uuid].append((packet.timestamp - mono_origin, event.counter_value))
        if packet.HasField("ftrace_events"):
            bundle = packet.ftrace_events
            for e in bundle.event:
                assert e.HasField("sched_switch"), e
                s = e.sched_switch
                switches[bundle.cpu].append((e.timestamp, s.prev_pid, s.prev_state, s.next_pid))
    assert boot_origin is not None, "no clock snapshot"

    for cpu, events in switches.items():
        times = [ts for ts, *_ in events]
        assert times == sorted(times), f"cpu {cpu}: timestamps go back"

    seen_pids = {p for events in switches.values() for _, a, _, b in events for p in (a, b)} - {0}
    assert seen_pids == {tid for tid in tids.values() if tid}, (seen_pids, tids)

    slices = summary["sched"]["slices"]
    assert slices, "the run captured no kernel slices"
    outs = {}  # (cpu, ts, pid) -> prev_state
    ins = set()
    for cpu, events in switches.items():
        for ts, prev_pid, prev_state, next_pid in events:
            if prev_pid:
                outs[(cpu, ts - boot_origin, prev_pid)] = prev_state
            if next_pid:
                ins.add((cpu, ts - boot_origin, next_pid))
    by_thread = defaultdict(list)
    for s in slices:
        by_thread[s["thread"]].append(s)
    running = 0
    for thread, mine in by_thread.items():
        tid = tids[thread]
        for i, s in enumerate(mine):
            if s["state"] != "running":
                continue
            running += 1
            assert (s["core"], s["start_ns"], tid) in ins, f"no switch-in for {s}"
            key = (s["core"], s["end_ns"], tid)
            assert key in outs, f"no switch-out for {s}"
            after = mine[i + 1] if i + 1 < len(mine) else None
            if after and after["start_ns"] == s["end_ns"] and after["state"] == "runnable":
                assert outs[key] == 0, f"preempted slice not marked R: {s}"
            elif after and after["start_ns"] == s["end_ns"] and after["state"] == "blocked":
                assert outs[key] == 1, f"blocked slice not marked S: {s}"
    pairs = sum(len(e) for e in switches.values()) // 2
    assert pairs == running, f"{pairs} switch pairs for {running} running slices"
    cores = {uuid: name for uuid, name in counter_tracks.items() if CORE.match(name)}
    threads = {uuid: name for uuid, name in counter_tracks.items() if uuid not in cores}
    samples = check_counters(threads, counts, slices, len(tids))
    windows = check_core_busy(cores, counts, slices, summary["wall_ns"])
    print(f"pftrace ok: {running} running slices as sched_switch pairs on {len(switches)} CPU(s), "
          f"pids = worker tids {sorted(seen_pids)}; counters agree at {samples} sample times; "
          f"{len(cores)} core utilisation tracks agree in {windows} windows")


CORE = re.compile(r"cpu (\d+): this run's threads \(% of each (\d+) ms\)$")


def check_core_busy(tracks, counts, slices, wall):
    running_cores = {s["core"] for s in slices if s["state"] == "running"}
    named = {int(CORE.match(name).group(1)): uuid for uuid, name in tracks.items()}
    assert set(named) == running_cores, f"core tracks {sorted(named)}, cores run on {sorted(running_cores)}"
    windows = 0
    for core, uuid in named.items():
        window = int(CORE.match(tracks[uuid]).group(2)) * 1_000_000
        values = counts[uuid]
        mine = [s for s in slices if s["state"] == "running" and s["core"] == core]
        for start in range(0, wall, window):
            end = min(start + window, wall)
            busy = sum(max(0, min(s["end_ns"], end) - max(s["start_ns"], start)) for s in mine)
            expected = (busy * 100 + (end - start) // 2) // (end - start)
            shown = [v for ts, v in values if ts <= start][-1]
            assert shown == expected, f"cpu {core} at {start} ns: counter {shown} %, slices {expected} %"
            windows += 1
        assert values[-1][1] == 0 and values[-1][0] <= wall, f"cpu {core}: not 0 from the run's end"
    return windows


def check_counters(tracks, counts, slices, threads):
    by_name = {name: uuid for uuid, name in tracks.items()}
    assert set(by_name) == set(COUNTERS.values()), f"counter tracks: {sorted(by_name)}"
    samples = 0
    for state, name in COUNTERS.items():
        values = counts[by_name[name]]
        assert values, f"{name}: no values"
        times = [t for t, _ in values]
        assert times == sorted(times) and times[0] == 0, f"{name}: not in time order from 0"
        assert all(0 <= v <= threads for _, v in values), f"{name}: beyond 0..{threads}"
        mine = [s for s in slices if s["state"] == state]
        # Every slice's middle, start and end, where one lasts (a few hundred at most).
        step = max(1, len(mine) // 100)
        at = sorted({t for s in mine[::step] if s["end_ns"] > s["start_ns"]
                     for t in (s["start_ns"], (s["start_ns"] + s["end_ns"]) // 2, s["end_ns"])})
        assert at or not mine, f"{name}: nothing to sample"
        for t in at:
            shown = [v for ts, v in values if ts <= t][-1]
            live = sum(1 for s in mine if s["start_ns"] <= t < s["end_ns"])
            assert shown == live, f"{name} at {t} ns: counter {shown}, slices {live}"
        samples += len(at)
    return samples


if __name__ == "__main__":
    main(*sys.argv[1:])
