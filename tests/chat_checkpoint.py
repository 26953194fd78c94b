"""A tiny random DiffusionGemma-it-style checkpoint: Gemma special tokens and a Gemma chat template.

Test-only. Saved in the real format (config.json without our layout marker, safetensors, tokenizer.json and
the chat template beside it), so the engine must recognise the `chat` layout the way it would for the real
instruction-tuned model: no FIM tokens in the vocabulary.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import DiffusionGemmaForBlockDiffusion, PreTrainedTokenizerFast

from tests.tiny_model import tiny_config

# Gemma's chat template (the `<start_of_turn>role ... <end_of_turn>` turns Gemma 2/3 instruction-tuned
# checkpoints ship in tokenizer_config.json): a system message is folded into the first user turn, the
# assistant role is called "model", and the generation prompt opens a model turn.
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}"
    "{%- set first_user_prefix = '' -%}"
    "{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{%- endif -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}"
    "{{ message['content'] | trim }}"
    "{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)
# Gemma's id order: pad 0, eos 1, bos 2.
GEMMA_SPECIALS = ["<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>"]


def train_gemma_style_tokenizer(texts: list[str], vocab_size: int = 512) -> PreTrainedTokenizerFast:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=GEMMA_SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="<eos>",
        bos_token="<bos>",
        additional_special_tokens=GEMMA_SPECIALS[3:],
        model_max_length=8192,
    )
    fast.chat_template = GEMMA_CHAT_TEMPLATE
    return fast


def make_chat_checkpoint(
    path: str | Path, texts: list[str], *, seed: int = 0, vocab_size: int = 512, **config_kwargs
) -> Path:
    tokenizer = train_gemma_style_tokenizer(texts, vocab_size=vocab_size)
    return save_chat_model(path, tokenizer, seed=seed, **config_kwargs)


def save_chat_model(
    path: str | Path, tokenizer: PreTrainedTokenizerFast, *, seed: int = 0, **config_kwargs
) -> Path:
    """A random tiny model for `tokenizer`, configured as the real -it checkpoint, saved with it."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = tiny_config(tokenizer, **config_kwargs)
    del config.diffgem_prompt_layout  # the real -it config has no such field
    model = DiffusionGemmaForBlockDiffusion(config)
    end_of_turn = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    # As the real generation config: the turn end stops generation too.
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, end_of_turn]
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    config_json = json.loads((path / "config.json").read_text())
    assert "diffgem_prompt_layout" not in config_json
    return path
