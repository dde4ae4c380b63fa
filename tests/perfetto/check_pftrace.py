"""Reads a corelanes session with Perfetto's own generated protos
(perfetto_trace_pb2, PyPI `perfetto`) and checks it against the summary JSON
that `corelanes run --json` wrote for the same run:

- every kernel running slice appears as a sched_switch pair on its CPU
  (switch-in with next_pid = the worker's tid at its start, switch-out with
  prev_pid = that tid at its end, R when preempted and S when it blocked);
- the pids in the switches are exactly the worker tids;
- timestamps are monotonic per CPU.

Usage: check_pftrace.py SESSION.pftrace SUMMARY.json
"""

import json
import sys
from collections import defaultdict

from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb

BOOTTIME, MONOTONIC = 6, 3


def main(trace_path, summary_path):
    trace = pb.Trace()
    with open(trace_path, "rb") as f:
        trace.ParseFromString(f.read())
    summary = json.load(open(summary_path))
    tids = {t["index"]: t["tid"] for t in summary["threads"]}

    boot_origin = None
    switches = defaultdict(list)  # cpu -> [(ts, prev_pid, prev_state, next_pid)]
    for packet in trace.packet:
        if packet.HasField("clock_snapshot") and boot_origin is None:
            clocks = {c.clock_id: c.timestamp for c in packet.clock_snapshot.clocks}
            assert MONOTONIC in clocks and BOOTTIME in clocks, clocks
            boot_origin = clocks[BOOTTIME]
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
    print(f"pftrace ok: {running} running slices as sched_switch pairs on {len(switches)} CPU(s), "
          f"pids = worker tids {sorted(seen_pids)}")


if __name__ == "__main__":
    main(*sys.argv[1:])
