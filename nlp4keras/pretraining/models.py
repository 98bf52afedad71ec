"""Pretraining models: a Transformer with its LM head on logits, compiled with
a cross-entropy and an accuracy over labelled tokens only (label 0,
`IGNORED_LABEL`, takes no loss), and the optimizers it trains with.

    model = pretraining_model("mlm", "bert_config.json", optimizer="lamb",
                              learning_rate=1e-3, warmup_steps=1000, total_steps=100_000)

Kinds: 'mlm' (bidirectional encoder; inputs token ids and segment ids, as
`MlmExamples`), 'lm' (causal mask, no segment input, as `LmExamples`) and
'unilm' (UniLM's seq2seq mask from the segment ids, as `UnilmExamples`).

'mlm' with `max_predictions=n` runs the MLM head only at n positions per
sequence (Google BERT's max_predictions_per_seq): a third input
`Input-Masked-Positions` (int32 [batch, n], as `MlmExamples(...,
max_predictions=n)` gives it) picks the final hidden states the head reads,
and the logits are [batch, n, vocab]. The head keeps its layers, names and
weights, so weights trained either way load into the other.
"""

import keras
from keras import ops

from nlp4keras import validation
from nlp4keras.backend import serializable
from nlp4keras.models import MODELS, build_transformer_model
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
#: the name of the masked-positions input of an 'mlm' model with max_predictions
POSITIONS_INPUT = "Input-Masked-Positions"

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


@serializable
class GatherPositions(keras.layers.Layer):
    """`[x, positions]` -> x[b, positions[b, i]]: [batch, steps, ...] and int
    [batch, n] give [batch, n, ...] (the hidden states at masked positions).
    Positions must lie in [0, steps) (JAX clamps others silently)."""

    def call(self, inputs):
        x, positions = inputs
        index = ops.expand_dims(ops.cast(positions, "int32"), -1)  # broadcast over features
        return ops.take_along_axis(x, index, axis=1)

    def compute_output_shape(self, input_shape):
        x, positions = input_shape
        return tuple(positions[:2]) + tuple(x[2:])

    def compute_mask(self, inputs, mask=None):
        return None  # the padding mask of the sequence does not apply to the slots


def gathered_mlm(base, max_predictions):
    """A subclass of the Transformer family `base` whose MLM head runs only at
    `max_predictions` positions: an extra input POSITIONS_INPUT (int32
    [batch, max_predictions]), read by a `GatherPositions` layer
    ('MLM-Gather') between the last block and the heads."""

    class GatheredMLM(base):
        def get_inputs(self):
            self.masked_positions = keras.Input(
                shape=(max_predictions,), dtype="int32", name=self.prefixed(POSITIONS_INPUT)
            )
            return list(super().get_inputs()) + [self.masked_positions]

        def apply_final_layers(self, inputs):
            x = self.apply(inputs=[inputs, self.masked_positions], layer=GatherPositions,
                           name="MLM-Gather")  # fmt: skip
            return super().apply_final_layers(x)

    GatheredMLM.__name__ = GatheredMLM.__qualname__ = base.__name__ + "GatheredMLM"
    return GatheredMLM


def model_max_predictions(model):
    """The max_predictions a model built by `pretraining_model` takes (the
    width of its POSITIONS_INPUT), None for a model without that input."""
    for tensor in model.inputs:
        if tensor.name.endswith(POSITIONS_INPUT):
            return int(tensor.shape[1])
    return None


def _gathered_arguments(kind, model, max_predictions, config, who):
    """build_transformer_model's `model` (and name) for max_predictions."""
    if kind != "mlm":
        raise ValueError(f"{who}: `max_predictions` applies to kind='mlm' only, got {kind!r}")
    max_predictions = validation.integer(max_predictions, "max_predictions", who, minimum=1)
    if config.get("with_pool") or config.get("with_nsp"):
        raise ValueError(f"{who}: `max_predictions` gathers before the heads: no pooler / NSP")
    if isinstance(model, type):
        base = model
    else:
        base = MODELS[validation.one_of(_lower(model), "model", tuple(MODELS), who)]
        config.setdefault("name", str(model).lower())  # the Keras model's name, as without
    if not hasattr(base, "apply_mlm_head"):
        raise ValueError(
            f"{who}: `max_predictions` needs a family with an MLM head (bert, albert, "
            f"electra, nezha, roformer...), not {base.__name__}"
        )
    return gathered_mlm(base, max_predictions)


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
                      optimizer_options=None, max_predictions=None, **config):  # fmt: skip
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
    `MaskedAccuracy()` (reported as 'accuracy'). max_predictions ('mlm'
    only): the head runs only at that many positions per sequence, given by
    the extra input POSITIONS_INPUT (see the module docstring)."""
    who = "pretraining_model"
    kind = validation.one_of(_lower(kind), "kind", tuple(KINDS), who)
    if max_predictions is not None:
        model = _gathered_arguments(kind, model, max_predictions, config, who)
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
