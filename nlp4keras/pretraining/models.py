"""Pretraining models: a Transformer with its LM head on logits, compiled with
a cross-entropy and an accuracy over labelled tokens only (label 0,
`IGNORED_LABEL`, takes no loss), and the optimizers it trains with.

    model = pretraining_model("mlm", "bert_config.json", optimizer="lamb",
                              learning_rate=1e-3, warmup_steps=1000, total_steps=100_000)

Kinds: 'mlm' (bidirectional encoder; inputs token ids and segment ids, as
`MlmExamples`), 'lm' (causal mask, no segment input, as `LmExamples`) and
'unilm' (UniLM's seq2seq mask from the segment ids, as `UnilmExamples`).
"""

import keras
from keras import ops

from nlp4keras import validation
from nlp4keras.backend import serializable
from nlp4keras.models import build_transformer_model
from nlp4keras.optimizers import (
    Adam,
    extend_with_gradient_accumulation,
    extend_with_layer_adaptation,
    extend_with_piecewise_linear_lr,
    extend_with_weight_decay,
)
from nlp4keras.pretraining.vocab import IGNORED_LABEL
from nlp4keras.training import mixed_precision

#: kind -> build_transformer_model's application
KINDS = {"mlm": "encoder", "lm": "lm", "unilm": "unilm"}

# AdamW: Adam with decoupled weight decay; LAMB: AdamW rescaled per variable by
# the trust ratio ||w|| / ||update||. Both with a warm-up / decay schedule and
# gradient accumulation (grad_accum_steps=1: none).
PretrainingAdamW = extend_with_gradient_accumulation(
    extend_with_piecewise_linear_lr(extend_with_weight_decay(Adam)), name="PretrainingAdamW"
)
PretrainingLAMB = extend_with_gradient_accumulation(
    extend_with_piecewise_linear_lr(extend_with_layer_adaptation(extend_with_weight_decay(Adam))),
    name="PretrainingLAMB",
)
OPTIMIZERS = {"adamw": PretrainingAdamW, "lamb": PretrainingLAMB}


def _lower(value):
    return value.lower() if isinstance(value, str) else value


def masked_crossentropy():
    """Sparse cross-entropy on logits averaged over the labelled tokens of a
    batch (Keras' `ignore_class` weights the others 0 and divides by the
    number of labelled tokens, not of all tokens)."""
    return keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, ignore_class=IGNORED_LABEL, name="masked_crossentropy"
    )


@serializable
class MaskedAccuracy(keras.metrics.Mean):
    """The fraction of labelled tokens (label != ignore_class) whose argmax
    prediction is the label; unlabelled tokens count nowhere."""

    def __init__(self, name="accuracy", ignore_class=IGNORED_LABEL, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.ignore_class = validation.integer(ignore_class, "ignore_class", "MaskedAccuracy")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        hits = ops.cast(ops.equal(predicted, y_true), self.dtype)
        weight = ops.cast(ops.not_equal(y_true, self.ignore_class), self.dtype)
        if sample_weight is not None:
            weight = weight * ops.cast(ops.reshape(sample_weight, ops.shape(weight)), self.dtype)
        return super().update_state(hits, sample_weight=weight)

    def get_config(self):
        return {**super().get_config(), "ignore_class": self.ignore_class}


def lr_schedule(warmup_steps=0, total_steps=None, final_lr_fraction=0.0):
    """bert4keras' `lr_schedule` ({update: multiplier}): linear warm-up from 0
    to 1 over `warmup_steps` updates, then linear decay to
    `final_lr_fraction` at `total_steps` (constant after; none without it)."""
    who = "lr_schedule"
    warmup = validation.integer(warmup_steps, "warmup_steps", who, minimum=0)
    final = validation.real(final_lr_fraction, "final_lr_fraction", who, minimum=0, maximum=1)
    schedule = {warmup: 1.0}
    if total_steps is not None:
        total = validation.integer(total_steps, "total_steps", who, above=warmup)
        schedule[total] = final
    return schedule


def pretraining_optimizer(name="adamw", learning_rate=1e-4, weight_decay_rate=0.01,
                          exclude_from_weight_decay=("Norm", "bias"), warmup_steps=0,
                          total_steps=None, final_lr_fraction=0.0, grad_accum_steps=1,
                          **kwargs):  # fmt: skip
    """AdamW or LAMB ('adamw' | 'lamb') with `lr_schedule(warmup_steps,
    total_steps, final_lr_fraction)`, counted in updates (with gradient
    accumulation an update takes `grad_accum_steps` batches). Weight decay
    and LAMB's trust ratio skip the variables whose path matches one of
    `exclude_from_weight_decay` (BERT: LayerNorm and biases). Other keyword
    arguments go to the optimizer (beta_1, epsilon, clipnorm, ...)."""
    who = "pretraining_optimizer"
    name = validation.one_of(_lower(name), "optimizer", tuple(OPTIMIZERS), who)
    exclusions = list(exclude_from_weight_decay or ())
    if name == "lamb":
        kwargs["exclude_from_layer_adaptation"] = exclusions
    return OPTIMIZERS[name](
        learning_rate=validation.real(learning_rate, "learning_rate", who, above=0),
        weight_decay_rate=weight_decay_rate,
        exclude_from_weight_decay=exclusions,
        lr_schedule=lr_schedule(warmup_steps, total_steps, final_lr_fraction),
        grad_accum_steps=grad_accum_steps,
        **kwargs,
    )


def pretraining_model(kind="mlm", config_path=None, checkpoint_path=None, model="bert",
                      optimizer="adamw", policy=None, recompute=None, jit_compile="auto",
                      optimizer_options=None, **config):  # fmt: skip
    """A compiled Keras model for pretraining of `kind` ('mlm' | 'lm' | 'unilm').

    config_path / checkpoint_path / model / config (keyword overrides such
    as num_hidden_layers=2): as `build_transformer_model`. The LM head gives
    logits (`with_mlm='linear'`, tied to the token embeddings); 'lm' has no
    segment input unless `segment_vocab_size` is given. optimizer: 'adamw',
    'lamb' (built by `pretraining_optimizer(name, **optimizer_options)`) or
    a Keras optimizer. policy: a mixed-precision policy ('mixed_bfloat16',
    'mixed_float16': loss scaling added; the head and loss stay float32).
    recompute: gradient checkpointing of each block (None: the RECOMPUTE
    environment variable). Loss: `masked_crossentropy()`; metric:
    `MaskedAccuracy()` (reported as 'accuracy')."""
    who = "pretraining_model"
    kind = validation.one_of(_lower(kind), "kind", tuple(KINDS), who)
    options = dict(optimizer_options or {})
    if isinstance(optimizer, str):
        optimizer = pretraining_optimizer(optimizer, **options)
    elif options:
        raise ValueError(f"{who}: `optimizer_options` only apply to optimizer='adamw' or 'lamb'")
    else:
        validation.instance(optimizer, "optimizer", keras.optimizers.Optimizer, who,
                            what="'adamw', 'lamb' or a keras.optimizers.Optimizer")  # fmt: skip
    if kind == "lm":
        config.setdefault("segment_vocab_size", 0)  # LmExamples give token ids only
    if recompute is not None:
        config["recompute"] = recompute
    with mixed_precision(policy or keras.config.dtype_policy()):
        network = build_transformer_model(config_path, checkpoint_path, model=model,
                                          application=KINDS[kind], with_mlm="linear",
                                          **config)  # fmt: skip
        network.compile(optimizer=optimizer, loss=masked_crossentropy(),
                        metrics=[MaskedAccuracy()], jit_compile=jit_compile)  # fmt: skip
    return network
