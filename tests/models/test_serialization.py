"""Keras save/load round trips give identical outputs."""

import keras
import numpy as np
import pytest
from helpers import TINY_BERT, padded_batch, run

from nlp4keras.models import build_transformer_model

VARIANTS = {
    "encoder_heads": dict(with_nsp=True, with_mlm=True),
    "unilm": dict(application="unilm"),
    "positions": dict(custom_position_ids=True, hierarchical_position=True, with_pool="linear"),
    "realformer": dict(residual_attention_scores=True, application="lm"),
}


def inputs_for(model, seed=0):
    ids, segments = padded_batch(TINY_BERT["vocab_size"], [12, 7], 12, seed=seed)
    arrays = [ids, segments]
    if len(model.inputs) == 3:
        arrays.append(np.tile(np.arange(12, dtype="int32")[::-1], (2, 1)))
    return arrays


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_save_and_load_model_round_trip(tmp_path, variant):
    model = build_transformer_model(**TINY_BERT, **VARIANTS[variant])
    inputs = inputs_for(model)
    before = run(model, inputs)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    after = run(restored, inputs)
    as_list = lambda x: x if isinstance(x, list) else [x]  # noqa: E731
    assert len(as_list(before)) == len(as_list(after))
    for a, b in zip(as_list(before), as_list(after)):
        np.testing.assert_array_equal(a, b)
    assert [layer.name for layer in restored.layers] == [layer.name for layer in model.layers]


def test_save_weights_round_trip(tmp_path):
    source = build_transformer_model(**TINY_BERT, with_mlm=True)
    target = build_transformer_model(**TINY_BERT, with_mlm=True)
    inputs = inputs_for(source)
    assert not np.array_equal(run(source, inputs), run(target, inputs))
    path = tmp_path / "bert.weights.h5"
    source.save_weights(path)
    target.load_weights(path)
    np.testing.assert_array_equal(run(source, inputs), run(target, inputs))


def test_load_model_in_a_fresh_process_after_import_nlp4keras(tmp_path):
    """Only `import nlp4keras` is needed to deserialize (layers register)."""
    import os
    import subprocess
    import sys

    model = build_transformer_model(**TINY_BERT, with_mlm=True, application="unilm")
    inputs = inputs_for(model)
    model.save(tmp_path / "model.keras")
    np.savez(tmp_path / "io.npz", ids=inputs[0], segments=inputs[1], out=run(model, inputs))
    code = (
        "import sys, numpy as np, nlp4keras, keras\n"
        "model = keras.saving.load_model(sys.argv[1] + '/model.keras')\n"
        "io = np.load(sys.argv[1] + '/io.npz')\n"
        "out = keras.ops.convert_to_numpy(model([io['ids'], io['segments']], training=False))\n"
        "print(float(np.abs(out - io['out']).max()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert float(result.stdout.split()[-1]) == 0.0
