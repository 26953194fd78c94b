"""Context beyond the file for an infill prompt: snippets of other open documents and of imported files.

Reads the session's open documents and, for imports, files under the workspace root (read as text,
never imported or executed); the choice itself is the pure canvas/context.py. No LSP types built here.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from urllib.parse import unquote, urlparse

from . import canvas as C
from .canvas.context import SourceText, format_context, imported_paths, select_snippets
from .session import Session

log = logging.getLogger("diffgem.cross_file")

# The embedded checkpoint reads the last 320 prefix tokens (model/layouts.py): context beyond ~1.2k
# characters would only push the code around the cursor out of the window.
BUDGET_CHARS = 1200
MAX_FILE_BYTES = 256 * 1024
MAX_CANDIDATE_FILES = 2000


def _path_of(uri: str) -> Path | None:
    parsed = urlparse(uri)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


@functools.lru_cache(maxsize=8)
def _workspace_files(root: Path, suffix: str) -> tuple[str, ...]:
    """Workspace-relative paths of files with the document's suffix (a bounded walk, once per root
    and suffix: a file created later is seen after a server restart)."""
    found: list[str] = []
    for path in root.rglob(f"*{suffix}"):
        if any(part.startswith(".") or part == "node_modules" for part in path.parts):
            continue
        found.append(path.relative_to(root).as_posix())
        if len(found) >= MAX_CANDIDATE_FILES:
            break
    return tuple(found)


def _imported_sources(session: Session, uri: str, text: str, language: str) -> list[SourceText]:
    path = _path_of(uri)
    root_uri = session.client.workspace.root_uri
    root = _path_of(root_uri) if root_uri else None
    if path is None or root is None or not path.is_relative_to(root):
        return []
    relative = path.relative_to(root).as_posix()
    pool = _workspace_files(root, path.suffix)
    sources = []
    for name in imported_paths(text, language, relative, pool)[:8]:
        file = root / name
        try:
            if file.stat().st_size <= MAX_FILE_BYTES:
                sources.append(SourceText(name, file.read_text(encoding="utf-8", errors="replace")))
        except OSError:
            log.debug("cannot read %s", file, exc_info=True)
    return sources


def context_header(session: Session, uri: str, text: str, offset: int, language: str) -> str:
    """Comment-headed snippets most similar to the code before the cursor's line, or "".

    The query stops at the start of the cursor's line, so typing on a line keeps the header (and the
    worker's prompt cache, which sees the prefix after the suffix) unchanged.
    """
    if C.grammar_of(language) is None:
        return ""
    line_start = text.rfind("\n", 0, offset) + 1
    sources = [
        SourceText(other_uri.rsplit("/", 1)[-1], doc.source)
        for other_uri, doc in session.client.workspace.text_documents.items()
        if other_uri != uri
        and C.grammar_of(doc.language_id) == C.grammar_of(language)
        and session.too_big_or_binary(doc) is None
    ]
    open_names = {s.path for s in sources}
    sources += [
        s
        for s in _imported_sources(session, uri, text, language)
        if s.path.rsplit("/", 1)[-1] not in open_names
    ]
    if not sources:
        return ""
    return _header(text[:line_start], tuple(sources), language)


@functools.lru_cache(maxsize=8)
def _header(before_line: str, sources: tuple[SourceText, ...], language: str) -> str:
    """select_snippets + format_context, memoised: while the user types on one line neither the query
    (the text before that line) nor the other documents change, and scoring every window of every
    open document was ~2 ms of each request (bench/backends.py). Keys hash the texts once per string
    object (CPython caches str hashes); a hit compares them with memcmp."""
    return format_context(select_snippets(before_line, sources, BUDGET_CHARS), language)
