"""The shared model daemon with the real embedded model: one daemon for many clients, fair turns, cancels,
a killed daemon that every client survives, the tcp + token fallback, and the runtime directory's checks.

Clients here are `DaemonClient`s in this test process (the three-server test is tests/lsp/test_shared.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys

import pytest

from diffgem_lsp.backends.base import BackendError
from diffgem_lsp.backends.daemon import DaemonClient
from diffgem_lsp.backends.daemon_runtime import DaemonPlace, runtime_dir
from diffgem_lsp.settings import Settings
from diffgem_protocol import GenerateParams, SamplerSettings

SETTINGS = Settings(device="cpu")


def hole(i: int = 0, steps: int = 4, early_stop: bool = True) -> GenerateParams:
    sampler = SamplerSettings(max_steps=steps, rule="confidence")
    if not early_stop:
        # The step budget alone ends it: a zero mean-entropy bar never triggers, and the entropy rule
        # re-draws what it does not accept (the confidence rule ends once every position is
        # committed: model/sampler.py `_settled`, a handful of steps for 8 tokens).
        sampler = SamplerSettings(max_steps=steps, rule="entropy", stop_entropy=0.0)
    return GenerateParams(
        prefix=f"def add_{i}(a, b):\n    return ",
        suffix="\n\n\nprint(add(1, 2))\n",
        max_tokens=8,
        sampler=sampler,
    )


@pytest.fixture
def rundir(tmp_path, monkeypatch):
    """A private runtime directory per test, and every daemon started in it killed afterwards."""
    path = tmp_path / "rt"
    monkeypatch.setenv("DIFFGEM_RUNTIME_DIR", str(path))
    pids: set[int] = set()
    yield path, pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def clients(n: int, events: list | None = None) -> list[DaemonClient]:
    sink = events if events is not None else []

    def on_state(i: int):  # each client's state changes, tagged with its index
        return lambda s, m: sink.append((i, s, m))

    return [DaemonClient(SETTINGS, on_state=on_state(i)) for i in range(n)]


async def ready(cs: list[DaemonClient], pids: set[int]) -> None:
    await asyncio.gather(*(c.wait_ready(300) for c in cs))
    pids.update(c.pid for c in cs if c.pid is not None)


async def test_three_clients_one_daemon_all_answered(rundir):
    path, pids = rundir
    cs = clients(3)
    await ready(cs, pids)  # all three start at once: the start lock makes one daemon
    assert len({c.pid for c in cs}) == 1 and len(pids) == 1
    results = await asyncio.gather(*(c.generate(hole(i)) for i, c in enumerate(cs)))
    assert all(r.token_ids for r in results)
    status = await cs[0].status()
    assert len(status["clients"]) == 3 and status["totals"]["generations"] == 3
    assert status["rss_mb"] > 0 and status["cache_lookups"] == 3  # one prompt cache for all
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    sock = DaemonPlace.for_settings(SETTINGS).socket
    assert stat.S_ISSOCK(sock.stat().st_mode) and stat.S_IMODE(sock.stat().st_mode) & 0o077 == 0
    # `diffgem-lsp --status`: the daemon, its clients (the three, and the status query itself), memory.
    out = subprocess.run(
        [sys.executable, "-m", "diffgem_lsp", "--status"],
        capture_output=True,
        text=True,
        timeout=300,  # a hang guard for a process start on a loaded machine
    )
    (daemon,) = json.loads(out.stdout)["daemons"]
    assert daemon["running"] and daemon["pid"] == cs[0].pid and daemon["rss_mb"] > 0
    names = [c["name"] for c in daemon["clients"]]
    assert len(names) == 4 and names.count(f"diffgem-lsp pid {os.getpid()}") == 3
    for c in cs:
        await c.stop()


async def test_turns_are_round_robin_and_cancel_is_per_client(rundir):
    _, pids = rundir
    a, b = clients(2)
    await ready([a, b], pids)
    done: list[str] = []

    async def run_params(client: DaemonClient, name: str, params: GenerateParams) -> None:
        await client.generate(params)
        done.append(name)

    async def run(client: DaemonClient, name: str, i: int) -> None:
        await run_params(client, name, hole(i))

    # a queues three requests, then b one: b's must not wait for all of a's. a's first is long, so
    # that b's reaches the daemon's queue while it runs (after it, a's second would already have
    # been taken: a short one finished first on a loaded machine and b's ran after all of a's).
    first = asyncio.ensure_future(run_params(a, "a0", hole(0, steps=64, early_stop=False)))
    tasks = [first, *(asyncio.ensure_future(run(a, f"a{i}", i)) for i in range(1, 3))]
    await _until(lambda: len(a._pending) == 3)  # a's requests are on the socket first
    tasks.append(asyncio.ensure_future(run(b, "b0", 9)))
    # a's superseded request (as the session cancels it on the next keystroke) is dropped; b is untouched.
    victim = asyncio.ensure_future(a.generate(hole(5)))
    await _until(lambda: len(a._pending) == 4)
    victim.cancel()
    await asyncio.gather(*tasks)
    with pytest.raises(asyncio.CancelledError):
        await victim
    assert done.index("b0") < done.index("a2"), done
    status = await a.status()
    assert status["totals"]["generations"] == 4  # the cancelled one never ran
    await a.stop()
    await b.stop()


async def test_daemon_killed_mid_request_every_client_recovers(rundir):
    _, pids = rundir
    events: list = []
    cs = clients(3, events)
    await ready(cs, pids)
    first = cs[0].pid
    assert first is not None
    # Long requests (thousands of steps, no early stop): all three are in the daemon when it dies.
    slow = [
        asyncio.ensure_future(c.generate(hole(i, steps=4000, early_stop=False)))
        for i, c in enumerate(cs)
    ]
    await _until(lambda: all(c._pending for c in cs))
    os.kill(first, signal.SIGKILL)
    for task in slow:
        with pytest.raises(BackendError, match="exited during the request"):
            await task
    results = await asyncio.gather(*(c.generate(hole(i)) for i, c in enumerate(cs)))
    assert all(r.token_ids for r in results)
    await ready(cs, pids)
    assert len({c.pid for c in cs}) == 1 and cs[0].pid != first  # one new daemon for all
    for i in range(3):
        told = [m for j, s, m in events if j == i and "exited" in m]
        assert len(told) == 1, [e for e in events if e[0] == i]  # each client says so once
    for c in cs:
        await c.stop()


async def test_tcp_fallback_needs_the_token(rundir, monkeypatch):
    _, pids = rundir
    monkeypatch.setenv("DIFFGEM_DAEMON_TCP", "1")
    (c,) = clients(1)
    await ready([c], pids)
    place = DaemonPlace.for_settings(SETTINGS)
    assert stat.S_IMODE(place.tcp_info.stat().st_mode) == 0o600
    info = json.loads(place.tcp_info.read_text())
    # A connection that does not send the token first is closed without a word.
    reader, writer = await asyncio.open_connection("127.0.0.1", info["port"])
    writer.write(b'{"v":2,"op":"status"}\n')
    assert await reader.read() == b""
    writer.close()
    assert (await c.generate(hole())).token_ids
    await c.stop()


def test_worker_and_daemon_take_the_same_model_options(tmp_path, monkeypatch):
    """One builder (backends/local.py model_args) for both spawns, parsed by one parser builder
    (model/worker.py add_model_options) in both processes: every setting reaches both alike."""
    import argparse

    from diffgem_model.worker import add_model_options

    from diffgem_lsp.backends.daemon_runtime import spawn_daemon
    from diffgem_lsp.backends.local import LocalWorker, model_args

    monkeypatch.chdir(tmp_path)
    settings = Settings(model_path="ckpt", device="cpu", precision="int8", prompt_cache_mb=64)
    parser = argparse.ArgumentParser()
    add_model_options(parser)
    args = parser.parse_args(model_args(settings))
    # A relative checkpoint is the server's: made absolute, as neither process starts here.
    assert (args.model, args.device, args.precision, args.prompt_cache_mb) == (
        str(tmp_path / "ckpt"),
        "cpu",
        "int8",
        64,
    )
    assert LocalWorker(settings).command()[-len(model_args(settings)) :] == model_args(settings)
    spawned: list[tuple[str, ...]] = []

    async def record(*cmd, **_kw):
        spawned.append(cmd)
        raise OSError("not started in this test")

    monkeypatch.setattr(asyncio, "create_subprocess_exec", record)
    monkeypatch.setenv("DIFFGEM_RUNTIME_DIR", str(tmp_path / "rt"))
    with pytest.raises(OSError):
        asyncio.run(spawn_daemon(DaemonPlace.for_settings(settings), settings, 5.0))
    (cmd,) = spawned
    assert " ".join(model_args(settings)) in " ".join(cmd)


def test_runtime_dir_must_be_private(tmp_path, monkeypatch):
    path = tmp_path / "shared"
    path.mkdir(mode=0o755)
    os.chmod(path, 0o755)
    monkeypatch.setenv("DIFFGEM_RUNTIME_DIR", str(path))
    with pytest.raises(BackendError, match="mode 0700"):
        runtime_dir()
    os.chmod(path, 0o700)
    assert runtime_dir() == path


async def _until(condition, limit: float = 120.0) -> None:
    """Wait for a state to be reached (the limit only stops a broken test; nothing is timed)."""
    for _ in range(int(limit / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never became true")
