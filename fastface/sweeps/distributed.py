"""Running per-item work on a Ray cluster: an actor pool with per-actor setup, retries and progress.

This module is generic (``fastface capture --ray`` uses it through :mod:`fastface.sweeps.sweep_ray`;
an evaluator can use it the same way). Ray is imported inside the functions only, so importing
this module never starts or needs Ray.

    from fastface.sweeps.distributed import PoolOptions, ray_session, run_pool

    def setup(info):                     # runs once in each actor (load models, open a writer, ...)
        model = load(...)
        return lambda item: model(item)  # the per-item function (may have a .close())

    with ray_session(address=None):      # attach to / start a cluster; shut down what it started
        stats = run_pool(items, setup, PoolOptions(actors=2, num_gpus=1),
                         on_result=lambda item, result: ..., progress=lambda done, total: ...)

Semantics
---------
* Each actor runs ``fn = setup(WorkerInfo)`` once (lazily, inside its first task, so a setup
  error reaches the driver as an ordinary task error) and then ``fn(item)`` per item, one at a
  time. The driver keeps ``inflight`` items queued per actor so that actors never wait for it.
* Items are handed out in order, to the least busy live actor. ``on_result(item, result)`` and
  ``progress(done, total)`` are called on the driver, in completion order.
* **An actor that dies** (killed, out of memory, its node lost: ``RayActorError``,
  ``WorkerCrashedError``, ``OutOfMemoryError``) is killed for good on the driver's side and its
  in-flight items go back to the front of the queue, for another actor. The slot gets a fresh
  actor (with a fresh setup) up to ``max_restarts`` times. Items it finished before it died
  (results already in the object store) count as done. Which of several in-flight items the
  actor was running when it died cannot be known (a finished item's reply may die with the
  actor), so no item is blamed then: all of them become *suspects*, and a suspect is sent again
  alone, to an idle actor that gets nothing else until it is done. An item is charged an attempt
  only when it was the one unfinished item of an actor that died; an item charged
  ``max_attempts`` times (a sample that kills every worker that tries it) is handed to
  ``on_give_up(item, error)`` instead of being retried again (default: raise
  :class:`PoolError`). An innocent item queued beside a poison one is therefore never given up.
  When no actor is left the pool raises :class:`PoolError`.
* **An exception raised by** ``setup`` **or** ``fn`` is not retried: the pool kills its actors
  and raises it on the driver (as ``RayTaskError`` that is also an instance of the original
  exception class), like a single-process loop would. Per-item failures that should not stop the
  pool must be handled inside ``fn`` (the capture worker records them as failed samples).
* Retrying means an item may run twice (the dead actor may have finished it just before dying),
  so ``fn`` must be idempotent: the capture worker's ``StoreWriter.write_sample`` keeps the first
  commit of a sample and returns False for any later one.
* Ctrl-C or any error on the driver kills the pool's actors (they are owned by the driver and
  would die with it anyway).
"""
from __future__ import annotations

import os
import sys
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

RAY_MISSING = ("--ray needs Ray, which is not installed: pip install 'ray==2.60.*' "
               "(the same version on every node of the cluster)")


class PoolError(RuntimeError):
    """The pool cannot finish: every actor died, or an item killed ``max_attempts`` actors."""


@dataclass(frozen=True)
class WorkerInfo:
    """What ``setup`` learns about the actor it runs in."""

    slot: int                # 0 .. actors-1
    incarnation: int         # 0 for the first actor of the slot, +1 for each replacement
    num_cpus: float
    num_gpus: float

    @property
    def worker_id(self) -> str:
        return f"ray{self.slot}" + (f"r{self.incarnation}" if self.incarnation else "")


@dataclass(frozen=True)
class PoolOptions:
    actors: int = 1
    num_cpus: float = 1          # per actor (Ray scheduling; the capture worker also sets torch's threads)
    num_gpus: float = 0          # per actor (1: one actor per GPU)
    inflight: int = 2            # items queued per actor
    max_attempts: int = 3        # actor deaths an item may cause before on_give_up
    max_restarts: int = 2        # replacements per slot

    def __post_init__(self):
        if self.actors < 1:
            raise ValueError(f"the number of Ray actors must be >= 1, not {self.actors}")
        if self.inflight < 1 or self.max_attempts < 1 or self.max_restarts < 0:
            raise ValueError("inflight and max_attempts must be >= 1, max_restarts >= 0")
        if self.num_cpus < 0 or self.num_gpus < 0:
            raise ValueError("num_cpus and num_gpus per actor must be >= 0")


@dataclass
class PoolStats:
    total: int = 0
    done: int = 0                # items with a result (on_result) or given up (on_give_up)
    given_up: int = 0
    resubmitted: int = 0         # items sent again after their actor died
    actor_deaths: int = 0
    replacements: int = 0
    seconds: float = 0.0
    deaths: list[str] = field(default_factory=list)  # one line per dead actor


def import_ray():
    try:
        import ray
    except ImportError as e:
        raise RuntimeError(RAY_MISSING) from e
    return ray


@contextmanager
def ray_session(address: str | None = None, **init_kwargs) -> Iterator[Any]:
    """Attach to a Ray cluster for the block and yield the ``ray`` module.

    Already initialised in this process (a test, a notebook): used as it is. Otherwise
    ``ray.init(address=address)``: ``None`` starts a local cluster on this machine (or joins the
    one named by ``RAY_ADDRESS``), ``"auto"`` joins the cluster that ``ray start`` made on this
    machine, ``"ray://host:10001"`` is Ray Client. A cluster this call connected to is
    disconnected (and a local one it started is stopped) at the end."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    kwargs = {"include_dashboard": False, "log_to_driver": True, **init_kwargs}
    if address:
        kwargs.pop("include_dashboard")  # a setting of the head node, not of a driver
    ray.init(address=address or None, **kwargs)
    try:
        yield ray
    finally:
        ray.shutdown()


def cluster_totals(ray) -> tuple[float, float]:
    """(CPUs, GPUs) of the cluster now."""
    res = ray.cluster_resources()
    return float(res.get("CPU", 0)), float(res.get("GPU", 0))


def default_pool_options(ray, actors: int | None = None, gpus_per_actor: float | None = None,
                         cpus_per_actor: float = 1, **kw) -> PoolOptions:
    """One actor per GPU of the cluster (``num_gpus=1``); without GPUs, one CPU actor.

    Raises ValueError when the request exceeds what the cluster has (actors that can never be
    placed would hold their items for ever)."""
    cpus, gpus = cluster_totals(ray)
    if gpus_per_actor is None:
        gpus_per_actor = 1.0 if gpus >= 1 else 0.0
    if actors is None:
        actors = max(1, int(gpus // gpus_per_actor)) if gpus_per_actor > 0 else 1
    need_g, need_c = actors * gpus_per_actor, actors * cpus_per_actor
    if need_g > gpus + 1e-9 or need_c > cpus + 1e-9:
        raise ValueError(
            f"{actors} Ray actor(s) x ({cpus_per_actor:g} CPU, {gpus_per_actor:g} GPU) need {need_c:g} CPUs and "
            f"{need_g:g} GPUs; the cluster has {cpus:g} CPUs and {gpus:g} GPUs: lower --ray-actors "
            "(or --ray-gpus-per-actor / --ray-cpus-per-actor)")
    return PoolOptions(actors=actors, num_cpus=cpus_per_actor, num_gpus=gpus_per_actor, **kw)


class PoolWorker:
    """The actor: ``setup`` once, then ``fn(item)`` per call."""

    def __init__(self, setup: Callable[[WorkerInfo], Callable], info: WorkerInfo):
        self._setup, self._info, self._fn = setup, info, None

    def pid(self) -> int:
        return os.getpid()

    def run(self, item):
        if self._fn is None:
            self._fn = self._setup(self._info)
        return self._fn(item)

    def close(self) -> None:
        close = getattr(self._fn, "close", None)
        if close is not None:
            close()


@dataclass
class _Slot:
    index: int
    incarnation: int
    handle: Any
    pid_ref: Any
    inflight: list = field(default_factory=list)  # ObjectRefs, oldest first
    alive: bool = True


class ActorPool:
    """See the module docstring. ``run()`` may be called once; ``slots`` are exposed for tests
    (``pid(slot)`` / ``ray.kill(slot.handle)``)."""

    def __init__(self, setup: Callable[[WorkerInfo], Callable], options: PoolOptions):
        self.ray = import_ray()
        self.setup = setup
        self.options = options
        self._cls = self.ray.remote(PoolWorker)
        self.slots: list[_Slot] = [self._start(i, 0) for i in range(options.actors)]

    def _start(self, index: int, incarnation: int) -> _Slot:
        o = self.options
        info = WorkerInfo(index, incarnation, o.num_cpus, o.num_gpus)
        handle = self._cls.options(
            num_cpus=o.num_cpus, num_gpus=o.num_gpus, max_restarts=0, max_task_retries=0,
        ).remote(self.setup, info)
        return _Slot(index, incarnation, handle, handle.pid.remote())

    def pid(self, slot: _Slot, timeout: float = 60) -> int:
        return self.ray.get(slot.pid_ref, timeout=timeout)

    def live(self) -> list[_Slot]:
        return [s for s in self.slots if s.alive]

    def _death_errors(self) -> tuple:
        exc = self.ray.exceptions
        names = ("RayActorError", "WorkerCrashedError", "OutOfMemoryError", "NodeDiedError", "ObjectLostError")
        return tuple(getattr(exc, n) for n in names if hasattr(exc, n))

    def run(self, items: Sequence, *, on_result: Callable[[Any, Any], None] | None = None,
            on_give_up: Callable[[Any, BaseException], None] | None = None,
            progress: Callable[[int, int], None] | None = None,
            hook: Callable[["ActorPool", PoolStats], None] | None = None) -> PoolStats:
        ray, o = self.ray, self.options
        t0 = time.perf_counter()
        stats = PoolStats(total=len(items))
        queue = deque(range(len(items)))
        attempts = [0] * len(items)
        suspects: set[int] = set()  # items lost with a dead actor: dispatched alone from now on
        pending: dict = {}  # ObjectRef -> (slot, item index)
        deaths = self._death_errors()

        def finished(n: int = 1):
            stats.done += n
            if progress is not None:
                progress(stats.done, stats.total)

        def deliver(idx: int, result) -> None:
            if on_result is not None:
                on_result(items[idx], result)
            finished()
            if hook is not None:
                hook(self, stats)

        def bury(slot: _Slot, error: BaseException) -> None:
            slot.alive = False
            stats.actor_deaths += 1
            stats.deaths.append(f"actor {slot.index}.{slot.incarnation}: {type(error).__name__}: "
                                f"{' '.join(str(error).split())}"[:300])
            try:  # make sure it is gone (an unreachable actor must not go on writing)
                ray.kill(slot.handle, no_restart=True)
            except Exception:  # noqa: BLE001  already dead
                pass
            lost = []  # items whose result is lost, in the order the actor took them
            for r in list(slot.inflight):
                if r not in pending:
                    continue
                idx = pending.pop(r)[1]
                if ray.wait([r], timeout=0)[0]:  # finished before the actor died: its result stands
                    try:
                        result = ray.get(r)
                    except deaths:
                        pass
                    except ray.exceptions.RayTaskError as e:  # fn raised: no retry (as in the loop)
                        raise e.as_instanceof_cause() from None
                    else:
                        deliver(idx, result)
                        continue
                lost.append(idx)
            slot.inflight.clear()
            resubmitted = stats.resubmitted
            if len(lost) == 1:  # alone on the actor: the item it was running
                attempts[lost[0]] += 1
            suspects.update(lost)  # several: any of them may have been running; each goes again alone
            for idx in reversed(lost):
                if attempts[idx] >= o.max_attempts:
                    stats.given_up += 1
                    if on_give_up is None:
                        raise PoolError(f"item {idx} was running alone on {attempts[idx]} actors that died; "
                                        f"last: {stats.deaths[-1]}") from error
                    on_give_up(items[idx], error)
                    finished()
                else:
                    stats.resubmitted += 1
                    queue.appendleft(idx)
            if slot.incarnation < o.max_restarts:
                self.slots[slot.index] = self._start(slot.index, slot.incarnation + 1)
                stats.replacements += 1
            print(f"ray: {stats.deaths[-1]}; {stats.resubmitted - resubmitted} item(s) resubmitted"
                  f"{'; a replacement actor starts' if slot.incarnation < o.max_restarts else ''}", file=sys.stderr)

        try:
            while queue or pending:
                live = self.live()
                if not live:
                    raise PoolError("every Ray actor died (" + "; ".join(stats.deaths[-3:]) + "); "
                                    f"{len(queue)} item(s) not done")
                while queue:  # fill: least busy live actor first; a suspect only to an idle actor
                    room = 1 if queue[0] in suspects else o.inflight
                    open_ = [s for s in live if len(s.inflight) < room
                             and not any(pending[r][1] in suspects for r in s.inflight)]
                    if not open_:
                        break
                    slot = min(open_, key=lambda s: (len(s.inflight), s.index))
                    idx = queue.popleft()
                    ref = slot.handle.run.remote(items[idx])
                    slot.inflight.append(ref)
                    pending[ref] = (slot, idx)
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
                for ref in ready:
                    if ref not in pending:  # dropped with its dead actor
                        continue
                    slot, idx = pending[ref]
                    try:
                        result = ray.get(ref)
                    except deaths as e:
                        if getattr(e, "actor_init_failed", False):  # cannot even build the actor: no retry
                            raise PoolError(f"a Ray actor could not be created: {e}") from e
                        bury(slot, e)  # requeues all its in-flight items, this one included
                        continue
                    except ray.exceptions.RayTaskError as e:  # setup or fn raised: no retry
                        raise e.as_instanceof_cause() from None
                    del pending[ref]
                    slot.inflight.remove(ref)
                    deliver(idx, result)
        finally:
            self.shutdown()
            stats.seconds = time.perf_counter() - t0
        return stats

    def shutdown(self) -> None:
        ray = self.ray
        closing = []
        for s in self.live():
            if not s.inflight:  # idle: let it release what it holds (close its writer)
                closing.append(s.handle.close.remote())
        if closing:
            try:
                ray.wait(closing, num_returns=len(closing), timeout=10)
            except Exception:  # noqa: BLE001
                pass
        for s in self.slots:
            try:
                ray.kill(s.handle, no_restart=True)
            except Exception:  # noqa: BLE001
                pass
            s.alive = False


def run_pool(items: Sequence, setup: Callable[[WorkerInfo], Callable], options: PoolOptions, **kwargs) -> PoolStats:
    """``ActorPool(setup, options).run(items, **kwargs)``: see the module docstring."""
    return ActorPool(setup, options).run(items, **kwargs)
