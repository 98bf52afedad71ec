"""Helpers shared by the tests (imported as `helpers`)."""

import numpy as np


def randomize_(module, seed=0, scale=0.1):
    """Give every parameter of a torch module random values (LayerNorm
    gammas near 1), so swapped or skipped weights cannot go unnoticed."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator) * scale
            base = 1.0 if "LayerNorm.weight" in name or "layer_norm.weight" in name else 0.0
            parameter.copy_(base + noise)
    return module


TINY_BERT = dict(
    vocab_size=99,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=64,
    type_vocab_size=2,
    hidden_act="gelu",
    layer_norm_eps=1e-12,
)


def padded_batch(vocab_size, lengths, seq_len, seed=0, cls_id=None, sep_id=None):
    """Random token ids (never 0 inside a sequence) right-padded with 0, and
    segment ids with a second segment in the back half of each sequence."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, vocab_size, size=(len(lengths), seq_len))
    segments = np.zeros_like(ids)
    for row, length in enumerate(lengths):
        ids[row, length:] = 0
        segments[row, length // 2 : length] = 1
        if cls_id is not None:
            ids[row, 0] = cls_id
        if sep_id is not None:
            ids[row, length - 1] = sep_id
    return ids.astype("int32"), segments.astype("int32")


def run(model, inputs):
    """Inference forward pass as numpy (one list entry per output)."""
    import keras

    outputs = model(inputs, training=False)
    if isinstance(outputs, (list, tuple)):
        return [keras.ops.convert_to_numpy(o) for o in outputs]
    return keras.ops.convert_to_numpy(outputs)


def hf_inputs(ids, segments, attention_mask=None):
    """transformers keyword inputs for a padded batch (pad id 0 unless a mask is given)."""
    import torch

    if attention_mask is None:
        attention_mask = torch.tensor(ids != 0, dtype=torch.long)
    return dict(
        input_ids=torch.tensor(ids, dtype=torch.long),
        token_type_ids=torch.tensor(segments, dtype=torch.long),
        attention_mask=attention_mask,
    )


def truncate_by_popping(lists, budget, truncate_from, n_start=1, n_end=1):
    """The tokenizers' truncation rule, literally: pop one token at a time from
    the longest list (the first on ties) until `budget` tokens remain; an int
    `truncate_from` indexes a list counted with its start/end tokens."""
    while sum(map(len, lists)) > budget:
        longest = max(lists, key=len)
        if truncate_from == "right":
            longest.pop()
        elif truncate_from == "left":
            longest.pop(0)
        else:
            position = truncate_from
            if position < 0:
                position += n_start + len(longest) + n_end
            longest.pop(min(max(position - n_start, 0), len(longest) - 1))
    return lists
