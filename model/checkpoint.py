"""Load a DiffusionGemma checkpoint from disk; build the tokenizer and config of a new one.

Loading only ever reads local files (`local_files_only=True`): nothing is downloaded at run time.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from transformers import (
    AutoConfig,
    AutoTokenizer,
    DiffusionGemmaConfig,
    DiffusionGemmaForBlockDiffusion,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

from .memory import MemoryEstimate, estimate
from .precision import PrecisionError, QuantReport, load_kwargs, quant_report, resolve_precision
from .real_config import TINY_VISION_CONFIG

log = logging.getLogger("diffgem.checkpoint")

FIM_SPECIAL_TOKENS = ["<pad>", "<bos>", "<eos>", "<fim_prefix>", "<fim_suffix>", "<fim_middle>"]


class CheckpointError(RuntimeError):
    """A checkpoint directory is missing, incomplete or unreadable."""


@dataclass
class LoadedCheckpoint:
    model: DiffusionGemmaForBlockDiffusion
    tokenizer: PreTrainedTokenizerBase
    path: Path
    prompt_layout: str  # "fim" (embedded model) or "chat" (DiffusionGemma-it)
    precision: str = "fp32"  # resolved: never "auto"
    quant_report: QuantReport | None = None  # what was really quantised
    memory: MemoryEstimate | None = None  # need vs device, estimated before loading


def load_checkpoint(
    path: str | Path, device: str = "cpu", precision: str = "auto"
) -> LoadedCheckpoint:
    """Load model + tokenizer from a local directory, with one clear error for each way it can be broken.

    `precision` is one of precision.PRECISIONS. On CUDA the memory it needs is checked against what the
    device has free before any weight is read, so a model that cannot fit fails with the figures instead
    of an out-of-memory error halfway through loading.
    """
    path = Path(path).expanduser()
    if not path.is_dir():
        raise CheckpointError(f"checkpoint directory not found: {path}")
    for required in ("config.json",):
        if not (path / required).is_file():
            raise CheckpointError(f"checkpoint {path} has no {required}")
    if not any(path.glob("*.safetensors")) and not any(path.glob("*.bin")):
        raise CheckpointError(f"checkpoint {path} has no weights (*.safetensors)")
    try:
        json.loads((path / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path}: config.json is not valid JSON ({exc})") from exc
    try:
        kwargs = load_kwargs(precision, device)
    except PrecisionError as exc:
        raise CheckpointError(str(exc)) from exc
    resolved = resolve_precision(precision, device)
    memory = None
    try:
        # trust_remote_code=False: a config pointing at custom code must not prompt "[y/N]" on stdin.
        config = AutoConfig.from_pretrained(path, local_files_only=True, trust_remote_code=False)
        memory = estimate(config, resolved, device)
    except Exception as exc:  # an unusual config must not stop a load the estimate cannot describe
        log.warning("memory estimate unavailable for %s: %s", path, exc)
    if memory is not None and device.startswith("cuda") and not memory.fits:
        raise CheckpointError(memory.message())
    quantised = "quantization_config" in kwargs
    if quantised:
        kwargs["device_map"] = (
            device  # quantised weights are placed while loading, never moved after
        )
    try:
        # trust_remote_code=False: a checkpoint's own Python is never run, and transformers never asks
        # "[y/N]" on stdin (the worker's protocol pipe) when a config points at custom code.
        tokenizer = AutoTokenizer.from_pretrained(
            path, local_files_only=True, trust_remote_code=False
        )
        model = DiffusionGemmaForBlockDiffusion.from_pretrained(
            path, local_files_only=True, trust_remote_code=False, **kwargs
        )
    except Exception as exc:  # transformers raises many types for a corrupt file
        raise CheckpointError(f"checkpoint {path} could not be loaded: {exc}") from exc
    if not quantised:
        model = model.to(device)  # type: ignore[arg-type]  # transformers types `.to` loosely
    model.eval()
    report = quant_report(model, resolved)
    log.info("loaded %s: %s", path.name, report.describe())
    layout = getattr(model.config, "diffgem_prompt_layout", None) or (
        "fim" if "<fim_middle>" in tokenizer.get_vocab() else "chat"
    )
    return LoadedCheckpoint(
        model=model,
        tokenizer=tokenizer,
        path=path,
        prompt_layout=layout,
        precision=resolved,
        quant_report=report,
        memory=memory,
    )


def train_bpe_tokenizer(
    texts: list[str], vocab_size: int, *, min_frequency: int = 2
) -> PreTrainedTokenizerFast:
    """Byte-level BPE for code with the `fim` special tokens (the embedded model's and the tests').

    Digits split one by one (numbers compose instead of being memorised); the byte-level regex keeps
    runs of spaces together, which gives cheap indentation tokens.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=FIM_SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=min_frequency,
    )
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<bos>",
        eos_token="<eos>",
        additional_special_tokens=FIM_SPECIAL_TOKENS[3:],
        model_max_length=4096,
    )


def diffusion_gemma_config(
    tokenizer: PreTrainedTokenizerBase, text_config: dict, canvas_length: int
) -> DiffusionGemmaConfig:
    """Wrap a text config into a full DiffusionGemma config with the fields a small one needs
    (transformers' models/diffusion_gemma/configuration_diffusion_gemma.py: the MoE fields are required,
    full-attention layers default to head dim 512, the last layer is made full attention, and a missing
    vision config builds a full-size tower), special ids from the tokenizer, and the `fim` layout."""
    vocab_size = len(tokenizer)
    special = dict(
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    config = DiffusionGemmaConfig(
        text_config={"vocab_size": vocab_size, **text_config, **special},
        vision_config=dict(TINY_VISION_CONFIG),  # a copy: the config may keep and change it
        canvas_length=canvas_length,
        # Image ids must be valid ids below vocab_size; text prompts never contain them.
        image_token_id=vocab_size - 1,
        boi_token_id=vocab_size - 2,
        eoi_token_id=vocab_size - 3,
        **special,
    )
    config.diffgem_prompt_layout = "fim"
    return config
