"""What a ``--ray`` command needs around the actor pool of :mod:`fastface.sweeps.distributed`: its
command-line options, the device rule, and the checks and settings each actor makes on its node
before it loads anything (same code as the driver, same store path, quiet loading bars).
Nothing here imports Ray.
"""
from __future__ import annotations

import os
import socket
from typing import Sequence


def source_fingerprint(packages: Sequence[str] = ("fastface", "probes", "store")) -> str:
    """sha1 over the Python sources of ``packages`` (every module, subpackages included: relative
    paths + bytes), to check that the driver and the actors run the same code (Ray workers import what is
    installed on their node, plus the driver's working directory)."""
    import hashlib
    import importlib.util
    from pathlib import Path

    h = hashlib.sha1()
    for name in packages:
        spec = importlib.util.find_spec(name)  # no import: the path is enough
        root = Path(spec.origin).parent
        for f in sorted(root.rglob("*.py")):
            h.update(str(f.relative_to(root.parent)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def check_node(store_path: str, worker_id: str, *, marker: str | None = None, code: str | None = None,
               packages: Sequence[str] = ("fastface", "probes", "store")) -> None:
    """Raise, naming the host and the fix, when this actor runs other code than the driver
    (``code`` = the driver's :func:`source_fingerprint` of ``packages``) or does not see the
    driver's store (``marker``: a file the driver put in the store; a node without the shared
    filesystem has no such path, or a node-local folder of the same name)."""
    if code is not None and source_fingerprint(packages) != code:
        import importlib.util

        where = os.path.dirname(importlib.util.find_spec("fastface").origin)
        raise RuntimeError(
            f"Ray worker {worker_id} on host {socket.gethostname()} imports other {'/'.join(packages)} code "
            f"({where}) than the driver: install the same version on every node "
            "(Ray workers import what is installed on their node, plus the driver's working directory)")
    if marker is not None and not os.path.exists(marker):
        raise FileNotFoundError(
            f"store {store_path}: Ray worker {worker_id} on host {socket.gethostname()} does not see the driver's "
            f"store there (no {os.path.basename(marker)}): with --ray the store must be on a shared filesystem "
            "mounted at the same path on every node")


def quiet_progress_bars() -> None:
    """Loading bars of every actor would interleave with the driver's bar."""
    for name in ("diffusers", "transformers"):
        try:
            mod = __import__(f"{name}.utils.logging", fromlist=["disable_progress_bar"])
            mod.disable_progress_bar()
        except Exception:  # noqa: BLE001
            pass


def add_ray_arguments(parser, loads: str) -> None:
    """The ``--ray`` options of a command (``loads``: what each actor loads once)."""
    ray = parser.add_argument_group("Ray (several GPUs or nodes; see the README)")
    ray.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                     help="run on Ray actors: no ADDRESS starts a local cluster (or joins RAY_ADDRESS), "
                          "'auto' joins the cluster of 'ray start' on this machine, or give host:port / ray://host:port")
    ray.add_argument("--ray-actors", type=int, help=f"actors, each loading {loads} once "
                     "(default: one per GPU of the cluster, else 1)")
    ray.add_argument("--ray-gpus-per-actor", type=float,
                     help="GPUs per actor (default: 1 when the cluster has GPUs, else 0)")
    ray.add_argument("--ray-cpus-per-actor", type=int, default=1,
                     help="CPUs per actor, also its torch threads (default 1)")


def check_ray_device(device: str | None) -> None:
    """``--device cuda:N`` cannot work with ``--ray``: Ray gives each actor its GPU(s) through
    CUDA_VISIBLE_DEVICES, so an actor sees its GPU as ``cuda`` (``cuda:0``)."""
    if device and device.startswith("cuda:") and device != "cuda:0":
        raise ValueError(f"--device {device} with --ray: each Ray actor sees only the GPU Ray gave it, as 'cuda'; "
                         "leave --device unset (or use --device cpu)")
