"""HF transformers reference cases for the ALBERT, ELECTRA and RoFormer families.

Each builder saves tiny, fully perturbed HF checkpoints (config.json +
model.safetensors, `save_pretrained`) under `folder` and returns FamilyCase
objects whose expected outputs HF computed in float32 (eager attention,
`attention_mask = ids != 0`, torch.no_grad). Output conventions of the model
under test (bert4keras): no head -> sequence output; with_pool -> pooled output
only; with_mlm -> MLM logits; pool + mlm -> [pooled, logits]; ELECTRA's
with_discriminator -> logits shaped [batch, len, 1]. Padded query positions
are part of the expected outputs too.

Sizes are odd on purpose (vocab 67, hidden 30, 3 heads of 10, intermediate 46)
and embedding_size 18 != hidden_size, so every family's embedding projection
is exercised.
"""

from pathlib import Path

import numpy as np

from families.case import FamilyCase

SHARED = dict(
    vocab_size=67,
    hidden_size=30,
    num_attention_heads=3,  # head size 10: even, as RoFormer's rotary needs
    intermediate_size=46,
    embedding_size=18,
    max_position_embeddings=40,
    type_vocab_size=2,
    pad_token_id=0,
    layer_norm_eps=1e-12,
)

#: checkpoint (subfolder) name -> HF class name, config kwargs, torch seed
CHECKPOINTS = {
    "albert": (
        "AlbertForPreTraining",
        dict(
            SHARED,
            model_type="albert",
            num_hidden_layers=3,
            num_hidden_groups=1,
            inner_group_num=1,
            hidden_act="gelu_new",
        ),
        101,
    ),
    "electra_discriminator": (
        "ElectraForPreTraining",
        dict(SHARED, model_type="electra", num_hidden_layers=2, hidden_act="gelu"),
        102,
    ),
    "electra_generator": (
        "ElectraForMaskedLM",
        dict(SHARED, model_type="electra", num_hidden_layers=2, hidden_act="gelu"),
        103,
    ),
    "roformer": (
        "RoFormerForMaskedLM",
        dict(
            SHARED,
            model_type="roformer",
            num_hidden_layers=2,
            hidden_act="gelu",
            rotary_value=False,
        ),
        104,
    ),
}

#: name of the base model attribute of each HF model_type
BASE_ATTRIBUTE = {"albert": "albert", "electra": "electra", "roformer": "roformer"}

#: standard deviation of the noise added to every trained tensor
NOISE = 0.2


def hf_class(name):
    import transformers

    return getattr(transformers, name)


def hf_config(name):
    """The transformers config object of checkpoint `name` (eager attention)."""
    from transformers import AutoConfig

    kwargs = dict(CHECKPOINTS[name][1])
    model_type = kwargs.pop("model_type")
    return AutoConfig.for_model(model_type, attn_implementation="eager", **kwargs)


def init_model(name):
    """The HF model of checkpoint `name` as initialised from its seed (before
    perturbation); the global torch RNG is left untouched."""
    import torch

    class_name, _, seed = CHECKPOINTS[name]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = hf_class(class_name)(hf_config(name))
    return model.eval()


def is_fixed(parameter_name):
    """Parameters that are no weights: RoFormer's sinusoidal position table."""
    return parameter_name.endswith("embed_positions.weight")


def perturb_(model, seed, scale=NOISE):
    """Add N(0, scale) noise to every trained tensor (tied ones once), so zero
    biases, unit LayerNorm gammas and the embedding padding row all change."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if is_fixed(name):
                continue
            parameter.add_(torch.randn(parameter.shape, generator=generator) * scale)
    return model


def save_checkpoint(name, folder):
    """Build, perturb and save checkpoint `name` under folder/name."""
    model = perturb_(init_model(name), seed=CHECKPOINTS[name][2] + 1000)
    path = Path(folder) / name
    model.save_pretrained(path)
    return model, str(path)


def make_inputs(seed, batch, length, vocab_size=SHARED["vocab_size"]):
    """int32 [token_ids, segment_ids]: ids in [1, vocab), row i right-padded with 0
    to length - 3 * i (row 0 unpadded), segment 1 on the back half of each text."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, vocab_size, size=(batch, length))
    segments = np.zeros_like(ids)
    for row in range(batch):
        used = length - 3 * row
        ids[row, used:] = 0
        segments[row, used // 2 : used] = 1
    return [ids.astype("int32"), segments.astype("int32")]


def hf_kwargs(inputs):
    import torch

    ids, segments = inputs
    return dict(
        input_ids=torch.tensor(ids, dtype=torch.long),
        token_type_ids=torch.tensor(segments, dtype=torch.long),
        attention_mask=torch.tensor(ids != 0, dtype=torch.long),
    )


def hf_outputs(model, model_type, inputs, outputs):
    """HF's reference outputs, float32 numpy, in the Keras output order.
    outputs: names among 'sequence', 'pooled', 'mlm', 'discriminator'."""
    import torch

    kwargs = hf_kwargs(inputs)
    with torch.no_grad():
        base = getattr(model, BASE_ATTRIBUTE[model_type])(**kwargs)
        head = None
        if {"mlm", "discriminator"} & set(outputs):
            head = model(**kwargs)
    results = []
    for output in outputs:
        if output == "sequence":
            value = base.last_hidden_state
        elif output == "pooled":
            value = base.pooler_output
        elif output == "mlm":
            value = head.prediction_logits if model_type == "albert" else head.logits
        elif output == "discriminator":
            value = head.logits[..., None]  # HF squeezes the unit axis
        else:
            raise ValueError(output)
        results.append(value.numpy().astype(np.float32))
    return results


#: case name -> (checkpoint, model=, build kwargs, outputs)
CASES = {
    "albert": ("albert", "albert", {}, ["sequence"]),
    "albert-pool-mlm": (
        "albert",
        "albert",
        dict(with_pool=True, with_mlm="linear"),
        ["pooled", "mlm"],
    ),
    "albert_unshared-pool-mlm": (
        "albert",
        "albert_unshared",
        dict(with_pool=True, with_mlm="linear"),
        ["pooled", "mlm"],
    ),
    "electra": ("electra_discriminator", "electra", {}, ["sequence"]),
    "electra-discriminator": (
        "electra_discriminator",
        "electra",
        dict(with_discriminator="linear"),
        ["discriminator"],
    ),
    "electra-generator-mlm": (
        "electra_generator",
        "electra",
        dict(with_mlm="linear"),
        ["mlm"],
    ),
    "roformer": ("roformer", "roformer", {}, ["sequence"]),
    "roformer-mlm": ("roformer", "roformer", dict(with_mlm="linear"), ["mlm"]),
}

#: (batch, length) of each checkpoint's inputs
INPUT_SHAPES = {
    "albert": (3, 11),
    "electra_discriminator": (2, 9),
    "electra_generator": (3, 10),
    "roformer": (3, 10),
}


def _family_cases(folder, checkpoints):
    cases = []
    for checkpoint in checkpoints:
        model, path = save_checkpoint(checkpoint, folder)
        model_type = model.config.model_type
        batch, length = INPUT_SHAPES[checkpoint]
        inputs = make_inputs(CHECKPOINTS[checkpoint][2], batch, length)
        for case_name, (source, family, build_kwargs, outputs) in CASES.items():
            if source != checkpoint:
                continue
            cases.append(
                FamilyCase(
                    name=case_name,
                    model=family,
                    config_path=path,
                    checkpoint_path=path,
                    inputs=[array.copy() for array in inputs],
                    expected=hf_outputs(model, model_type, inputs, outputs),
                    build_kwargs=dict(build_kwargs),
                    hf_model_type=model_type,
                )
            )
    return cases


def albert_cases(folder):
    """ALBERT (3 layers, one shared block, gelu_new) from an AlbertForPreTraining
    checkpoint: sequence output; [pooled, MLM logits]; the same checkpoint as
    albert_unshared (the shared block copied into every layer)."""
    return _family_cases(folder, ["albert"])


def electra_cases(folder):
    """ELECTRA: a discriminator (ElectraForPreTraining) checkpoint read without a
    head and with_discriminator='linear' ([batch, len, 1] logits), and a generator
    (ElectraForMaskedLM) checkpoint read with_mlm='linear'."""
    return _family_cases(folder, ["electra_discriminator", "electra_generator"])


def roformer_cases(folder):
    """RoFormer (rotary positions, no absolute position table) from a
    RoFormerForMaskedLM checkpoint: sequence output and MLM logits."""
    return _family_cases(folder, ["roformer"])


def all_cases(folder):
    return albert_cases(folder) + electra_cases(folder) + roformer_cases(folder)
