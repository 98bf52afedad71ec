"""Self-check of the HF reference cases (families/hf_cases.py): each case is
what it claims (HF reproduces its expected outputs from the saved folder under
the bert4keras output conventions), every tensor was perturbed and every one
of them moves some expected output, so a skipped, swapped or mis-transposed
weight in the implementation under test cannot pass."""

import json
import os

import numpy as np
import pytest
from safetensors.numpy import load_file

from families import hf_cases

EXPECTED_CASES = {
    # name: (model=, build kwargs)
    "albert": ("albert", {}),
    "albert-pool-mlm": ("albert", {"with_pool": True, "with_mlm": "linear"}),
    "albert_unshared-pool-mlm": ("albert_unshared", {"with_pool": True, "with_mlm": "linear"}),
    "electra": ("electra", {}),
    "electra-discriminator": ("electra", {"with_discriminator": "linear"}),
    "electra-generator-mlm": ("electra", {"with_mlm": "linear"}),
    "roformer": ("roformer", {}),
    "roformer-mlm": ("roformer", {"with_mlm": "linear"}),
}

#: checkpoint tensors no case reads (ALBERT's sentence-order head)
UNUSED = ("sop_classifier.",)


def moves_nothing(key, model_type):
    """Tensors no output can depend on: unused heads, and the attention key
    bias without rotary positions (q.(k + b) shifts every score of a query by
    the same q.b, which softmax cancels; RoFormer rotates k + b, so there it
    counts)."""
    return key.startswith(UNUSED) or (key.endswith("key.bias") and model_type != "roformer")


VOCAB, HIDDEN = hf_cases.SHARED["vocab_size"], hf_cases.SHARED["hidden_size"]


@pytest.fixture(scope="module")
def one_thread():
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def cases(tmp_path_factory, one_thread):
    folder = tmp_path_factory.mktemp("hf_cases")
    built = hf_cases.albert_cases(folder)
    built += hf_cases.electra_cases(folder)
    built += hf_cases.roformer_cases(folder)
    return {case.name: case for case in built}


def load_hf(folder):
    """The saved folder read back by transformers; nothing missing or left over."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(folder)
    model_class = hf_cases.hf_class(config.architectures[0])
    model, info = model_class.from_pretrained(
        folder, attn_implementation="eager", output_loading_info=True
    )
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    assert not info["mismatched_keys"], info
    return model.eval()


def hf_inputs(ids, segments, mask=True):
    import torch

    return dict(
        input_ids=torch.tensor(ids, dtype=torch.long),
        token_type_ids=torch.tensor(segments, dtype=torch.long),
        attention_mask=torch.tensor(ids != 0 if mask else np.ones_like(ids), dtype=torch.long),
    )


def reference(model, case, mask=True):
    """The case's outputs recomputed with HF's public API, the output list
    derived from build_kwargs by the bert4keras conventions."""
    import torch

    kwargs = hf_inputs(*case.inputs, mask=mask)
    base_model = getattr(model, model.base_model_prefix)
    with torch.no_grad():
        base = base_model(**kwargs)
        full = model(**kwargs)
    build = case.build_kwargs
    outputs = []
    if build.get("with_pool"):
        outputs.append(base.pooler_output)
    if build.get("with_mlm"):
        logits = full.prediction_logits if hasattr(full, "prediction_logits") else full.logits
        outputs.append(logits)
    if build.get("with_discriminator"):
        outputs.append(full.logits[..., None])
    if not outputs:
        outputs.append(base.last_hidden_state)
    return [output.numpy() for output in outputs]


def read_config(case):
    with open(os.path.join(case.config_path, "config.json")) as f:
        return json.load(f)


def by_folder(cases):
    folders = {}
    for case in cases.values():
        folders.setdefault(case.checkpoint_path, []).append(case)
    return folders


def test_catalogue(cases):
    assert {name: (c.model, c.build_kwargs) for name, c in cases.items()} == EXPECTED_CASES
    for case in cases.values():
        assert case.config_path == case.checkpoint_path
        assert sorted(os.listdir(case.checkpoint_path)) == ["config.json", "model.safetensors"]
        config = read_config(case)
        assert case.hf_model_type == config["model_type"] == case.model.split("_")[0]
        assert config["embedding_size"] != config["hidden_size"]
        assert config["hidden_size"] // config["num_attention_heads"] % 2 == 0
        assert case.atol == 1e-5
    albert = read_config(cases["albert"])
    assert albert["num_hidden_layers"] == 3 and albert["hidden_act"] == "gelu_new"
    assert albert["num_hidden_groups"] == albert["inner_group_num"] == 1
    roformer = read_config(cases["roformer"])
    assert roformer["rotary_value"] is False and "position_embedding_type" not in roformer


def test_inputs_are_padded_batches(cases):
    for case in cases.values():
        ids, segments = case.inputs
        assert ids.dtype == segments.dtype == np.int32 and ids.shape == segments.shape
        batch, length = ids.shape
        assert 2 <= batch <= 3 and 9 <= length <= 11
        valid = ids != 0
        lengths = valid.sum(axis=1)
        # right padding: the valid tokens come first
        assert (valid == (np.arange(length) < lengths[:, None])).all()
        assert lengths.max() == length and lengths.min() < length
        assert ((ids >= 1) & (ids < VOCAB))[valid].all()
        assert set(np.unique(segments[valid])) == {0, 1} and (segments[~valid] == 0).all()


def test_expected_shapes_follow_conventions(cases):
    for case in cases.values():
        batch, length = case.inputs[0].shape
        build = case.build_kwargs
        shapes = []
        if build.get("with_pool"):
            shapes.append((batch, HIDDEN))
        if build.get("with_mlm"):
            shapes.append((batch, length, VOCAB))
        if build.get("with_discriminator"):
            shapes.append((batch, length, 1))
        shapes = shapes or [(batch, length, HIDDEN)]
        assert [e.shape for e in case.expected] == shapes, case.name
        assert all(e.dtype == np.float32 and np.isfinite(e).all() for e in case.expected)


def test_reloaded_checkpoints_reproduce_expected(cases):
    for folder, folder_cases in by_folder(cases).items():
        model = load_hf(folder)
        for case in folder_cases:
            for got, want in zip(reference(model, case), case.expected, strict=True):
                np.testing.assert_allclose(got, want, rtol=0, atol=1e-6, err_msg=case.name)


def test_unshared_albert_is_the_shared_checkpoint(cases):
    shared, unshared = cases["albert-pool-mlm"], cases["albert_unshared-pool-mlm"]
    assert shared.checkpoint_path == unshared.checkpoint_path
    for a, b in zip(shared.expected, unshared.expected, strict=True):
        np.testing.assert_array_equal(a, b)


def test_every_tensor_was_perturbed(cases):
    for folder in by_folder(cases):
        name = os.path.basename(folder)
        saved = load_file(os.path.join(folder, "model.safetensors"))
        model = hf_cases.init_model(name)
        init = {key: value.numpy() for key, value in model.state_dict().items()}
        # everything but the tied copies (decoder = word embeddings / bias) is saved
        tied = set(model._tied_weights_keys or {})
        assert set(saved) == set(init) - tied, name
        for key, value in saved.items():
            assert value.dtype == np.float32 and value.shape == init[key].shape, key
            if hf_cases.is_fixed(key):
                # RoFormer's sinusoidal table is computed, never trained: kept as is
                np.testing.assert_array_equal(value, init[key], err_msg=key)
                continue
            assert (value != init[key]).all(), f"{name}: {key} keeps initial values"
            if "LayerNorm.weight" in key or "layer_norm.weight" in key:
                assert not np.allclose(value, 1) and abs(value.mean() - 1) < 0.3, key
            elif key.endswith("bias"):
                assert np.abs(value).mean() > 0.05, key  # noise of std 0.2 on zeros


def test_every_tensor_moves_an_expected_output(cases, one_thread):
    """Noise on any one saved tensor changes some case's expected outputs, so an
    implementation that skips or misreads it fails the case."""
    import torch

    generator = torch.Generator().manual_seed(0)
    for folder, folder_cases in by_folder(cases).items():
        model = load_hf(folder)
        checked = 0
        for key, parameter in model.named_parameters():
            if hf_cases.is_fixed(key) or moves_nothing(key, model.config.model_type):
                continue
            original = parameter.detach().clone()
            with torch.no_grad():
                parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.1)
            change = max(
                np.abs(got - want).max()
                for case in folder_cases
                for got, want in zip(reference(model, case), case.expected)
            )
            with torch.no_grad():
                parameter.copy_(original)
            assert change > 1e-3, f"{folder}: {key} moves no output ({change})"
            checked += 1
        assert checked >= 25


def test_padding_mask_matters(cases):
    """Without the padding mask the valid positions of padded rows change (and
    the unpadded row does not), so an implementation ignoring it fails."""
    for folder, folder_cases in by_folder(cases).items():
        model = load_hf(folder)
        case = next(c for c in folder_cases if not c.build_kwargs.get("with_pool"))
        ids = case.inputs[0]
        unmasked, expected = reference(model, case, mask=False)[0], case.expected[0]
        for row, valid in enumerate(ids != 0):
            moved = np.abs(unmasked[row, valid] - expected[row, valid]).max()
            if valid.all():
                assert moved < 1e-5, (folder, case.name, row)
            else:
                assert moved > 1e-3, (folder, case.name, row)


def test_roformer_rotary_positions_matter(cases):
    """With every position's sin/cos equal to position 0's (no rotation) the
    RoFormer outputs change: the cases exercise the rotary embedding."""
    import torch

    case = cases["roformer"]
    model = load_hf(case.checkpoint_path)
    table = model.roformer.encoder.embed_positions.weight
    with torch.no_grad():
        table.copy_(table[:1].expand_as(table).clone())
    (got,) = reference(model, case)
    assert np.abs(got - case.expected[0]).max() > 1e-2
