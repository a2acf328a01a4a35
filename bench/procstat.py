"""CPU and memory of process groups from /proc (Linux), sampled by bench.load.

A group is a root pid with all its live descendants (uvicorn's worker processes, say), or every
process with a given command name (PostgreSQL's backends, which come and go). CPU of a group is
the change of its summed user+system ticks, children already reaped by it included, over wall
time; RSS is the sum of VmRSS (shared pages, e.g. PostgreSQL's buffers, count once per process).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(comm, ppid, ticks used by the process and its reaped children)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            text = handle.read()
    except OSError:
        return None
    comm = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return comm, int(fields[1]), utime + stime + cutime + cstime


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def snapshot() -> dict[int, tuple[str, int, int]]:
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            entry = _stat(int(name))
            if entry is not None:
                table[int(name)] = entry
    return table


@dataclass
class Group:
    name: str
    root: int | None = None
    comm: str | None = None
    samples: list[tuple[float, int, int, int]] = field(default_factory=list)

    def members(self, table: dict[int, tuple[str, int, int]]) -> list[int]:
        if self.comm is not None:
            return [pid for pid, (comm, _, _) in table.items() if comm == self.comm]
        if self.root is None or self.root not in table:
            return []
        members, frontier = [self.root], [self.root]
        while frontier:
            parent = frontier.pop()
            children = [pid for pid, (_, ppid, _) in table.items() if ppid == parent]
            members += children
            frontier += children
        return members


class Sampler:
    """Keeps (time, ticks, rss, processes) per group; `summary` turns them into CPU% and MB."""

    def __init__(self, groups: list[Group]) -> None:
        self.groups = groups

    def sample(self) -> None:
        now = time.time()
        table = snapshot()
        for group in self.groups:
            pids = group.members(table)
            ticks = sum(table[pid][2] for pid in pids)
            rss = sum(_rss_kb(pid) for pid in pids)
            group.samples.append((now, ticks, rss, len(pids)))

    def summary(self, start: float, end: float) -> dict[str, dict]:
        result = {}
        for group in self.groups:
            window = [s for s in group.samples if start <= s[0] <= end]
            if len(window) < 2 or not any(s[3] for s in window):
                continue  # not running then (e.g. a previous step's load generator)
            elapsed = window[-1][0] - window[0][0]
            cpu = (window[-1][1] - window[0][1]) / TICKS / elapsed * 100 if elapsed else 0.0
            result[group.name] = {
                "cpu_pct": round(max(cpu, 0.0), 1),
                "rss_mb_max": round(max(s[2] for s in window) / 1024, 1),
                "processes": max(s[3] for s in window),
            }
        return result
