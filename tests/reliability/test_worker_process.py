"""The worker process on its own: a broken install is reported (not a crash), and it exits with its server.

Findings 7 (an import failure crashed the worker) and 10 (the worker outlived its server) of issue 14.
The worker is started directly, speaking its line protocol (diffgem_protocol) over pipes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from .lsp_process import alive, server_env


def worker(tmp_path, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "diffgem_model.worker", "--device", "cpu"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
        env=server_env(**env),
    )


def events(proc: subprocess.Popen, until: str, limit: int = 20) -> list[dict]:
    assert proc.stdout is not None
    seen: list[dict] = []
    for _ in range(limit):
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(json.loads(line))
        if seen[-1].get("event") == until:
            break
    return seen


def test_broken_torch_install_is_reported_as_a_load_failure(tmp_path):
    fake = tmp_path / "site"
    (fake / "torch").mkdir(parents=True)
    (fake / "torch" / "__init__.py").write_text('raise ImportError("torch is broken here")\n')
    proc = worker(tmp_path, PYTHONPATH=str(fake))
    try:
        seen = events(proc, "load_failed")
        assert seen and seen[-1]["event"] == "load_failed", seen
        assert "torch is broken here" in seen[-1]["message"]
        assert proc.poll() is None  # still up: it answers requests with the reason
        assert proc.stdin is not None
        proc.stdin.write(b'{"v":2,"op":"status"}\n')
        proc.stdin.flush()
        (status,) = events(proc, "status", limit=1)
        assert status["state"] == "error" and "torch is broken here" in status["error"]
    finally:
        proc.kill()
        proc.wait(10)


def test_worker_exits_when_its_stdin_closes_even_while_loading(tmp_path):
    proc = worker(tmp_path)
    try:
        assert events(proc, "hello", limit=1)[0]["event"] == "hello"
        assert proc.stdin is not None
        proc.stdin.close()  # the server is gone
        deadline = time.monotonic() + 20
        while alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(proc.pid), "the worker outlived its server"
    finally:
        proc.kill()
        proc.wait(10)
