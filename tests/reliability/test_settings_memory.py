"""Settings that overflow, notifications that leaked memory, files readable by other users.

Findings 8 (1e400 settings) and 10 (notification futures kept for good, a 0644 log file) of issue 14;
the real server as a subprocess, no model loaded.
"""

from __future__ import annotations

import json
import stat

from diffgem_lsp.settings import Settings, resolve_settings

from .lsp_process import MISSING_MODEL, LspProcess, rss_kb


def test_overflowing_number_is_one_problem_and_other_keys_are_kept():
    raw = json.loads(
        '{"debounceMs": 1e400, "seed": 5, "automaticSteps": -1e400, "invokedSteps": 12}'
    )
    settings, problems = resolve_settings(raw)
    assert (settings.seed, settings.invoked_steps) == (5, 12)
    assert (settings.debounce_ms, settings.automatic_steps) == (
        Settings.debounce_ms,
        Settings.automatic_steps,
    )
    assert len(problems) == 2 and "debounceMs" in problems[0] and "automaticSteps" in problems[1]


def warnings(lsp: LspProcess) -> list[str]:
    return [
        m["params"]["message"]
        for m in lsp.messages("window/showMessage")
        if m["params"]["type"] == 2
    ]


def test_overflowing_settings_over_lsp_warn_once_and_keep_the_session():
    lsp = LspProcess()
    try:
        # json.dumps writes inf as Infinity (not JSON): send the JSON-legal 1e400 literally.
        options = json.dumps({**MISSING_MODEL, "debounceMs": 0}).replace(
            '"debounceMs": 0', '"debounceMs": 1e400'
        )
        params = '{"processId":null,"rootUri":null,"capabilities":{},"initializationOptions":'
        params += options + "}"
        body = b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":%s}' % params.encode()
        lsp.send_bytes(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        answer = lsp.response(1, timeout=120)  # includes the server's start
        assert answer is not None and "result" in answer, answer
        assert lsp.wait(lambda: len(warnings(lsp)) >= 1, timeout=10)
        body = (
            b'{"jsonrpc":"2.0","method":"workspace/didChangeConfiguration",'
            b'"params":{"settings":{"diffgem":{"seed":1e400,"automaticSuggestions":false}}}}'
        )
        lsp.send_bytes(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        assert lsp.wait(lambda: len(warnings(lsp)) >= 2, timeout=10), warnings(lsp)
        shown = warnings(lsp)
        assert len(shown) == 2 and "debounceMs" in shown[0] and "seed" in shown[1], shown
    finally:
        lsp.kill()


def test_notifications_do_not_grow_server_memory():
    """pygls kept every notification's future: ~2.8 KB per keystroke, for good.

    With the default settings, so the per-keystroke features are in it too: the prompt-cache warm-up
    once made a task per didChange, each holding that version of a growing document until the loop
    got round to its cancellation (~2 KB per keystroke here).
    """
    lsp = LspProcess()
    try:
        lsp.initialize(MISSING_MODEL, initialized=False)
        uri = "file:///soak/leak.py"
        lsp.open(uri, "x = 1\n")
        version = 1

        def type_chars(count: int) -> None:
            nonlocal version
            for _ in range(count):
                version += 1
                change = {
                    "range": {
                        "start": {"line": 0, "character": 5},
                        "end": {"line": 0, "character": 5},
                    },
                    "text": "1",
                }
                lsp.notify(
                    "textDocument/didChange",
                    {"textDocument": {"uri": uri, "version": version}, "contentChanges": [change]},
                )
            assert lsp.call("diffgem/probe", {}, timeout=60) is not None  # all processed

        type_chars(2000)  # warm up: allocator arenas, parser and diagnostics caches
        start = rss_kb(lsp.pid)
        type_chars(6000)  # one burst: the server must not buffer what it has not handled yet
        growth = rss_kb(lsp.pid) - start
        # 6000 leaked futures would be ~17 MB; measured flat (+0.1 MB over 10,000), allocator noise < 4 MB.
        assert growth < 4096, f"RSS grew {growth} KB over 6000 notifications"
    finally:
        lsp.kill()


def test_log_file_is_created_private(tmp_path):
    log = tmp_path / "server.log"
    lsp = LspProcess("--log-file", str(log))
    try:
        lsp.initialize(MISSING_MODEL, initialized=False)
        assert lsp.exit() == 0
    finally:
        lsp.kill()
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_nul_in_a_path_setting_is_one_problem_not_a_stuck_worker():
    """A NUL in modelPath could not become a process argument: the worker never started ("loading")."""
    settings, problems = resolve_settings({"modelPath": "/models/a\x00b", "seed": 3})
    assert settings.model_path == "" and settings.seed == 3
    assert len(problems) == 1 and "modelPath" in problems[0] and "NUL" in problems[0]
