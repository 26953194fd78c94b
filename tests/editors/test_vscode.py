"""The VS Code extension: its own checks (eslint + tsc, unit tests, offline .vsix) and a real VS Code.

The end-to-end case installs the .vsix into code-server 4.99.4 (VS Code 1.99.3, installed from npm by
scripts/install-code-server.sh and cached), opens the workspace in Debian's Chromium through
playwright-core, types at a hole until ghost text appears, accepts it with Tab and checks the line;
then runs "Rewrite selection" from VS Code's refactor menu and the palette on a selection the shipped
model changes (exactly the edit tests/lsp/oracle.py computes, applied) and on one it keeps (the server's
reason shown).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import (
    EDITORS,
    OUTCOME_PREFIX,
    REPO,
    TEST_SETTINGS,
    FilledHole,
    Rewrite,
    clean_env,
    server_path,
)
from .instructed import instructed_fixture, instructed_turns  # noqa: F401 (the `instructed` fixture)

pytestmark = pytest.mark.editor

EXTENSION = EDITORS / "vscode"
DRIVER = Path(__file__).with_name("vscode_e2e.mjs")
ACTIONS_DRIVER = Path(__file__).with_name("vscode_actions.mjs")
INSTRUCT_DRIVER = Path(__file__).with_name("vscode_instruct.mjs")
SCREENSHOT = EXTENSION / "media" / "ghost-text.png"


def npm(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    if shutil.which("npm") is None:
        pytest.skip("npm not installed (Node 20 is needed for the VS Code extension)")
    return subprocess.run(
        ["npm", *args], cwd=EXTENSION, capture_output=True, text=True, timeout=timeout
    )


def run_driver(
    driver: Path,
    code_server: Path,
    port: int,
    workspace: Path,
    env: dict,
    timeout: float,
    *extra: str,
) -> dict:
    """Run a playwright driver against the workbench at `port`; its one JSON line, checked error-free."""
    proc = subprocess.run(
        ["node", str(driver), str(code_server / "node_modules" / "playwright-core"),
         f"http://127.0.0.1:{port}/?folder={workspace}", *extra],
        env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert proc.stdout.strip(), proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not result.get("error"), result["error"] + "\n" + json.dumps(result)[:3000]
    return result


@pytest.fixture(scope="module")
def node_modules() -> Path:
    lock_stamp = EXTENSION / "node_modules" / ".package-lock.json"
    if (
        not lock_stamp.exists()
        or lock_stamp.stat().st_mtime < (EXTENSION / "package-lock.json").stat().st_mtime
    ):
        proc = npm("ci", "--no-audit", "--no-fund")
        assert proc.returncode == 0, proc.stderr[-3000:]
    return EXTENSION / "node_modules"


VSCE_OUTPUT: dict[str, str] = {}


@pytest.fixture(scope="module")
def vsix(node_modules: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("vsix") / "diffgem.vsix"
    proc = npm("exec", "--offline", "--", "vsce", "package", "-o", str(out))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    VSCE_OUTPUT["log"] = proc.stdout + proc.stderr
    return out


def test_extension_lint_and_types(node_modules: Path):
    proc = npm("run", "check")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_extension_unit_tests(node_modules: Path):
    proc = npm("test")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "# fail 0" in proc.stdout


def test_vsix_is_one_bundle_with_the_client_inside(vsix: Path):
    """esbuild bundles the extension and vscode-languageclient into dist/extension.js: vsce packages a
    handful of files and no longer warns that the extension is not bundled."""
    import zipfile

    names = set(zipfile.ZipFile(vsix).namelist())
    assert "extension/dist/extension.js" in names
    assert not [n for n in names if "/node_modules/" in n or n.startswith("extension/out/")], names
    bundle = zipfile.ZipFile(vsix).read("extension/dist/extension.js").decode()
    assert "textDocument/inlineCompletion" in bundle  # the language client is inside the bundle
    manifest = json.loads(zipfile.ZipFile(vsix).read("extension/package.json"))
    assert manifest["main"] == "./dist/extension.js"
    assert manifest["dependencies"]["vscode-languageclient"].startswith("^10.")
    log = VSCE_OUTPUT["log"]
    assert "bundle your extension" not in log and "WARNING" not in log, log[-2000:]


def test_package_json_contributes_every_server_setting():
    from dataclasses import fields

    from diffgem_lsp.settings import CHOICES, DESCRIPTIONS, Settings, camel

    properties = json.loads((EXTENSION / "package.json").read_text())["contributes"][
        "configuration"
    ]["properties"]
    for field in fields(Settings):
        prop = properties[f"diffgem.{camel(field.name)}"]
        assert prop["default"] == field.default, field.name
        assert prop["description"] == DESCRIPTIONS[field.name], field.name
        if field.name in CHOICES:
            assert prop["enum"] == list(CHOICES[field.name])
    assert set(properties) == {"diffgem.serverPath"} | {
        f"diffgem.{camel(f.name)}" for f in fields(Settings)
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def code_server() -> Path:
    if shutil.which("chromium") is None or shutil.which("rg") is None:
        subprocess.run(["bash", str(REPO / "scripts" / "install-editor-deps.sh")], timeout=1200)
    if shutil.which("chromium") is None:
        pytest.skip(
            "Chromium not installed and apt-get unavailable (scripts/install-editor-deps.sh)"
        )
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "install-code-server.sh")],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    if proc.returncode != 0:
        pytest.skip(f"code-server could not be installed: {proc.stderr[-1500:]}")
    return Path(proc.stdout.strip().splitlines()[-1])


def whole_lines(rewrite: Rewrite) -> tuple[int, int]:
    """The 1-based lines VS Code selects for `rewrite` (from the first line's start to the last line's
    end), after checking the server builds the same canvas from them as from the exact selection."""
    from diffgem_lsp import canvas as C

    last = rewrite.text.split("\n")[rewrite.end[0]]
    exact = C.build_edit_canvas(
        rewrite.text, "python", C.Position(*rewrite.start), C.Position(*rewrite.end)
    )
    lines = C.build_edit_canvas(
        rewrite.text,
        "python",
        C.Position(rewrite.start[0], 0),
        C.Position(rewrite.end[0], len(last)),
    )
    assert lines == exact, (rewrite, lines, exact)
    return rewrite.start[0] + 1, rewrite.end[0] + 1


@contextlib.contextmanager
def running_vscode(
    code_server: Path, vsix: Path, tmp_path: Path, env: dict[str, str], diffgem: dict
) -> Iterator[tuple[int, Path]]:
    """code-server serving tmp_path/workspace (filled by the caller) with the .vsix installed and
    diffgem's settings `diffgem` (camelCase keys); yields (its port, the user-data dir). One per test:
    each page load starts its own extension host and server, and this kills its process group."""
    binary = code_server / "node_modules" / ".bin" / "code-server"
    user, extensions, workspace = tmp_path / "user", tmp_path / "extensions", tmp_path / "workspace"
    for folder in (user / "User", extensions):
        folder.mkdir(parents=True)
    (workspace / ".vscode").mkdir()
    (workspace / ".vscode" / "settings.json").write_text("{}")
    settings = {
        "telemetry.telemetryLevel": "off",
        "workbench.startupEditor": "none",
        "workbench.tips.enabled": False,
        "security.workspace.trust.enabled": False,
        "extensions.autoUpdate": False,
        "extensions.ignoreRecommendations": True,
        # Another provider's suggest widget hides ghost text: keep the word-based popup out of the way
        # (diffgem's own trigger characters stay on: its popup must not come up beside the ghost text).
        "editor.quickSuggestions": {"other": "off", "comments": "off", "strings": "off"},
        "editor.wordBasedSuggestions": "off",
        "editor.autoClosingBrackets": "never",  # the typed character must arrive alone
        "editor.autoClosingQuotes": "never",
        "diffgem.serverPath": str(server_path()),
        **{f"diffgem.{key}": value for key, value in diffgem.items()},
    }
    (user / "User" / "settings.json").write_text(json.dumps(settings, indent=2))
    dirs = ["--user-data-dir", str(user), "--extensions-dir", str(extensions)]
    install = subprocess.run(
        [str(binary), "--install-extension", str(vsix), *dirs],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert install.returncode == 0, install.stderr[-2000:]

    port = free_port()
    # To a file: a pipe nobody reads would block code-server once full.
    log = (tmp_path / "code-server.log").open("wb")
    server = subprocess.Popen(
        [str(binary), "--bind-addr", f"127.0.0.1:{port}", "--auth", "none", *dirs, "--disable-telemetry",
         "--disable-update-check", "--disable-workspace-trust", "--disable-getting-started-override",
         "--disable-proxy", str(workspace)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
                break
            except OSError:
                assert time.monotonic() < deadline, "code-server did not answer /healthz"
                time.sleep(0.3)
        yield port, user
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()


def test_vscode_ghost_text_and_rewrite_selection(
    code_server: Path,
    vsix: Path,
    tmp_path: Path,
    filled_hole: FilledHole,
    rewrites: tuple[Rewrite, Rewrite],
):
    hole = filled_hole
    env = clean_env(tmp_path)
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    # The file lacks the character before the hole; the test types it (see vscode_e2e.mjs).
    lines = hole.text.split("\n")
    typed_char = lines[hole.line][hole.character - 1]
    lines[hole.line] = lines[hole.line][: hole.character - 1] + lines[hole.line][hole.character :]
    (workspace / "hole.py").write_text("\n".join(lines))
    env.update(
        DIFFGEM_GOTO=f"{hole.line + 1}:{hole.character}",
        DIFFGEM_TYPE=typed_char,
        DIFFGEM_LINE=str(hole.line),
    )
    changed, kept = rewrites
    (workspace / "changed.py").write_text(changed.text)
    (workspace / "kept.py").write_text(kept.text)
    env["DIFFGEM_REWRITES"] = json.dumps(
        {"changed": ["changed.py", *whole_lines(changed)], "kept": ["kept.py", *whole_lines(kept)]}
    )
    with running_vscode(code_server, vsix, tmp_path, env, TEST_SETTINGS) as (port, user):
        shot = tmp_path / "ghost-text.png"
        broken = tmp_path / "broken-diffgem-lsp"
        broken.write_text("#!/bin/sh\necho 'diffgem-lsp: cannot load model' >&2\nexit 3\n")
        broken.chmod(0o755)
        result = run_driver(
            DRIVER, code_server, port, workspace, env, 360,
            str(shot), str(workspace / ".vscode" / "settings.json"), str(broken),
        )  # fmt: skip

    # For the record (pytest -s): how long each "Rewrite selection" path took to apply or explain.
    print("vscode e2e:", json.dumps({k: result.get(k) for k in ("steps", "status_texts")}))
    for path in ("menu_rewrite", "palette_rewrite"):
        print(f"vscode e2e: {path} answered in {result.get(path, {}).get('ms')} ms")
    # Ghost text appeared after typing at the hole; Tab accepted it into the line.
    assert result["ghost"] and result["ghost"].strip(), result
    assert result["before"] == lines[hole.line]
    assert result["after"].startswith(hole.line_prefix), result
    assert len(result["after"]) > len(hole.line_text), result
    if shot.exists() and os.environ.get("DIFFGEM_UPDATE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)

    # Palette commands: the worker restarted (status bar left "ready" and came back), toggle confirmed.
    states = result["restart_states"]
    assert states[-1] == "diffgem ready" and any(s != "diffgem ready" for s in states), states
    assert "diffgem: automatic suggestions off." in result["toggle_toasts"], result["toggle_toasts"]

    # No second copy of the fill in the suggest widget: the typed character is one of the server's
    # trigger characters, so VS Code did ask for completions.
    assert typed_char in ". ( ", typed_char
    assert result["suggest_rows"] == 0, result
    # The status item says in words that a suggestion is on its way (or the model is loading).
    assert any(
        "diffgem: generating…" in t or "diffgem: loading model…" in t
        for t in result["status_texts"]
    ), result["status_texts"]
    # Server log lines keep their level in the output channel (they were all `[error]`).
    logs = [p for p in user.rglob("*.log") if "diffgem" in p.name]
    assert logs, sorted(str(p) for p in user.rglob("*.log"))
    log = "\n".join(p.read_text(errors="replace") for p in logs)
    assert re.search(r"\[info\] \[diffgem\.\S+\] worker started", log), log[-3000:]
    assert not re.search(r"\[error\].* INFO ", log), log[-3000:]

    # "Rewrite selection" from VS Code's refactor menu and from the palette on the selection the model
    # changes: exactly the oracle's rewrite applied, after a "rewriting…" progress, with no outcome toast.
    assert result["refactor_menu"] is True, result.get("menu_error")
    for path in ("menu_rewrite", "palette_rewrite"):
        outcome = result[path]
        assert outcome["rewriting"], outcome
        assert "\n".join(outcome["before"]) == changed.text, outcome
        assert "\n".join(outcome["after"]) == changed.after != changed.text, outcome
        assert not [t for t in outcome["toasts"] if t.startswith(OUTCOME_PREFIX)], outcome
    # From the palette on the selection the model keeps: the text stays, the server's reason is shown.
    outcome = result["palette_kept"]
    assert outcome["rewriting"], outcome
    assert "\n".join(outcome["before"]) == "\n".join(outcome["after"]) == kept.text, outcome
    shown = [t for t in outcome["toasts"] if t.startswith(OUTCOME_PREFIX)]
    assert shown == [f"diffgem: {kept.reason}"], outcome

    # A server that exits at start and a wrong path: one clear message each, status bar shows the error.
    for case in ("exits_at_start", "missing"):
        assert result[case]["matching"] == 1 and len(result[case]["toasts"]) == 1, result[case]
        assert result[case]["status_error"] is True, result[case]


def test_vscode_live_drafts_fill_holes_repair_syntax_and_candidates(
    code_server: Path, vsix: Path, tmp_path: Path, diffusion_actions
):
    """The diffusion-native features as a VS Code user meets them. With streamDrafts on, typing at a hole
    draws the denoising canvases dimmed at the cursor until VS Code's ghost text replaces them. "Fill the
    holes" from the refactor menu and the "Repair syntax" quick fix (after its squiggle) leave exactly the
    server's answer in the editor; "Trigger Inline Suggestion" then Alt+] show each candidate of an
    invoked request in the server's order, and Tab accepts the second (tests/editors/actions.py found each fixture)."""
    from .actions import ACTION_SETTINGS

    holes, repair, candidates = (
        diffusion_actions.holes,
        diffusion_actions.repair,
        diffusion_actions.candidates,
    )
    # The fixtures exercise their paths: a fill and a repair that change the text, several candidates,
    # an automatic request that streams drafts before a non-empty answer.
    assert holes.after != holes.text and repair.after != repair.text
    assert len(candidates.items) >= 2 and len(set(candidates.afters)) == len(candidates.afters)
    hole = diffusion_actions.drafts
    assert hole.drafts >= 2 and hole.fill.strip(), hole
    env = clean_env(tmp_path)
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    lines = hole.text.split("\n")  # without the character before the hole: the test types it
    typed_char = lines[hole.line][hole.character - 1]
    lines[hole.line] = lines[hole.line][: hole.character - 1] + lines[hole.line][hole.character :]
    (workspace / "drafts.py").write_text("\n".join(lines))
    (workspace / "holes.py").write_text(holes.text)
    (workspace / "broken.py").write_text(repair.text)
    (workspace / "candidates.py").write_text(candidates.text)
    env["DIFFGEM_ACTIONS"] = json.dumps(
        {
            "drafts": {
                "file": "drafts.py",
                "line": hole.line,
                "character": hole.character,
                "type": typed_char,
            },
            "holes": holes.for_driver("holes.py"),
            "repair": repair.for_driver("broken.py"),
            "candidates": candidates.for_driver("candidates.py"),
        }
    )
    shots = tmp_path / "shots"
    shots.mkdir()
    env["DIFFGEM_SHOTS"] = str(shots)
    with running_vscode(code_server, vsix, tmp_path, env, ACTION_SETTINGS) as (port, _user):
        result = run_driver(ACTIONS_DRIVER, code_server, port, workspace, env, 480)
    print("vscode actions:", json.dumps(result["steps"]))

    # Live refinement: drafts drawn while denoising (dimmed, italic), none left once the answer shows.
    drafts = result["drafts"]
    assert drafts["seen"], drafts
    assert all(float(d["opacity"]) < 1 and d["italic"] == "italic" for d in drafts["seen"]), drafts
    assert drafts["ghost"] and drafts["ghost"].strip(), drafts
    assert drafts["left"] == [], drafts

    # "Fill the holes" (refactor menu) and "Repair syntax" (quick fix): exactly the server's edit.
    for action, done in ((holes, result["holes"]), (repair, result["repair"])):
        assert done["listed"] is True, done
        assert "\n".join(done["before"]) == action.text, done
        assert "\n".join(done["after"]) == action.after, done
        assert not [t for t in done["toasts"] if t.startswith(OUTCOME_PREFIX)], done
    assert result["repair"]["squiggle"] is True, result["repair"]

    # K candidates: each one shown in turn (the server's order), the second accepted.
    cycled = result["candidates"]
    assert cycled["shown"] == list(candidates.items), cycled
    assert cycled["wrapped"] is True and cycled["accepting"] == candidates.items[1], cycled
    assert "\n".join(cycled["after"]) == candidates.afters[1] != candidates.text, cycled
    if os.environ.get("DIFFGEM_UPDATE_SCREENSHOT") == "1":
        for name in ("fill-the-holes-menu", "candidates"):
            shutil.copyfile(shots / f"{name}.png", SCREENSHOT.with_name(f"{name}.png"))


def test_vscode_rewrite_selection_with_an_instruction(
    code_server: Path, vsix: Path, tmp_path: Path, instructed
):
    """A chat model (the vLLM stand-in, tests/editors/instructed.py). The palette lists "diffgem: Rewrite
    Selection…" (the server said the model takes instructions); "Rewrite selection…" from the Refactor…
    menu opens VS Code's input box, the instruction typed there reaches the model's prompt, and the
    editor holds exactly the server's edit; after an undo, the palette command does the same."""
    fixture, standin = instructed
    assert fixture.after != fixture.text  # the fixture is the applied path
    env = clean_env(tmp_path)
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "instructed.py").write_text(fixture.text)
    env["DIFFGEM_INSTRUCT"] = json.dumps(fixture.for_driver("instructed.py"))
    asked = len(standin.record.bodies)
    with running_vscode(code_server, vsix, tmp_path, env, fixture.settings) as (port, _user):
        result = run_driver(INSTRUCT_DRIVER, code_server, port, workspace, env, 300)
    print("vscode instruct:", json.dumps(result["steps"]))

    assert "\n".join(result["before"]) == fixture.text, result
    assert any("diffgem: Rewrite Selection…" in row for row in result["palette"]), result["palette"]
    assert result["listed"] is True, result
    for run in (result["menu"], result["fromPalette"]):
        assert run["title"] == "diffgem: Rewrite selection…", run
        assert run["changed"] is True and "\n".join(run["after"]) == fixture.after, run
        # No message besides the progress (which may still be closing): the edit was applied.
        assert not [t for t in run["toasts"] if t.startswith("diffgem: ") and "rewriting" not in t]
    assert result["undone"] is True, result
    assert (
        instructed_turns(standin, fixture.instruction, asked) == 2
    )  # one per run, the words typed
