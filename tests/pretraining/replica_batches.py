"""What the TensorFlow MirroredStrategy and torch DDP checks train: a tiny
`pretraining_model("mlm", ...)`, its start weights and fixed MLM batches.

Data-parallel replicas each average the loss over their own labelled tokens,
and the gradients are then averaged (torch DDP) or the scaled losses summed
(tf.distribute) over replicas. That equals the one-device mean over all the
labelled tokens only when every replica holds as many of them, so every row
here masks exactly MASKED tokens."""

import numpy as np

STEPS, BATCH, LENGTH, VOCAB, MASKED, MASK_ID = 4, 8, 16, 200, 4, 1


def tiny_mlm(**config):
    """The README's pretraining block's size (hidden 32, 2 layers), no dropout;
    LAMB so that every optimizer wrapper of the package runs."""
    from nlp4keras.pretraining import pretraining_model

    return pretraining_model(
        "mlm", vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, hidden_act="gelu", max_position=LENGTH, dropout_rate=0.0,
        optimizer="lamb", optimizer_options=dict(learning_rate=1e-2, warmup_steps=2, total_steps=8),
        **config,
    )  # fmt: skip


def start_weights(model):
    """The same start in every run, whatever the device placement."""
    rng = np.random.default_rng(1)
    return [
        (rng.normal(0, 0.05, w.shape) + (1.0 if w.path.endswith("gamma") else 0.0)).astype(
            "float32"
        )
        for w in model.weights
    ]


def batches(part=0, parts=1):
    """STEPS batches ([token_ids, segment_ids], labels), labels 0 where no
    loss; rows `part` of `parts` equal slices of each."""
    rng = np.random.default_rng(0)
    tokens = rng.integers(2, VOCAB, (STEPS, BATCH, LENGTH))
    order = rng.random(tokens.shape).argsort(axis=-1)
    masked = order < MASKED  # MASKED random positions in every row
    inputs = np.where(masked, MASK_ID, tokens).astype("int32")
    labels = np.where(masked, tokens, 0).astype("int32")
    rows = slice(part * BATCH // parts, (part + 1) * BATCH // parts)
    for step in range(STEPS):
        x = inputs[step, rows]
        yield [x, np.zeros_like(x)], labels[step, rows]
