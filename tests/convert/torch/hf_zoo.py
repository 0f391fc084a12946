"""Small ``transformers`` models for the converter tests: built from tiny configs, random init, fixed seeds, eval mode.

No weights are downloaded. Each builder returns ``(module, example_inputs, dynamic_shapes, other_inputs)``, the
inputs as a tuple or as a dict of keyword inputs: the module is exported at ``example_inputs`` and checked at
``other_inputs`` (another batch size and, for token models, another sequence length). Generation models are built
with ``use_cache=False`` (KV-free logits): a ``DynamicCache`` in the output is not a tensor.
``attn_implementation="eager"`` is not needed: the default (sdpa) exports as is. The ``_padded`` variants also take
an attention mask that pads some rows (GPT-2's as a keyword input: its second positional parameter is
``past_key_values``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

transformers = __import__("pytest").importorskip("transformers", reason="the transformers zoo needs transformers")

__all__ = ["HF_ZOO", "build_hf"]

VOCAB = 100


def _randomize(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Re-randomise parameters that start constant (biases, norm scales) so every layer carries signal."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.numel() > 1 and (p == p.flatten()[0]).all():
                p.copy_(torch.randn(p.shape, generator=g) * 0.1 + (1.0 if "weight" in name else 0.0))
    return module.eval()


def _tokens(batch: int, seq: int, seed: int) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, seq), generator=torch.Generator().manual_seed(seed))


def _token_model(make: Callable[[], torch.nn.Module], scale: int = 1) -> Any:
    from torch.export import Dim

    torch.manual_seed(0)
    module = _randomize(make(), 1)
    dyn = ({0: Dim("batch"), 1: Dim("seq", max=64)},)
    return module, (_tokens(2, 8 * scale, 2),), dyn, (_tokens(3, 5 * scale, 3),)


def bert(scale: int = 1) -> Any:
    cfg = transformers.BertConfig(
        vocab_size=VOCAB, hidden_size=32 * scale, num_hidden_layers=2 * scale, num_attention_heads=4,
        intermediate_size=64 * scale, max_position_embeddings=64,
    )  # fmt: skip
    return _token_model(lambda: transformers.BertModel(cfg), scale)


def gpt2(scale: int = 1) -> Any:
    cfg = transformers.GPT2Config(
        vocab_size=VOCAB, n_embd=32 * scale, n_layer=2 * scale, n_head=4, n_positions=64, use_cache=False,
        bos_token_id=0, eos_token_id=0,
    )  # fmt: skip
    return _token_model(lambda: transformers.GPT2LMHeadModel(cfg), scale)


def llama(scale: int = 1) -> Any:
    """Rotary position embeddings and grouped-query attention (2 key/value heads for 4 query heads)."""
    cfg = transformers.LlamaConfig(
        vocab_size=VOCAB, hidden_size=32 * scale, num_hidden_layers=2 * scale, num_attention_heads=4,
        num_key_value_heads=2, intermediate_size=64 * scale, max_position_embeddings=64, use_cache=False,
        bos_token_id=0, eos_token_id=0, pad_token_id=0,
    )  # fmt: skip
    return _token_model(lambda: transformers.LlamaForCausalLM(cfg), scale)


def t5_encoder(scale: int = 1) -> Any:
    """The encoder of an encoder-decoder model, with T5's relative position buckets."""
    cfg = transformers.T5Config(
        vocab_size=VOCAB, d_model=32 * scale, d_kv=8, d_ff=64 * scale, num_layers=2 * scale, num_heads=4,
        use_cache=False,
    )  # fmt: skip
    return _token_model(lambda: transformers.T5EncoderModel(cfg), scale)


def vit(scale: int = 1) -> Any:
    """A vision transformer; its sequence length is fixed by the image size, so only the batch is dynamic."""
    from torch.export import Dim

    cfg = transformers.ViTConfig(
        image_size=32, patch_size=8, num_channels=3, hidden_size=32 * scale, num_hidden_layers=2 * scale,
        num_attention_heads=4, intermediate_size=64 * scale,
    )  # fmt: skip
    torch.manual_seed(0)
    module = _randomize(transformers.ViTModel(cfg), 1)
    g = torch.Generator().manual_seed(2)
    x, other = torch.randn(2, 3, 32, 32, generator=g), torch.randn(3, 3, 32, 32, generator=g)
    return module, (x,), ({0: Dim("batch")},), (other,)


def _padded(build: Callable[[int], Any], keywords: bool = False) -> Callable[[int], Any]:
    """The same model called with an attention mask that pads some rows: ``forward(input_ids, attention_mask)``,
    or with ``keywords`` as ``forward(input_ids=..., attention_mask=...)`` (example inputs given as a dict)."""

    def padded(scale: int = 1) -> Any:
        from torch.export import Dim

        module, (ids,), _, (other,) = build(scale)
        mask, other_mask = torch.ones_like(ids), torch.ones_like(other)
        mask[0, -3:] = 0
        other_mask[1, -2:] = 0
        batch, seq = Dim("batch"), Dim("seq", max=64)
        if keywords:
            dyn: Any = {"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}}
            example = {"input_ids": ids, "attention_mask": mask}
            return module, example, dyn, {"input_ids": other, "attention_mask": other_mask}
        dyn = ({0: batch, 1: seq}, {0: batch, 1: seq})
        return module, (ids, mask), dyn, (other, other_mask)

    return padded


HF_ZOO: dict[str, Callable[..., Any]] = {
    "bert": bert, "gpt2": gpt2, "llama": llama, "t5_encoder": t5_encoder, "vit": vit,
    "bert_padded": _padded(bert), "llama_padded": _padded(llama), "t5_encoder_padded": _padded(t5_encoder),
    "gpt2_padded": _padded(gpt2, keywords=True),
}  # fmt: skip


def build_hf(name: str, scale: int = 1) -> Any:
    return HF_ZOO[name](scale)
