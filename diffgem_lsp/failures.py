"""What the user is told when the model cannot run: each distinct failure once, with what fixes it.

Pure text (no LSP types, no I/O): the session shows `with_fix(message)` in one `window/showMessage` per
distinct backend error.
"""

from __future__ import annotations

RESTART = 'run "Restart Model Worker" (command diffgem.restartWorker)'
MODEL_PATH = (
    "set diffgem.modelPath to a checkpoint directory (config.json, tokenizer, *.safetensors), "
    "or leave it empty for the embedded model"
)

# (words in the backend's message, what to tell the user to do), first match wins.
FIXES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("not restarting",), f"fix the cause above, then {RESTART}"),
    (("not responding",), "it is being restarted; if this repeats, lower diffgem.invokedSteps"),
    (
        ("custom code", "trust_remote_code"),
        "diffgem never runs a checkpoint's own code; " + MODEL_PATH,
    ),
    (("nan or inf",), "the checkpoint's weights are broken; " + MODEL_PATH),
    (("cuda", "nvidia"), "set diffgem.device to auto or cpu (this machine has no usable CUDA)"),
    (("checkpoint", "config.json", "safetensors", "tokenizer"), MODEL_PATH),
    (
        ("no module named", "importerror", "import failed", "cannot import"),
        "the worker's Python environment is broken: reinstall diffgem-lsp, then " + RESTART,
    ),
)


def with_fix(message: str) -> str:
    """The backend's message followed by the setting or command that fixes it."""
    lowered = message.lower()
    for words, fix in FIXES:
        if any(word in lowered for word in words):
            return f"diffgem: {message}. To fix: {fix}."
    return f"diffgem: {message}. {RESTART} to try again."
