"""Reference cases for the T5 family: tiny perturbed HF models (`save_pretrained`
folders) of each version, and what transformers computes for them in float32
(eager attention): the encoder's hidden states of a right-padded batch with
its attention mask, and the decoder's logits at every position.

Sizes are odd on purpose: vocab 61, d_model 36, 3 heads of d_kv 7 (inner
size 21 != d_model), d_ff 40; bucket options differ per case, and the
encoder is long enough for the log-spaced buckets and the clipped distances.
1.1 / mT5 heads are untied (lm_head != shared), as in Google's checkpoints."""

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VOCAB, HIDDEN, ENCODER_LENGTH, DECODER_LENGTH = 61, 36, 15, 7
#: standard deviation of the noise added to every tensor
NOISE = 0.1
SIZES = dict(vocab_size=VOCAB, d_model=HIDDEN, d_kv=7, d_ff=40, num_layers=2, num_heads=3)

#: name -> (model=, HF config class, HF model class, config kwargs, seed)
T5_CASES = {
    "t5": (
        "t5",
        "T5Config",
        "T5ForConditionalGeneration",
        dict(feed_forward_proj="relu", relative_attention_num_buckets=8,
             relative_attention_max_distance=20, layer_norm_epsilon=1e-5),
        301,
    ),
    "t5.1.1": (
        "t5.1.1",
        "T5Config",
        "T5ForConditionalGeneration",
        dict(feed_forward_proj="gated-gelu", tie_word_embeddings=False,
             relative_attention_num_buckets=10, relative_attention_max_distance=12),
        302,
    ),
    "mt5.1.1": ("mt5.1.1", "MT5Config", "MT5ForConditionalGeneration", dict(), 303),
}  # fmt: skip


@dataclass
class T5Case:
    name: str
    model: str
    folder: str
    #: encoder ids [3, 15] (rows right-padded with 0) and decoder ids [3, 7] (start id 0)
    encoder_ids: np.ndarray
    decoder_ids: np.ndarray
    #: HF encoder hidden states (with the attention mask) and logits
    encoder_outputs: np.ndarray
    logits: np.ndarray
    atol: float = 1e-5

    def build(self, checkpoint_path=None, **kwargs):
        from nlp4keras.models import build_transformer_model

        options = dict(with_lm="linear", cross_position_bias=False, return_keras_model=False)
        return build_transformer_model(
            self.folder,
            checkpoint_path or self.folder,
            model=kwargs.pop("model", self.model),
            **{**options, **kwargs},
        )


def transformers_class(name):
    import transformers

    return getattr(transformers, name)


def hf_model(name):
    """The perturbed HF model of case `name` (every tensor moved; 1.1 / mT5
    get their own lm_head)."""
    import torch

    _, config_class, model_class, kwargs, seed = T5_CASES[name]
    config = transformers_class(config_class)(**SIZES, **kwargs, attn_implementation="eager")
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = transformers_class(model_class)(config).eval()
    with torch.no_grad():
        if name != "t5":
            head = torch.randn(VOCAB, HIDDEN, generator=generator) * NOISE
            model.lm_head.weight = torch.nn.Parameter(head)
        for _, parameter in model.named_parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * NOISE)
    return model


def encoder_ids(seed, batch=3):
    """Ids in [1, vocab), row i right-padded with 0 by 3 * i."""
    ids = np.random.default_rng(seed).integers(1, VOCAB, (batch, ENCODER_LENGTH))
    for row in range(batch):
        ids[row, ENCODER_LENGTH - 3 * row :] = 0
    return ids.astype("int32")


def decoder_ids(seed, batch=3):
    """The start id 0, then ids in [1, vocab) (0 is the pad id inside)."""
    ids = np.random.default_rng(seed + 1).integers(1, VOCAB, (batch, DECODER_LENGTH))
    ids[:, 0] = 0
    return ids.astype("int32")


def hf_outputs(model, encoder, decoder):
    """HF's outputs, computed in float64 (so the float32 error measured is ours)."""
    import torch

    model = copy.deepcopy(model).double()
    kwargs = dict(
        input_ids=torch.tensor(encoder, dtype=torch.long),
        attention_mask=torch.tensor(encoder != 0, dtype=torch.long),
    )
    with torch.no_grad():
        hidden = model.encoder(**kwargs).last_hidden_state.numpy()
        logits = model(**kwargs, decoder_input_ids=torch.tensor(decoder, dtype=torch.long)).logits
    return hidden.astype(np.float32), logits.numpy().astype(np.float32)


def t5_cases(folder):
    cases = {}
    for name, (model_name, _, _, _, seed) in T5_CASES.items():
        model = hf_model(name)
        path = str(Path(folder) / name)
        model.save_pretrained(path)
        encoder, decoder = encoder_ids(seed), decoder_ids(seed)
        hidden, logits = hf_outputs(model, encoder, decoder)
        cases[name] = T5Case(name, model_name, path, encoder, decoder, hidden, logits)
    return cases
