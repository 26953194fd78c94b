"""Broken checkpoints and settings the model cannot run with: one message that names the fix, no hang.

Findings 6 (remote code) and 7 (failures never shown; -32803 lost; automatic requests erroring) of issue
14. One real server; each case points `modelPath` (or `device`) somewhere broken and restarts the worker.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest
from diffgem_model import EMBEDDED_CHECKPOINT

from .lsp_process import FAST, MISSING_MODEL, LspProcess

URI = "file:///checkpoints/a.py"
TEXT = 'def greet(name):\n    message = "Hello, "\n    return message\n'
POSITION = {"line": 1, "character": 22}
EVIL = 'import pathlib\npathlib.Path({marker!r}).write_text("remote code ran")\n'


def copy_embedded(dest: Path) -> Path:
    shutil.copytree(EMBEDDED_CHECKPOINT, dest, ignore=shutil.ignore_patterns("*.png", "*.md"))
    return dest


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("checkpoints")
    (root / "empty").mkdir()
    truncated = copy_embedded(root / "truncated")
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    remote = copy_embedded(root / "remote")
    marker = root / "REMOTE_CODE_RAN"
    (remote / "evil_tokenizer.py").write_text(EVIL.format(marker=str(marker)))
    # A model type transformers does not know, whose config and tokenizer point at code in the
    # checkpoint: loading it without trust_remote_code=False asks "[y/N]" on the worker's stdin.
    auto_map = ["evil_tokenizer.EvilTokenizer", "evil_tokenizer.EvilTokenizer"]
    config = json.loads((remote / "config.json").read_text())
    config.update(
        model_type="evil_model",
        auto_map={"AutoConfig": "evil_tokenizer.EvilConfig", "AutoTokenizer": auto_map},
    )
    (remote / "config.json").write_text(json.dumps(config))
    config = json.loads((remote / "tokenizer_config.json").read_text())
    config.pop("tokenizer_class", None)
    config["auto_map"] = {"AutoTokenizer": auto_map}
    (remote / "tokenizer_config.json").write_text(json.dumps(config))
    nan = copy_embedded(root / "nan")
    from safetensors.torch import load_file, save_file

    tensors = load_file(nan / "model.safetensors")
    name = next(n for n, t in tensors.items() if t.is_floating_point() and t.dim() == 2)
    tensors[name][0, 0] = float("nan")
    save_file(tensors, nan / "model.safetensors", metadata={"format": "pt"})
    return {"root": root, "marker": marker}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    lsp = LspProcess(log=tmp_path_factory.mktemp("log") / "server.log")
    assert "result" in lsp.initialize({**FAST, **MISSING_MODEL})
    lsp.open(URI, TEXT)
    yield lsp
    lsp.kill()


def errors(lsp: LspProcess) -> list[str]:
    return [
        m["params"]["message"]
        for m in lsp.messages("window/showMessage")
        if m["params"]["type"] == 1
    ]


def configure(lsp: LspProcess, **settings) -> int:
    """Change settings (restarting the worker); the number of error messages shown before."""
    shown = len(errors(lsp))
    lsp.notify("workspace/didChangeConfiguration", {"settings": {"diffgem": settings}})
    return shown


def next_error(lsp: LspProcess, shown: int, timeout: float = 180) -> str:
    assert lsp.wait(lambda: len(errors(lsp)) > shown, timeout), (errors(lsp), lsp.status())
    return errors(lsp)[shown]


def inline(automatic: bool) -> dict:
    return {
        "textDocument": {"uri": URI},
        "position": POSITION,
        "context": {"triggerKind": 2 if automatic else 1},
    }


def test_missing_checkpoint_is_shown_once_and_requests_answer(server):
    message = next_error(server, 0)
    assert "not found" in message and "diffgem.modelPath" in message, message
    invoked = server.call("textDocument/inlineCompletion", inline(False), timeout=60)
    assert invoked["error"]["code"] == -32803, invoked  # REQUEST_FAILED, not -32603
    automatic = server.call("textDocument/inlineCompletion", inline(True), timeout=60)
    assert automatic.get("result") == {"items": []}, automatic  # automatic: empty, not an error
    assert len(errors(server)) == 1  # the same failure is not shown again per request


@pytest.mark.parametrize(
    "case,expected",
    [
        ("empty", "no config.json"),
        ("truncated", "could not be loaded"),
        ("remote", "custom code"),
        ("nan", "NaN"),
    ],
)
def test_broken_checkpoint_names_the_fix(server, checkpoints, case, expected):
    shown = configure(server, modelPath=str(checkpoints["root"] / case))
    message = next_error(server, shown)
    assert expected in message and "diffgem.modelPath" in message, message
    assert server.status().get("state") == "error"
    assert not checkpoints["marker"].exists()  # the checkpoint's own code never ran


def test_cuda_without_cuda_names_the_device_setting(server):
    shown = configure(server, modelPath="", device="cuda")
    message = next_error(server, shown)
    assert "CUDA" in message and "diffgem.device" in message, message


def test_crash_loop_stop_mentions_the_restart_command(server):
    configure(server, modelPath=str(Path("/nonexistent/again")), device="cpu")
    # This setting's own "not found", not an earlier one still on its way (the module's first test
    # waits for the fixture's; run alone, this test would take that one as its own).
    assert server.wait(lambda: any("again" in m for m in errors(server)), 180), errors(server)
    shown = len(errors(server))
    # Kill every worker as soon as it is up, until the server stops restarting. Until a deadline, not
    # a count of rounds: on a loaded machine a round whose status found no worker up kills nothing.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        pid = server.status().get("pid")
        if server.status().get("state") == "error" and len(errors(server)) > shown:
            break
        if pid:
            os.kill(pid, signal.SIGKILL)
        time.sleep(1.0)
    message = next_error(server, shown, timeout=120)
    assert "Restart Model Worker" in message and "diffgem.restartWorker" in message, message
