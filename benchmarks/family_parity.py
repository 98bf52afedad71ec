"""Measured agreement of every encoder family with its reference (not a
benchmark of speed): the max |ours - reference| of each case of
tests/families (HF transformers, or the numpy forwards written from the
papers), on the current Keras backend, in float32.

    KERAS_BACKEND=jax python benchmarks/family_parity.py
"""

import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from families.decoder_cases import all_decoder_cases  # noqa: E402
from families.hf_cases import all_cases  # noqa: E402
from families.numpy_cases import gau_alpha_cases, nezha_cases, roformer_v2_cases  # noqa: E402
from families.t5_cases import t5_cases  # noqa: E402

from nlp4keras.models import build_transformer_model  # noqa: E402


def main():
    with tempfile.TemporaryDirectory() as folder:
        cases = (
            all_cases(folder + "/hf")
            + nezha_cases(folder + "/nezha")
            + roformer_v2_cases(folder + "/roformer_v2")
            + gau_alpha_cases(folder + "/gau_alpha")
            + all_decoder_cases(folder + "/decoders")
        )
        print(f"backend: {keras.backend.backend()}")
        print("| case | reference | max abs diff | tolerance |")
        print("|---|---|---:|---:|")
        for case in cases:
            model = build_transformer_model(
                case.config_path, case.checkpoint_path, model=case.model, **case.build_kwargs
            )
            got = model.predict_on_batch(case.inputs)
            got = got if isinstance(got, (list, tuple)) else [got]
            reference = "HF transformers" if case.hf_model_type else "numpy forward"
            _row(case.name, reference, zip(got, case.expected), case.atol)
        for case in t5_cases(folder + "/t5").values():
            t5 = case.build()
            encoder = t5.encoder.predict_on_batch(case.encoder_ids)
            logits = t5.model.predict_on_batch([case.encoder_ids, case.decoder_ids])
            _row(
                f"{case.name}-encoder",
                "HF transformers",
                [(encoder, case.encoder_outputs)],
                case.atol,
            )
            _row(f"{case.name}-logits", "HF transformers", [(logits, case.logits)], case.atol)


def _row(name, reference, pairs, atol):
    diff = max(float(np.max(np.abs(np.asarray(got) - expected))) for got, expected in pairs)
    print(f"| {name} | {reference} | {diff:.1e} | {atol:.0e} |")


if __name__ == "__main__":
    main()
