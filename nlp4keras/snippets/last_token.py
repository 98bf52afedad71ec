"""The model behind `AutoRegressiveDecoder.last_token(model)`: each output at the
last position, without compiling the model again at every decoding step.

bert4keras wrapped the model in a Lambda taking `x[:, -1]`; under Keras 3 on
JAX that model is compiled once per input shape, so a decode of 64 steps
compiled (at least) 64 times. Here, on JAX, the sequence inputs (integer ids
with a free length axis) are right-padded with 0 to a bucket length and the
batch is padded (repeating its last row) to a bucket size; the model runs
through `predict_on_batch` (jitted per shape) with the last real position as
an extra input, gathered on the device. TensorFlow (whose tf.function relaxes
the shapes it traces) and PyTorch (eager) run the exact shapes, without
`Model.predict`'s per-call set-up.

Right padding only leaves the real positions unchanged when the model ignores
later positions: a causal LM, or a model that masks token id 0 (nlp4keras'
BERT-style models, UniLM included). So the first padded call of each kind
(longer sequences, more rows) is checked against the exact shapes; when the
outputs differ, that padding is switched off for the model, with a warning.
"""

import keras
import numpy as np

from nlp4keras import validation
from nlp4keras.messages import warn_user

# The smallest padded sequence length, and the finest step between lengths.
MIN_LENGTH_BUCKET = 16
# Below this many rows, batches are padded to a power of two.
MIN_ROWS_STEP = 16
# Padded and exact outputs agree when |a - b| <= RTOL * |b| + ATOL * max|b| (per output).
RTOL = 1e-3
ATOL = 1e-5


def bucket(size, smallest=1):
    """`size` rounded up to a bucket: `smallest` at least, then a step of a quarter
    of the power of two below `size` (and at least `smallest`): at most 25%
    padding and 4 buckets per doubling. smallest=16 gives 16, 32, 48, 64, 80, 96,
    112, 128, 160, 192, ..."""
    if size <= smallest:
        return smallest
    step = max(smallest, 1 << max(0, size.bit_length() - 3))
    return -(-size // step) * step


def bucket_rows(rows):
    """A batch size rounded up: to a power of two below MIN_ROWS_STEP (cheap rows),
    then as `bucket` (1, 2, 4, 8, 16, 20, 24, 28, 32, 40, ...)."""
    if rows <= MIN_ROWS_STEP:
        return 1 << max(0, (rows - 1).bit_length())
    return bucket(rows)


class LastToken:
    """`predict(inputs)` = `model.predict(inputs)[:, -1]` for each output of
    `model` (see the module). bucketing: 'auto' (pad on JAX only), True or False.
    `batch_size`, `verbose` and the other `Model.predict` arguments are
    accepted; `batch_size` splits a large batch, the others are ignored.

    `length_padding` / `batch_padding`: None until the first padded call checks
    them, then whether padding gives the exact outputs for this model."""

    def __init__(self, model, bucketing="auto"):
        who = "last_token"
        if not hasattr(model, "predict_on_batch"):
            validation.instance(model, "model", (), who, what="a Keras model")
        if bucketing == "auto":
            bucketing = keras.backend.backend() == "jax"
        self.model = model
        self.bucketing = validation.boolean(bucketing, "bucketing", who)
        self.length_padding = None
        self.batch_padding = None
        self._max_length = None  # padded lengths above it failed
        self._exact, self._at_position = _wrappers(model)
        self._sequence_inputs = _sequence_inputs(model)
        if self._at_position is None or not self._sequence_inputs:
            self.length_padding = False

    @property
    def inputs(self):
        return self.model.inputs

    def __call__(self, inputs):
        return self.predict(inputs)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None, **kwargs):
        arrays = self._arrays(x)
        rows = len(arrays[0])
        batch_size = validation.optional_integer(
            batch_size, "batch_size", "last_token(model).predict", minimum=1
        )
        if batch_size is None or rows <= batch_size:
            return self._predict(arrays)
        parts = [
            self._predict([a[start : start + batch_size] for a in arrays])
            for start in range(0, rows, batch_size)
        ]
        if isinstance(parts[0], list):
            return [np.concatenate(part) for part in zip(*parts)]
        return np.concatenate(parts)

    # ------------------------------------------------------------------ internals

    def _arrays(self, x):
        who = "last_token(model).predict"
        items = list(x) if isinstance(x, (list, tuple)) else [x]
        specs = getattr(self.model, "inputs", None) or [None] * len(items)
        if len(items) != len(specs):
            names = ", ".join(spec.name for spec in specs)
            raise ValueError(
                f"{who}: the model takes {len(specs)} inputs ({names}), got {len(items)}"
            )
        arrays = []
        for index, (item, spec) in enumerate(zip(items, specs)):
            array = np.asarray(item)
            if array.dtype.kind not in "biuf" or array.ndim == 0:
                validation.instance(
                    item, f"inputs[{index}]", (), who, what="a batch array of numbers"
                )
            if spec is not None and array.dtype.kind in "iu" and _kind(spec.dtype) in "iu":
                array = array.astype(spec.dtype, copy=False)
            arrays.append(array)
        if not arrays or len({len(a) for a in arrays}) > 1:
            raise ValueError(
                f"{who}: expected inputs with the same batch size, got {[a.shape for a in arrays]}"
            )
        return arrays

    def _predict(self, arrays):
        rows = len(arrays[0])
        length = self._length(arrays)
        if not self.bucketing or not rows:
            return self._run(arrays)
        padded_length = length
        if length and self.length_padding is not False:
            padded_length = bucket(length, MIN_LENGTH_BUCKET)
            if self._max_length is not None and padded_length > self._max_length:
                padded_length = length
        padded_rows = rows if self.batch_padding is False else bucket_rows(rows)
        check_length = padded_length != length and self.length_padding is None
        check_rows = padded_rows != rows and self.batch_padding is None
        if not (check_length or check_rows):
            return self._padded(arrays, length, padded_length, rows, padded_rows)
        # The first time a padding is used, it must give the exact outputs.
        exact = self._run(arrays)
        if check_length:
            self.length_padding = self._agrees(
                exact, arrays, (length, padded_length), (rows, rows), "the sequence axis"
            )
        if check_rows:
            self.batch_padding = self._agrees(
                exact, arrays, (length, length), (rows, padded_rows), "the batch"
            )
        return exact

    def _agrees(self, exact, arrays, lengths, rows, what):
        """Whether padding `what` gives the exact outputs (warns when not); None when
        the padded length is too long for the model (checked again on a shorter one)."""
        try:
            padded = self._padded(arrays, *lengths, *rows, checking=True)
        except _TooLong:
            return None
        problem = _difference(exact, padded)
        if problem is None:
            return True
        warn_user(
            f"last_token({self.model.name}): padding {what} changes the model's outputs at "
            f"the real positions ({problem}): the model does not ignore padded positions "
            "(it has neither a causal mask nor a mask of token id 0). It runs on exact "
            "shapes from now on: correct, but compiled once per shape."
        )
        return False

    def _padded(self, arrays, length, padded_length, rows, padded_rows, checking=False):
        """The outputs at the last real position of the real rows, the model run on
        padded arrays."""
        padded = []
        for index, array in enumerate(arrays):
            if padded_rows != rows:  # repeat the last row: rows do not interact
                widths = [(0, padded_rows - rows)] + [(0, 0)] * (array.ndim - 1)
                array = np.pad(array, widths, mode="edge")
            if padded_length != length and index in self._sequence_inputs:
                widths = [(0, 0), (0, padded_length - length)] + [(0, 0)] * (array.ndim - 2)
                array = np.pad(array, widths)
            padded.append(array)
        if padded_length == length:
            return _first_rows(self._call(self._exact, padded), rows)
        position = np.full(padded_rows, length - 1, dtype="int32")
        try:
            outputs = self._call(self._at_position, padded + [position])
        except Exception:
            # e.g. a position embedding shorter than the padded length: pad less
            self._max_length = padded_length - 1
            if checking:
                raise _TooLong from None
            return self._run(arrays)
        return _first_rows(outputs, rows)

    def _run(self, arrays):
        """The exact shapes: bert4keras' `x[:, -1]` of every output."""
        return self._call(self._exact, arrays)

    def _call(self, wrapper, arrays):
        if wrapper is None:  # a model without symbolic outputs: slice on the host
            outputs = self.model.predict_on_batch(arrays)
            return _map(lambda output: np.asarray(output)[:, -1], outputs)
        return _map(np.asarray, wrapper.predict_on_batch(arrays))

    def _length(self, arrays):
        """The common length of the sequence inputs, or None (nothing to pad)."""
        lengths = {arrays[i].shape[1] for i in self._sequence_inputs if arrays[i].ndim >= 2}
        return lengths.pop() if len(lengths) == 1 else None


class _TooLong(Exception):
    """The model refused a padded length."""


class _Last(keras.layers.Layer):
    """x[:, -1] (each output at the last position)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, x):
        return x[:, -1]

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, shape):
        return (shape[0],) + tuple(shape[2:])


class _AtPosition(keras.layers.Layer):
    """x[:, position[0]]: the outputs at one position, read on the device (all
    rows share their length)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, x, position):
        return keras.ops.take(x, position[0], axis=1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, x_shape, position_shape):
        return (x_shape[0],) + tuple(x_shape[2:])


def _wrappers(model):
    """(the model of `x[:, -1]` of each output, the model of `x[:, position]` given
    the position as a last input) over `model`'s layers; None for a model without
    symbolic inputs and outputs, the second also None when an output has no
    free sequence axis."""
    try:
        inputs, outputs = list(model.inputs), model.outputs
    except (AttributeError, ValueError):
        return None, None
    if not inputs or not outputs:
        return None, None
    single = not isinstance(outputs, (list, tuple))
    outputs = [outputs] if single else list(outputs)
    if any(len(output.shape) < 2 for output in outputs):
        return None, None
    last = [_Last(name=f"last_token_{i}")(output) for i, output in enumerate(outputs)]
    exact = keras.Model(inputs, last[0] if single else last, name=f"{model.name}_last_token")
    if any(output.shape[1] is not None for output in outputs):
        return exact, None
    position = keras.Input(shape=(), dtype="int32", name="last_token_position")
    taken = [_AtPosition(name=f"at_position_{i}")(o, position) for i, o in enumerate(outputs)]
    at_position = keras.Model(
        inputs + [position], taken[0] if single else taken, name=f"{model.name}_at_position"
    )
    return exact, at_position


def _sequence_inputs(model):
    """Indices of the inputs that get padded: integer ids with a free second axis
    (token ids, segment ids; not images, labels or encoder outputs)."""
    indices = set()
    for index, spec in enumerate(getattr(model, "inputs", None) or []):
        shape = tuple(spec.shape)
        if len(shape) >= 2 and shape[1] is None and _kind(spec.dtype) in "iu":
            indices.add(index)
    return frozenset(indices)


def _kind(dtype):
    """numpy's kind letter of a Keras dtype ('' for one numpy lacks, e.g. bfloat16)."""
    try:
        return np.dtype(dtype).kind
    except TypeError:
        return ""


def _map(function, outputs):
    if isinstance(outputs, (list, tuple)):
        return [function(output) for output in outputs]
    return function(outputs)


def _first_rows(outputs, rows):
    return _map(lambda output: output[:rows], outputs)


def _difference(exact, padded):
    """None when the two results agree, else a description of the largest gap."""
    exact = exact if isinstance(exact, list) else [exact]
    padded = padded if isinstance(padded, list) else [padded]
    for a, b in zip(exact, padded):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        if a.shape != b.shape:
            return f"shape {b.shape} instead of {a.shape}"
        if not (np.isfinite(a) == np.isfinite(b)).all():
            return "they differ in which values are finite"
        finite = np.isfinite(a)
        a, b = a[finite], b[finite]
        gap = np.abs(a - b)
        allowed = RTOL * np.abs(a) + ATOL * np.abs(a).max(initial=0.0)
        if (gap > allowed).any():
            return f"largest difference {gap.max():.3g}"
    return None
