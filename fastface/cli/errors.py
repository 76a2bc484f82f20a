"""Running a ``fastface`` command: bad input and OS/DuckDB errors become one line on stderr and
exit status 2 (:func:`run`, :func:`error_message`); every command group's parser runs through it."""
from __future__ import annotations

import argparse
import sys

from fastface.method.config import ConfigError


#: what to do about an OSError, by errno name (the message names the path)
_OS_FIXES = {
    "EACCES": "fix its permissions or give a folder you can write to",
    "EPERM": "fix its permissions or give a folder you can write to",
    "EROFS": "the filesystem is read-only: give a folder on a writable one",
    "ENOTDIR": "a part of the path is a file, not a folder: give another path",
    "EISDIR": "it is a folder: give a file",
    "ENOENT": "check the path",
    "EEXIST": "it exists already: give another path",
    "ENOSPC": "the disk is full: free space or give a folder on another disk",
    "EDQUOT": "the disk quota is used up: free space or give a folder on another disk",
}


def _one_line(text: str) -> str:
    return " ".join(text.split())


def error_message(e: BaseException) -> str | None:
    """One line for a known error (bad input, OS or DuckDB error), naming the path and the fix;
    None for anything else (a bug: its traceback is kept)."""
    import errno

    if isinstance(e, OSError):
        if e.filename is None or e.strerror is None:
            return _one_line(str(e))
        where = f"{e.filename}" + (f" -> {e.filename2}" if e.filename2 else "")
        fix = _OS_FIXES.get(errno.errorcode.get(e.errno or 0, ""))
        return _one_line(f"{e.strerror}: {where}" + (f" ({fix})" if fix else ""))
    if type(e).__module__.split(".")[0] in ("duckdb", "_duckdb"):
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        fix = ("fix the permissions of that path or give a folder you can write to"
               if "ermission denied" in first or "read-only" in first.lower() else
               "check the path in the message; store/README.md describes a store folder")
        return _one_line(f"DuckDB: {first} ({fix})")
    if type(e).__name__ == "WeightsMissing":  # one message, a bullet per missing component
        return str(e).strip()
    if isinstance(e, (ConfigError, ValueError, RuntimeError)):
        return _one_line(str(e))
    return None


def run(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parse and run a command.  Bad input and OS/DuckDB errors become one line on stderr and
    exit status 2 (``--debug`` or FASTFACE_DEBUG=1: the traceback instead)."""
    import os

    if not any(a.dest == "debug" for a in parser._actions):
        parser.add_argument("--debug", action="store_true",
                            help="show the traceback of an error (anywhere on the command line)")
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("FASTFACE_DEBUG") == "1"
    args = parser.parse_args([a for a in argv if a != "--debug"])
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"fastface {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - known kinds become one line, others re-raise
        message = None if debug else error_message(e)
        if message is None:
            raise
        print(f"fastface {args.command}: error: {message}", file=sys.stderr)
        return 2
