"""Wrappers that rewrite each variable's update after the inner optimizer made it.

Each one runs the inner `update_step`, then replaces the new value, with
`old` = the value before the step, `new` = the inner result, `lr` = the
learning rate of this step (piecewise-linear multiplier included):

- weight decay:       new - lr * rate * old
- layer adaptation:   old + (new - old) * ||old|| / ||(new - old) / lr||
- lazy optimization:  new on rows whose gradient row is non-zero, old elsewhere
- parameter-wise lr:  old + (new - old) * multiplier

The innermost wrapper rewrites first (bert4keras order), so order matters where
the rewrites do not commute:
- parameter-wise lr outside weight decay scales the decay too, inside it does not;
- layer adaptation undoes any rescaling made inside it: put parameter-wise lr
  outside it; LAMB is `extend_with_layer_adaptation(extend_with_weight_decay(Adam))`
  (the trust ratio covers the decay, as in the paper);
- lazy optimization outside weight decay also spares untouched rows the decay.
"""

from keras import ops

from nlp4keras import validation
from nlp4keras.optimizers.wrapper_base import (
    check_base_optimizer,
    check_learning_rate,
    compile_patterns,
    finish_wrapper,
    matches_any,
    read,
    value_before_update,
    variable_path,
)


def extend_with_weight_decay(BaseOptimizer, name=None):
    """Add decoupled weight decay (AdamW): `w -= lr * weight_decay_rate * w`.

    New arguments: `weight_decay_rate=0.01`, `exclude_from_weight_decay=[]`
    (regular expressions searched in `variable.path`, e.g. ["Norm", "bias"]).
    As in bert4keras the decay uses the weight before this step and is added to
    the inner update; for Adam this equals Keras' own `weight_decay=` (which
    decays before the update), but not for updates that read the weight
    (layer adaptation, AdaFactor's parameter scale), and the decay here uses
    the scheduled learning rate and matches paths instead of names.
    """
    who = "extend_with_weight_decay"
    base = check_base_optimizer(BaseOptimizer, who, "WeightDecay")

    class WeightDecay(base):
        def __init__(self, *args, weight_decay_rate=0.01, exclude_from_weight_decay=None, **kwargs):
            super().__init__(*args, **kwargs)
            check_learning_rate(self)
            self.weight_decay_rate = validation.real(
                weight_decay_rate, "weight_decay_rate", who, minimum=0
            )
            # Keras optimizers have a method called exclude_from_weight_decay: keep it.
            self._decay_exclusions = compile_patterns(
                exclude_from_weight_decay, "exclude_from_weight_decay", who
            )

        def update_step(self, gradient, variable, learning_rate):
            if self.weight_decay_rate == 0 or matches_any(variable, self._decay_exclusions):
                return super().update_step(gradient, variable, learning_rate)
            old = value_before_update(variable)
            super().update_step(gradient, variable, learning_rate)
            lr = ops.cast(learning_rate, variable.dtype)
            self.assign(variable, read(variable) - lr * self.weight_decay_rate * old)

        def get_config(self):
            config = super().get_config()
            config.update(
                weight_decay_rate=self.weight_decay_rate,
                exclude_from_weight_decay=list(self._decay_exclusions),
            )
            return config

    return finish_wrapper(WeightDecay, base, name, "WeightDecay")


def extend_with_layer_adaptation(BaseOptimizer, name=None):
    """Add LAMB's trust ratio (You et al. 2019, arXiv 1904.00962).

    The inner update `d = new - old` becomes `d * ||old|| / ||d / lr||` when both
    norms are > 0 (unchanged otherwise), so every variable moves by `lr * ||w||`.
    New argument: `exclude_from_layer_adaptation=[]` (regexes on `variable.path`).
    `lr` is clamped below at 1e-7 as in bert4keras.
    """
    who = "extend_with_layer_adaptation"
    base = check_base_optimizer(BaseOptimizer, who, "LayerAdaptation")

    class LayerAdaptation(base):
        def __init__(self, *args, exclude_from_layer_adaptation=None, **kwargs):
            super().__init__(*args, **kwargs)
            check_learning_rate(self)
            self.exclude_from_layer_adaptation = compile_patterns(
                exclude_from_layer_adaptation, "exclude_from_layer_adaptation", who
            )

        def update_step(self, gradient, variable, learning_rate):
            if matches_any(variable, self.exclude_from_layer_adaptation):
                return super().update_step(gradient, variable, learning_rate)
            old = value_before_update(variable)
            super().update_step(gradient, variable, learning_rate)
            delta = read(variable) - old
            lr = ops.maximum(ops.cast(learning_rate, variable.dtype), 1e-7)
            weight_norm = ops.sqrt(ops.sum(ops.square(old)))
            update_norm = ops.sqrt(ops.sum(ops.square(delta / lr)))
            usable = ops.logical_and(weight_norm > 0, update_norm > 0)
            ratio = ops.where(usable, weight_norm / ops.where(usable, update_norm, 1.0), 1.0)
            self.assign(variable, old + delta * ratio)

        def get_config(self):
            config = super().get_config()
            config.update(exclude_from_layer_adaptation=list(self.exclude_from_layer_adaptation))
            return config

    return finish_wrapper(LayerAdaptation, base, name, "LayerAdaptation")


def extend_with_lazy_optimization(BaseOptimizer, name=None):
    """Update only the rows whose gradient is non-zero (embeddings, mostly).

    New argument: `include_in_lazy_optimization=[]` (regexes on `variable.path`,
    e.g. ["Embedding-Token"]). For matching variables, the whole change of this
    step (momentum drift, weight decay made inside this wrapper) is dropped on
    rows whose gradient row (last axis) is all zero; the optimizer's own state
    (e.g. Adam's moments) still advances on every row, as in bert4keras.
    """
    who = "extend_with_lazy_optimization"
    base = check_base_optimizer(BaseOptimizer, who, "LazyOptimization")

    class LazyOptimization(base):
        def __init__(self, *args, include_in_lazy_optimization=None, **kwargs):
            super().__init__(*args, **kwargs)
            check_learning_rate(self)
            self.include_in_lazy_optimization = compile_patterns(
                include_in_lazy_optimization, "include_in_lazy_optimization", who
            )

        def update_step(self, gradient, variable, learning_rate):
            if not matches_any(variable, self.include_in_lazy_optimization):
                return super().update_step(gradient, variable, learning_rate)
            old = value_before_update(variable)
            super().update_step(gradient, variable, learning_rate)
            touched = ops.any(ops.not_equal(gradient, 0), axis=-1, keepdims=True)
            self.assign(variable, ops.where(touched, read(variable), old))

        def get_config(self):
            config = super().get_config()
            config.update(include_in_lazy_optimization=list(self.include_in_lazy_optimization))
            return config

    return finish_wrapper(LazyOptimization, base, name, "LazyOptimization")


def extend_with_parameter_wise_lr(BaseOptimizer, name=None):
    """Per-variable learning-rate multipliers.

    New argument: `paramwise_lr_schedule={}`, {substring: multiplier >= 0}: the
    update of every variable whose `path` contains the substring is multiplied
    by the multiplier (by the product when several substrings match). As in
    bert4keras the update (not the learning rate) is scaled; that is the same
    as scaling the learning rate for optimizers whose step is linear in it
    (SGD, momentum, Adam, RMSprop, Lion, AdaFactor). See
    `layerwise_lr_multipliers` for layer-wise decay on a Transformer.
    """
    who = "extend_with_parameter_wise_lr"
    base = check_base_optimizer(BaseOptimizer, who, "ParameterWiseLR")

    class ParameterWiseLR(base):
        def __init__(self, *args, paramwise_lr_schedule=None, **kwargs):
            super().__init__(*args, **kwargs)
            check_learning_rate(self)
            self.paramwise_lr_schedule = _checked_multipliers(paramwise_lr_schedule, who)

        def parameter_lr_multiplier(self, variable):
            """The product of the multipliers whose substring is in the variable's path."""
            path, multiplier = variable_path(variable), 1.0
            for substring, factor in self.paramwise_lr_schedule.items():
                if substring in path:
                    multiplier *= factor
            return multiplier

        def update_step(self, gradient, variable, learning_rate):
            multiplier = self.parameter_lr_multiplier(variable)
            if multiplier == 1.0:
                return super().update_step(gradient, variable, learning_rate)
            old = value_before_update(variable)
            super().update_step(gradient, variable, learning_rate)
            self.assign(variable, old + (read(variable) - old) * multiplier)

        def get_config(self):
            config = super().get_config()
            config.update(paramwise_lr_schedule=dict(self.paramwise_lr_schedule))
            return config

    return finish_wrapper(ParameterWiseLR, base, name, "ParameterWiseLR")


def _checked_multipliers(schedule, who):
    if schedule is None:
        return {}
    if not isinstance(schedule, dict):
        raise validation.InvalidType(
            f"{who}: `paramwise_lr_schedule` must be a dict {{substring: multiplier}}, got "
            f"{schedule!r} ({type(schedule).__name__})",
            "paramwise_lr_schedule",
        )
    checked = {}
    for substring, multiplier in schedule.items():
        validation.string(substring, "paramwise_lr_schedule key", who)
        name = f"paramwise_lr_schedule[{substring!r}]"
        checked[substring] = validation.real(multiplier, name, who, minimum=0)
    return checked
