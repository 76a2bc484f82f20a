"""How many CPU threads a capture gives torch: the cores this process may use that other
processes are not using, re-chosen between samples.

torch's default is one intra-op thread per core.  Beside another busy process that
oversubscribes the cores: OpenMP's threads wait for each other at every operation, and one of
them is always waiting for a core, so a sample took 5-31 s on a busy 2-core machine against
~0.9 s alone.  :class:`ThreadPolicy` measures, between two samples, how many cores the *other*
processes kept busy (``/proc/stat`` for the allowed CPUs minus this process's own CPU time) and
sets ``torch.set_num_threads(round(allowed - busy_others))``, at least 1 and at most the allowed
cores (``os.sched_getaffinity``, and a cgroup CPU quota where one is set).

``FASTFACE_THREADS=N`` fixes the count; an ``OMP_NUM_THREADS`` set by the user is respected
(nothing is changed).  Only the CLI's captures on the CPU adapt (``run_sweep(adapt_threads=True)``;
a GPU does the work elsewhere, and library callers keep their own setting).
"""

from __future__ import annotations

import math
import os
import sys
import time

ENV = "FASTFACE_THREADS"


def allowed_cpus() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup v2 quota (cpu.max)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()[:2]
        if quota != "max":
            n = min(n, max(1, math.floor(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, n)


def _cpu_ids() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def read_busy_jiffies(cpus: set[int] | None = None) -> tuple[float, float] | None:
    """(busy, total) jiffies over the given CPUs (all when None) from /proc/stat; None off Linux."""
    try:
        lines = open("/proc/stat").read().splitlines()
    except OSError:
        return None
    busy = total = 0.0
    for line in lines:
        name, *vals = line.split()
        if not name.startswith("cpu") or name == "cpu":
            continue
        if cpus is not None and int(name[3:]) not in cpus:
            continue
        v = [float(x) for x in vals[:8]]
        idle = v[3] + (v[4] if len(v) > 4 else 0.0)  # idle + iowait
        total += sum(v)
        busy += sum(v) - idle
    return (busy, total) if total else None


def choose_threads(allowed: int, busy_others: float | None) -> int:
    """round(allowed - busy_others), within [1, allowed]; ``allowed`` when the load is unknown."""
    if busy_others is None:
        return allowed
    return int(min(allowed, max(1, round(allowed - max(0.0, busy_others)))))


class LoadMeter:
    """Cores kept busy by other processes between two calls of :meth:`others`."""

    def __init__(self):
        self.cpus = _cpu_ids()
        self.n = len(self.cpus) if self.cpus else (os.cpu_count() or 1)
        self._last = self._read()

    def _read(self):
        return read_busy_jiffies(self.cpus), time.process_time()

    def others(self) -> float | None:
        (jiffies, own), (prev_j, prev_own) = self._read(), self._last
        self._last = (jiffies, own)
        if jiffies is None or prev_j is None or jiffies[1] <= prev_j[1]:
            return None
        busy_frac = (jiffies[0] - prev_j[0]) / (jiffies[1] - prev_j[1])  # of all the CPUs' time
        wall_per_cpu = (jiffies[1] - prev_j[1]) / self.n / os.sysconf("SC_CLK_TCK")
        own_cores = (own - prev_own) / wall_per_cpu if wall_per_cpu > 0 else 0.0
        return max(0.0, busy_frac * self.n - own_cores)


class ThreadPolicy:
    """Chooses torch's intra-op thread count for a CPU capture, now and between samples."""

    def __init__(self, *, verbose: bool = True, settle_s: float = 0.3):
        self.fixed = _fixed()
        self.allowed = allowed_cpus()
        self.verbose = verbose
        self.current: int | None = None
        import torch

        self.before = torch.get_num_threads()  # restored by restore() when the capture ends
        self.meter = None if self.fixed else LoadMeter()
        if self.meter is not None and settle_s:
            time.sleep(settle_s)  # a first measurement before any work of ours

    def update(self) -> int | None:
        """Set torch's thread count for the next sample; returns it (None: left as it is)."""
        if self.fixed == "omp":
            return None
        if isinstance(self.fixed, int):
            n, busy = min(self.fixed, self.allowed), None
        else:
            busy = self.meter.others()
            n = choose_threads(self.allowed, busy)
        if n != self.current:
            import torch

            torch.set_num_threads(n)
            if self.verbose:
                why = (f"{ENV}={self.fixed}" if isinstance(self.fixed, int) else
                       f"{self.allowed} cores, ~{busy:.1f} busy with other processes" if busy is not None
                       else f"{self.allowed} cores")
                print(f"capture: {n} torch thread{'s' if n != 1 else ''} ({why})", file=sys.stderr, flush=True)
            self.current = n
        return n


    def restore(self) -> None:
        """Put back the thread count this process had before the policy changed it."""
        if self.current is not None and self.current != self.before:
            import torch

            torch.set_num_threads(self.before)
        self.current = None


def on_cpu(pipe) -> bool:
    """Whether a pipeline runs on the CPU (its ``device``)."""
    device = getattr(pipe, "device", None)
    return getattr(device, "type", str(device)) == "cpu"


def _fixed():
    """An int from FASTFACE_THREADS, 'omp' when the user set OMP_NUM_THREADS, else None (adapt)."""
    text = os.environ.get(ENV, "").strip()
    if text:
        try:
            n = int(text)
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(f"{ENV}={text!r}: give a whole number of threads >= 1, e.g. {ENV}=2")
        return n
    return "omp" if os.environ.get("OMP_NUM_THREADS", "").strip() else None
