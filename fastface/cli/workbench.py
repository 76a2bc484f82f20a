"""``fastface workbench``: serve the workbench (the Streamlit app in workbench/app.py) for a store."""
from __future__ import annotations


def launch(store: str, port: int, host: str = "127.0.0.1") -> int:
    from workbench.launch import main as launch

    return launch(store, port, host=host) or 0


def serve_during(store: str, work, port: int, host: str = "127.0.0.1") -> int:
    """Serve the workbench for ``store`` while ``work()`` fills it (``fastface demo``)."""
    from workbench.launch import serve_during as serve

    return serve(store, work, port, host) or 0


def add_workbench(sub) -> None:
    p = sub.add_parser("workbench", help="serve the workbench for a store on http://127.0.0.1:PORT (Ctrl-C stops it)")
    p.add_argument("--store", required=True)
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: localhost only)")
    p.set_defaults(func=lambda a: launch(a.store, a.port, a.host))



def register(sub) -> None:
    add_workbench(sub)
