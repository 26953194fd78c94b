"""A real `emacs --batch` (Emacs 28, Debian elpa-eglot) connects eglot to diffgem-lsp through editors/emacs.

The session loads editors/emacs/diffgem.el, lets eglot find the server through `eglot-server-programs`,
completes at a hole with `completion-at-point` (eglot's capf applies the item's textEdit) and runs
"Rewrite selection" on a region with `diffgem-rewrite-region`. eglot 1.9 has no codeAction/resolve, so
the server hands it a command and applies the edit with workspace/applyEdit.
"""

from __future__ import annotations

import json
import shutil
import subprocess
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

DRIVER = Path(__file__).with_name("emacs_driver.el")
HOLE_SOURCE = (
    'def greet(name):\n    message = "Hello, "\n    return message\n\n\nprint(greet("world"))\n'
)
HOLE = (1, len('    message = "Hello, '))


def emacs_with_eglot() -> str:
    emacs = shutil.which("emacs")
    if emacs is None:
        subprocess.run(["bash", str(REPO / "scripts" / "install-editor-deps.sh")], timeout=900)
        emacs = shutil.which("emacs")
    if emacs is None:
        pytest.skip("Emacs not installed and apt-get unavailable (scripts/install-editor-deps.sh)")
    probe = subprocess.run(
        [emacs, "--batch", "--eval", "(progn (require 'eglot) (princ (featurep 'eglot)))"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if probe.returncode != 0:
        pytest.skip(
            f"eglot not available in Emacs (apt-get install elpa-eglot): {probe.stderr[-300:]}"
        )
    return emacs


def run_emacs(
    tmp_path: Path,
    case: str,
    server: str,
    hole: FilledHole | None = None,
    timeout: float = 180,
    driver: Path = DRIVER,
    quick: bool = False,
    snippet: str = "",
    extra_files: tuple[str, ...] = (),
    rewrites: tuple[Rewrite, ...] = (),
) -> dict:
    work = tmp_path / "project"
    work.mkdir(exist_ok=True)
    (work / ".git").mkdir(exist_ok=True)  # a project root for lsp-mode
    target = work / "sample.py"
    target.write_text(hole.text if hole else HOLE_SOURCE)
    out = tmp_path / f"{case}.json"
    env = clean_env(tmp_path)
    env.update(
        DIFFGEM_LSP=server,
        DIFFGEM_SETTINGS=json.dumps(TEST_SETTINGS),
        DIFFGEM_EMACS_OUT=str(out),
        DIFFGEM_EMACS_CASE=case,
        DIFFGEM_HOLE=f"{hole.line},{hole.character}" if hole else f"{HOLE[0]},{HOLE[1]}",
        DIFFGEM_REWRITES=json.dumps([r.for_driver() for r in rewrites]),
        DIFFGEM_SNIPPET=snippet,
    )
    files = [str(target)]
    for index, text in enumerate(extra_files):
        (work / f"other{index}.py").write_text(text)
        files.append(str(work / f"other{index}.py"))
    # -Q: no site-lisp and no package activation, as in the issue; the snippet must cope with that.
    load = [] if quick else ["-L", str(EDITORS / "emacs")]
    proc = subprocess.run(
        [
            emacs_with_eglot(),
            *(["-Q"] if quick else []),
            "--batch",
            *load,
            "-l",
            str(driver),
            *files,
        ],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,  # a prompt (lsp-mode's "Import project root") fails instead of waiting
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert out.exists(), (
        f"emacs wrote no result (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr[-3000:]}"
    )
    result = json.loads(out.read_text())
    result["stderr"] = proc.stderr
    return result


def test_emacs_eglot_completion_and_rewrite(
    tmp_path: Path, filled_hole: FilledHole, rewrites: tuple[Rewrite, Rewrite]
):
    hole = filled_hole
    result = run_emacs(tmp_path, "session", str(server_path()), hole, rewrites=rewrites)
    assert not result.get("error"), result["error"] + "\n" + result["stderr"][-3000:]
    assert result["major_mode"] == "python-mode"
    assert result["server_command"][0].endswith("diffgem-lsp")
    assert result["language_id"] == "python"
    assert result["capabilities"] == {"completion": True, "code_action": True}
    assert result["status"] == "ready"  # diffgem/status reached diffgem.el's handler

    # completion-at-point inserted the server's fill at the hole; the rest of the file is intact.
    [candidate] = result["capf_candidates"]
    assert candidate.strip()
    before, after = result["before_completion"], result["after_completion"]
    assert before == hole.text and after != before
    assert_filled_at_hole(after, hole)

    # "Rewrite selection" twice: a selection the model changes, then one it keeps. The action is
    # listed with a command (eglot 1.9 has no resolve); running it applies the server's edit
    # (workspace/applyEdit) or shows the server's reason.
    for rewrite in result["rewrites"]:
        [action] = rewrite["code_actions"]
        assert action == {
            "title": "Rewrite selection",
            "kind": "refactor.rewrite",
            "has_command": True,
        }
    assert_both_rewrite_paths(result["rewrites"], rewrites)


def test_emacs_wrong_server_path_gives_one_clear_error(tmp_path: Path):
    missing = tmp_path / "no" / "diffgem-lsp"
    result = run_emacs(tmp_path, "startup", str(missing), timeout=60)
    assert "not found or not executable" in result["connect_error"]
    assert str(missing) in result["connect_error"]


def assert_filled_at_hole(after: str, hole: FilledHole) -> None:
    """Text went in at the hole: same lines above, the hole line grew after its prefix, same tail."""
    before_lines, after_lines = hole.text.split("\n"), after.split("\n")
    assert after_lines[: hole.line] == before_lines[: hole.line]
    line = after_lines[hole.line]
    assert line.startswith(hole.line_prefix) and len(after) > len(hole.text)
    assert after.endswith(hole.text.split("\n", hole.line + 1)[-1])


def test_emacs_lsp_mode_registration_completes(tmp_path: Path, filled_hole: FilledHole):
    """lsp-mode (Debian elpa-lsp-mode 8.0): diffgem.el's client starts, reports status, completes."""
    emacs = emacs_with_eglot()
    probe = subprocess.run(
        [emacs, "--batch", "--eval", "(require 'lsp-mode)"], capture_output=True, timeout=60
    )
    if probe.returncode != 0:
        pytest.skip("lsp-mode not installed (apt-get install elpa-lsp-mode)")
    result = run_emacs(
        tmp_path,
        "lspmode",
        str(server_path()),
        filled_hole,
        driver=DRIVER.with_name("emacs_lspmode_driver.el"),
    )
    assert not result.get("error"), result["error"] + "\n" + result["stderr"][-3000:]
    assert result["servers"] == ["diffgem"] and result["status"] == "ready"
    after = result["after_completion"]
    assert result["before_completion"] == filled_hole.text
    assert_filled_at_hole(after, filled_hole)


def assert_both_rewrite_paths(results: list[dict], rewrites: tuple[Rewrite, Rewrite]) -> None:
    """The changed selection: the buffer is exactly the oracle's rewrite, with no outcome message.
    The kept one: the buffer is untouched and the one outcome message is the server's reason."""
    changed, kept = rewrites
    applied, explained = results
    assert [applied["before"], explained["before"]] == [changed.text, kept.text]
    assert applied["after"] == changed.after != changed.text  # the edit, applied exactly
    assert not [m for m in applied["messages"] if m.startswith(OUTCOME_PREFIX)], applied
    assert explained["after"] == kept.text
    outcomes = [m for m in explained["messages"] if m.startswith(OUTCOME_PREFIX)]
    assert outcomes == [f"diffgem: {kept.reason}"], explained["messages"]


def readme_snippet(marker: str) -> str:
    """The ```elisp block of editors/README.md that contains `marker`, pointed at this repository."""
    readme = (EDITORS / "README.md").read_text()
    blocks = [b.split("```", 1)[0] for b in readme.split("```elisp\n")[1:]]
    [block] = [b for b in blocks if marker in b]
    return block.replace("/path/to/diffgem-lsp", str(REPO))


def test_emacs_q_readme_snippet_with_a_missing_server_says_so_once(tmp_path: Path):
    """`emacs -Q` + the README's eglot snippet + a wrong server path: one plain message, no error.

    Before: `eglot-ensure` was void under -Q (packages not activated), and with it the missing server
    surfaced as an error inside post-command-hook, printed with the hook's byte-code around it.
    """
    missing = tmp_path / "no" / "diffgem-lsp"
    result = run_emacs(
        tmp_path,
        "missing",
        str(missing),
        driver=DRIVER.with_name("emacs_snippet_driver.el"),
        quick=True,
        snippet=readme_snippet("diffgem-eglot-ensure"),
        extra_files=(HOLE_SOURCE,),
        timeout=60,
    )
    assert result["errors"] == [], result
    problems = [m for m in result["messages"] if "not found or not executable" in m]
    assert len(problems) == 1, result["messages"]  # two files, four commands: said once
    assert str(missing) in problems[0] and "#[" not in problems[0]
    assert "diffgem-server-path" in problems[0]


def test_emacs_lsp_mode_readme_snippet_no_prompt_no_warnings_and_rewrite_outcome(
    tmp_path: Path, filled_hole: FilledHole, rewrites: tuple[Rewrite, Rewrite]
):
    """lsp-mode 8.0 from the README snippet: starts without the "Import project root" prompt (stdin is
    closed, so a prompt would fail) and without a *Warnings* buffer; completes at the hole; "Rewrite
    selection" applies the model's edit on a selection it changes and says the server's reason on one
    it keeps, as the other editors do."""
    emacs = emacs_with_eglot()
    probe = subprocess.run(
        [emacs, "--batch", "--eval", "(require 'lsp-mode)"], capture_output=True, timeout=60
    )
    if probe.returncode != 0:
        pytest.skip("lsp-mode not installed (apt-get install elpa-lsp-mode)")
    result = run_emacs(
        tmp_path,
        "lspmode",
        str(server_path()),
        filled_hole,
        driver=DRIVER.with_name("emacs_snippet_driver.el"),
        quick=True,
        snippet=readme_snippet("diffgem-lsp-deferred"),
        rewrites=rewrites,
    )
    assert result["errors"] == [], result["errors"]
    assert result["warnings"] == "", result["warnings"]
    assert result["servers"] == ["diffgem"] and result["status"] == "ready"
    assert_filled_at_hole(result["after_completion"], filled_hole)
    assert_both_rewrite_paths(result["rewrites"], rewrites)


def test_emacs_eglot_rewrite_with_an_instruction_read_in_the_minibuffer(tmp_path: Path, instructed):
    """A chat model (the vLLM stand-in, tests/editors/instructed.py): `diffgem-rewrite-with-instruction`
    on the selected region reads the instruction in the minibuffer (batch Emacs reads it from standard
    input), the words reach the model's prompt, and the buffer becomes exactly the server's edit."""
    fixture, standin = instructed
    assert fixture.after != fixture.text  # the fixture is the applied path
    work = tmp_path / "project"
    work.mkdir()
    target = work / "instructed.py"
    target.write_text(fixture.text)
    out = tmp_path / "instruct.json"
    env = clean_env(tmp_path)
    env.update(
        DIFFGEM_LSP=str(server_path()),
        DIFFGEM_SETTINGS=json.dumps(fixture.settings),
        DIFFGEM_EMACS_OUT=str(out),
        DIFFGEM_INSTRUCT=json.dumps({"start": fixture.start, "end": fixture.end}),
    )
    asked = len(standin.record.bodies)
    proc = subprocess.run(
        [emacs_with_eglot(), "--batch", "-L", str(EDITORS / "emacs"), "-l",
         str(Path(__file__).with_name("emacs_instruct_driver.el")), str(target)],
        cwd=work, env=env, input=fixture.instruction + "\n", capture_output=True, text=True,
        timeout=180,
    )  # fmt: skip
    assert out.exists(), f"emacs wrote no result (rc={proc.returncode}):\n{proc.stderr[-3000:]}"
    result = json.loads(out.read_text())
    assert not result.get("error"), result["error"] + "\n" + proc.stderr[-3000:]
    assert result["instructions"] is True  # diffgem/status said the model takes instructions
    assert result["before"] == fixture.text and result["after"] == fixture.after, result
    assert instructed_turns(standin, fixture.instruction, asked) == 1
