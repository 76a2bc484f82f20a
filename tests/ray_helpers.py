"""Helpers of the Ray tests (tests/integration/test_ray_*.py)."""
from __future__ import annotations


def sigkill_busiest_actor(pool, events: dict) -> None:
    """SIGKILL (as the OOM killer does) the live actor of an ActorPool with the most items in
    flight; records its pid and in-flight count in ``events``."""
    import os
    import signal

    slot = max(pool.live(), key=lambda s: len(s.inflight))
    assert slot.inflight
    events["pid"], events["inflight"] = pool.pid(slot), len(slot.inflight)
    os.kill(events["pid"], signal.SIGKILL)
