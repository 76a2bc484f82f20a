"""The ``fastface`` command line: a thin layer over the library.

    fastface generate --checkpoint hyper --preset ff-am2 --id-image PHOTO --prompt TEXT --out OUT.png
    fastface generate --tiny ...             # the offline tiny world (random weights)
    fastface presets                          # list presets and checkpoints
    fastface tiny-world [--root DIR]          # write the tiny world's files
    fastface face-world [--train]             # write (or retrain) the trained offline face world
    fastface capture --dataset DIR --store PATH [--tiny] ...   # a capture sweep into a store
    fastface demo                             # a tiny offline sweep, then the workbench
    fastface workbench --store PATH           # the web app
    fastface export --store PATH --run ID --to DIR
    fastface store vacuum --store PATH --older-than 1h   # remove compacted sample folders
    fastface evaluate --store PATH [--run ID] [--metrics ...] [--tiny]   # metrics into a store
    fastface import --store PATH --images DIR --config CONFIG.json --dataset DIR
    fastface report --store PATH --out DIR   # paper tables, paired statistics, fronts
"""
from __future__ import annotations

import argparse

from fastface.cli import capture, evaluate, face_world, generate, store, weights, workbench
from fastface.cli.errors import run

#: the command groups, in the order of ``fastface --help``: each module's ``register(sub)`` adds its
#: subcommands (generate, presets, tiny-world; capture, demo; workbench; export, store; evaluate,
#: import, report; face-world; weights)
COMMAND_GROUPS = (generate, capture, workbench, store, evaluate, face_world, weights)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastface", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run(build_parser(), argv)
