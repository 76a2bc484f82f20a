"""workbench.launch and the store path resolution."""

import os
import sys

from workbench import data, launch


def test_command_runs_streamlit_headless_on_host_and_port(tmp_path):
    cmd = launch.command(tmp_path, port=9123, host="127.0.0.1")
    assert cmd[:4] == [sys.executable, "-m", "streamlit", "run"]
    assert cmd[4].endswith(os.path.join("workbench", "app.py"))
    flags = dict(zip(cmd[5:cmd.index("--")][::2], cmd[5:cmd.index("--")][1::2]))
    assert flags["--server.address"] == "127.0.0.1" and flags["--server.port"] == "9123"
    assert flags["--server.headless"] == "true"
    assert cmd[cmd.index("--") + 1:] == ["--store", str(tmp_path)]
    env = launch.environment(tmp_path)
    assert env["FASTFACE_STORE"] == str(tmp_path)


def test_main_refuses_a_missing_store(tmp_path, capsys):
    assert launch.main(tmp_path / "nope", port=9) == 2
    assert "does not exist" in capsys.readouterr().err


def test_store_path_from_argv_then_env(monkeypatch, tmp_path):
    monkeypatch.setenv("FASTFACE_STORE", str(tmp_path / "env"))
    assert data.store_path(["--store", str(tmp_path / "argv")]) == str(tmp_path / "argv")
    assert data.store_path([]) == str(tmp_path / "env")
    monkeypatch.delenv("FASTFACE_STORE")
    assert data.store_path([]) is None
