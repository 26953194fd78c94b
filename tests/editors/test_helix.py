"""editors/helix/languages.toml: valid TOML, languages the server supports, a command that runs.

Helix itself is not packaged for Debian 12 and cannot be installed offline here, so this checks the
configuration against the server rather than driving a real Helix.
"""

from __future__ import annotations

import subprocess
import tomllib

import pytest

from .conftest import EDITORS, REPO, server_path

pytestmark = pytest.mark.editor

CONFIG = EDITORS / "helix" / "languages.toml"
# Helix language name -> the LSP languageId Helix sends (its default languages.toml sets `language-id`
# for tsx and jsx; the others send their name).
HELIX_TO_LSP = {
    "python": "python",
    "javascript": "javascript",
    "jsx": "javascriptreact",
    "typescript": "typescript",
    "tsx": "typescriptreact",
    "go": "go",
    "rust": "rust",
}
# Helix's own default servers for each language, which must stay ahead of diffgem.
USUAL_SERVERS = {
    "python": {"pylsp", "ruff", "jedi", "pyright", "basedpyright", "ty"},
    "javascript": {"typescript-language-server"},
    "jsx": {"typescript-language-server"},
    "typescript": {"typescript-language-server"},
    "tsx": {"typescript-language-server"},
    "go": {"gopls", "golangci-lint-lsp"},
    "rust": {"rust-analyzer"},
}


@pytest.fixture(scope="module")
def config() -> dict:
    return tomllib.loads(CONFIG.read_text())


def supported_languages() -> frozenset[str]:
    try:
        from diffgem_lsp.canvas.languages import SUPPORTED_LANGUAGES
    except ImportError:
        return frozenset(HELIX_TO_LSP.values())
    return SUPPORTED_LANGUAGES


def test_every_language_is_supported_and_keeps_its_usual_server(config: dict):
    languages = {entry["name"]: entry for entry in config["language"]}
    assert set(languages) == set(HELIX_TO_LSP), "python, js/jsx, ts/tsx, go and rust, once each"
    supported = supported_languages()
    for name, entry in languages.items():
        assert HELIX_TO_LSP[name] in supported, f"{name} -> {HELIX_TO_LSP[name]} not supported"
        servers = entry["language-servers"]
        assert servers[-1] == "diffgem", f"{name}: diffgem should come last"
        assert servers[0] in USUAL_SERVERS[name], (
            f"{name}: first server {servers[0]} is not Helix's usual one"
        )
        assert len(servers) == len(set(servers))


def test_server_command_resolves_and_runs(config: dict):
    server = config["language-server"]["diffgem"]
    assert server["command"] == "diffgem-lsp"
    path = server_path()  # .venv/bin/diffgem-lsp or PATH, as a user's Helix would find it
    proc = subprocess.run(
        [str(path), "--version", *server.get("args", [])],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("diffgem-lsp ")


def test_config_keys_are_server_settings(config: dict):
    from diffgem_lsp.settings import resolve_settings

    options = config["language-server"]["diffgem"]["config"]
    _, problems = resolve_settings(options)
    assert problems == []
    _, typo = resolve_settings({**options, "invokedStep": 3})  # the check is not vacuous
    assert typo and "invokedStep" in typo[0]


def test_readme_snippet_is_the_file():
    readme = (EDITORS / "README.md").read_text()
    assert "[language-server.diffgem]" in readme
    assert str(CONFIG.relative_to(REPO)) in readme or "editors/helix/languages.toml" in readme
