"""bert4keras' `Loss` layer: a loss computed inside the model from its inputs.

A subclass implements `compute_loss(inputs, mask=None)`. The layer adds that
value with `add_loss` and passes some of its inputs through, so a model that
ends in it trains with `model.compile(optimizer)` and `model.fit(x)`, no
`loss=` and no `y`.

Keras 3 gathers `add_loss` values on every backend by itself: on JAX the
trainer calls `stateless_call(..., return_losses=True)`, which collects the
values added inside the jitted step; on torch (and TensorFlow) they are read
from `model.losses` after the forward pass. Prediction runs the layer too, but
on JAX the value is dropped (nothing collects it) and on torch it is kept
until the next call, so `predict` returns the passed-through outputs only.
"""

import numbers

import keras
from keras import ops

from nlp4keras import validation
from nlp4keras.layers.base import Layer, serializable


def _check_output_axis(output_axis, who):
    """None, an int, or a non-empty list of ints; anything else is an error."""
    if output_axis is None:
        return None
    if not isinstance(output_axis, (list, tuple)):
        return _axis(output_axis, "output_axis", who)
    if not output_axis:
        raise validation.InvalidValue(
            f"{who}: `output_axis` must name at least one input (or be None for all), got []",
            "output_axis",
        )
    return [_axis(axis, f"output_axis[{n}]", who) for n, axis in enumerate(output_axis)]


def _axis(value, name, who):
    if not validation.is_integer(value) or not isinstance(value, numbers.Integral):
        raise validation.InvalidType(
            f"{who}: `{name}` must be None, an int or a list of ints, got {value!r} "
            f"({type(value).__name__})",
            name,
        )
    return int(value)


def _float_inputs(inputs):
    """Integer inputs (token ids, segment ids) cast to floatx, as bert4keras' were
    (Keras 2 inputs are float32): `loss * segment_ids` must work on TensorFlow,
    which does not promote int32 to float32 as JAX and torch do."""

    def cast(x):
        dtype = keras.backend.standardize_dtype(getattr(x, "dtype", "float32"))
        return ops.cast(x, keras.config.floatx()) if "int" in dtype else x

    if isinstance(inputs, (list, tuple)):
        return [cast(x) for x in inputs]
    return cast(inputs)


@serializable
class Loss(Layer):
    """Base class: `compute_loss` gives a scalar; `call` returns inputs[output_axis].
    `compute_loss` sees integer inputs as floatx (as in bert4keras, whose inputs
    were float32): cast them back with `ops.cast` to index with them.

    output_axis: None (return every input unchanged), an int (return that
        input) or a list of ints (return those inputs, as a list).
    """

    def __init__(self, output_axis=None, **kwargs):
        super().__init__(**kwargs)
        self.output_axis = _check_output_axis(output_axis, type(self).__name__)

    def compute_loss(self, inputs, mask=None):
        raise NotImplementedError(
            f"{type(self).__name__} must implement compute_loss(inputs, mask=None)"
        )

    def call(self, inputs, mask=None):
        loss = ops.convert_to_tensor(self.compute_loss(_float_inputs(inputs), mask))
        if len(loss.shape) != 0:
            raise ValueError(
                f"{type(self).__name__}.compute_loss must return a scalar, got shape "
                f"{tuple(loss.shape)}; reduce it (e.g. with ops.mean)"
            )
        self.add_loss(ops.cast(loss, keras.config.floatx()))
        return self._select(inputs)

    def _select(self, values):
        """The entries of `values` named by output_axis (masks, shapes or tensors)."""
        if self.output_axis is None:
            return values
        if not isinstance(values, (list, tuple)):
            if self.output_axis in (0, -1, [0], [-1]):
                return [values] if isinstance(self.output_axis, list) else values
            raise ValueError(
                f"{self.name}: output_axis={self.output_axis!r} needs a list of inputs, "
                "got a single one"
            )
        try:
            if isinstance(self.output_axis, list):
                return [values[axis] for axis in self.output_axis]
            return values[self.output_axis]
        except IndexError:
            raise ValueError(
                f"{self.name}: output_axis={self.output_axis!r} is out of range for "
                f"{len(values)} inputs"
            ) from None

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            return None
        return self._select(mask)

    def compute_output_spec(self, inputs, mask=None):
        # The outputs are inputs passed through, so their specs are known
        # without running compute_loss on symbolic tensors.
        return keras.tree.map_structure(
            lambda x: keras.KerasTensor(x.shape, dtype=x.dtype), self._select(inputs)
        )

    def get_config(self):
        config = super().get_config()
        config.update(output_axis=self.output_axis)
        return config
