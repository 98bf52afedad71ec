"""Recompute (gradient checkpointing): trade compute for activation memory.

`recompute_grad` decorates a layer's `call` (as in bert4keras): in training,
the activations inside the call are not kept for the backward pass but
recomputed from the call's inputs, on every backend:

- JAX: `jax.checkpoint` over a pure function of the layer's variable values
  (Keras calls layers statelessly inside the train step, so the values are
  passed in explicitly, and state updates such as dropout seeds come out as
  outputs and are assigned afterwards).
- PyTorch: `torch.utils.checkpoint.checkpoint(..., use_reentrant=False)`.
- TensorFlow: `tf.recompute_grad` over the call's floating-point tensors.

Dropout draws the same mask when recomputed: JAX replays the same seed values;
on PyTorch and TensorFlow the layer's non-trainable state (SeedGenerator
states) is rewound for the recomputation, and PyTorch's checkpoint restores
the global RNG that unseeded Keras dropout uses.

Inference (training false) calls the layer directly: nothing is paid.

Measured caveat (jax 0.10, CPU): the recomputation is in the JAX program and
JAX keeps only each block's inputs as residuals, but XLA:CPU compiles the
step to the same memory use as without it (the optimization barriers that
keep XLA from merging the recomputation back into the forward pass do not
survive its CPU pipeline). On CPU, recompute saves memory with PyTorch, not
with JAX; XLA:GPU/TPU honour `jax.checkpoint` (not measured here).
Unlike bert4keras, the decorator is always active; the `RECOMPUTE` environment
variable only sets the default of the Transformer builder's `recompute`.

`recompute_graph` cuts a piece of a functional Keras graph (a Transformer
block) into a `RecomputedBlock`, a nested functional model whose call is
recomputed; `RecomputedModel` is the outer model, whose `get_layer` also
finds the layers inside its blocks.
"""

import contextlib
import functools
import os
import threading

import keras

# Keras 3 internals with no public alias: tensor masks and the call context.
from keras.src.backend.common import global_state
from keras.src.backend.common.masking import get_keras_mask, set_keras_mask

# Defined here rather than imported from nlp4keras.backend, which re-exports
# this module at its end (importing it back would be circular).
_serializable = keras.saving.register_keras_serializable(package="nlp4keras")

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def recompute_from_env():
    """The builder's default `recompute`: the RECOMPUTE environment variable."""
    value = os.environ.get("RECOMPUTE", "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"RECOMPUTE={os.environ['RECOMPUTE']!r} is not a boolean; use 1 or 0")


_suspended = threading.local()


@contextlib.contextmanager
def recompute_suspended():
    """Within it, decorated calls run plainly, storing their activations:
    for steps that need second derivatives, which `tf.recompute_grad` lacks
    (the TensorFlow gradient penalty)."""
    previous = getattr(_suspended, "active", False)
    _suspended.active = True
    try:
        yield
    finally:
        _suspended.active = previous


def recompute_grad(call):
    """Decorate a layer's `call` so that, in training, its activations are
    recomputed in the backward pass instead of stored."""

    @functools.wraps(call)
    def wrapper(self, *args, **kwargs):
        suspended = getattr(_suspended, "active", False)
        if suspended or not _in_training(kwargs) or _creates_weights(self):
            return call(self, *args, **kwargs)
        backend = keras.backend.backend()
        if backend not in _BACKENDS:
            raise NotImplementedError(f"recompute_grad does not support the {backend} backend")
        return _BACKENDS[backend](call, self, args, kwargs)

    return wrapper


def _in_training(kwargs):
    training = kwargs.get("training")
    if training is None:
        # A call without a `training` argument: ask Keras' call context.
        context = global_state.get_global_attribute("current_call_ctx")
        training = getattr(context, "training", None)
    try:
        return bool(training)
    except TypeError:  # a symbolic tensor, known only when run: recompute
        return True


def _creates_weights(layer):
    """An unbuilt (sub)layer would create its weights inside the recomputed
    function: such a first call runs plainly. (`_flatten_layers`: Keras'
    walk over a layer and its nested layers.)"""
    return any(not sublayer.built for sublayer in layer._flatten_layers())


def _attach_masks(outputs, masks):
    """Put the Keras masks computed inside the recomputed call on its outputs."""
    for tensor, mask in zip(keras.tree.flatten(outputs), keras.tree.flatten(masks)):
        if mask is not None:
            set_keras_mask(tensor, mask)
    return outputs


def _output_masks(outputs):
    return [get_keras_mask(t) for t in keras.tree.flatten(outputs)]


# ------------------------------------------------------------------- JAX
def _jax_recompute(call, layer, args, kwargs):
    import jax

    variables = layer.variables
    values = [v.value for v in variables]
    leaves, treedef = jax.tree_util.tree_flatten((args, kwargs))
    dynamic = [i for i, leaf in enumerate(leaves) if _is_jax_array(leaf)]
    arrays = [leaves[i] for i in dynamic]
    changed = []  # indices of the variables the call assigns (e.g. seeds)

    def pure(values, arrays, array_masks):
        _attach_masks(arrays, array_masks)  # fresh tracers: masks come along
        full = list(leaves)
        for i, array in zip(dynamic, arrays):
            full[i] = array
        call_args, call_kwargs = jax.tree_util.tree_unflatten(treedef, full)
        with keras.StatelessScope(state_mapping=list(zip(variables, values))) as scope:
            given = [scope.get_current_value(v) for v in variables]
            outputs = call(layer, *call_args, **call_kwargs)
        current = [scope.get_current_value(v) for v in variables]
        changed[:] = [i for i, (new, old) in enumerate(zip(current, given)) if new is not old]
        return outputs, _output_masks(outputs), [current[i] for i in changed]

    outputs, masks, updates = jax.checkpoint(pure)(values, arrays, _output_masks(arrays))
    for i, value in zip(changed, updates):
        variables[i].assign(value)
    return _attach_masks(outputs, masks)


def _is_jax_array(x):
    import jax
    import numpy as np

    return isinstance(x, (jax.Array, np.ndarray)) or isinstance(x, jax.core.Tracer)


# ---------------------------------------------------- PyTorch, TensorFlow
def _replaying_state(call, layer):
    """`call` bound to `layer`; every run after the first (the recomputations,
    outside the forward's Keras call context) runs in that call context (so
    `training` is the same), starts from the non-trainable state (seed
    generators) the first run saw, and leaves the state as it found it."""
    state = layer.non_trainable_variables
    start = [keras.ops.copy(v.value) for v in state]
    context = global_state.get_global_attribute("current_call_ctx")
    runs = []

    def run(*args, **kwargs):
        if not runs:
            runs.append(1)
            return call(layer, *args, **kwargs)
        now = [keras.ops.copy(v.value) for v in state]
        outer_context = global_state.get_global_attribute("current_call_ctx")
        global_state.set_global_attribute("current_call_ctx", context)
        for variable, value in zip(state, start):
            variable.assign(value)
        try:
            return call(layer, *args, **kwargs)
        finally:
            for variable, value in zip(state, now):
                variable.assign(value)
            global_state.set_global_attribute("current_call_ctx", outer_context)

    return run


def _torch_recompute(call, layer, args, kwargs):
    import torch
    from torch.utils.checkpoint import checkpoint

    if not torch.is_grad_enabled():
        return call(layer, *args, **kwargs)
    run = _replaying_state(call, layer)
    masks = []

    def run_and_keep_masks(*call_args, **call_kwargs):
        outputs = run(*call_args, **call_kwargs)
        masks[:] = _output_masks(outputs)
        return outputs

    # preserve_rng_state (the default) replays the global RNG that Keras'
    # unseeded torch dropout draws from.
    outputs = checkpoint(run_and_keep_masks, *args, use_reentrant=False, **kwargs)
    return _attach_masks(outputs, masks)


def _tensorflow_recompute(call, layer, args, kwargs):
    import tensorflow as tf

    run = _replaying_state(call, layer)
    leaves = keras.tree.flatten((args, kwargs))
    # Only floating tensors go through tf.recompute_grad, which differentiates
    # every argument (bool masks and int ids would fail); the rest are closed over.
    dynamic = [i for i, leaf in enumerate(leaves) if tf.is_tensor(leaf) and leaf.dtype.is_floating]
    tensor_masks = _output_masks([leaves[i] for i in dynamic])
    masks = []

    @tf.recompute_grad
    def recomputed(*tensors):
        _attach_masks(tensors, tensor_masks)
        full = list(leaves)
        for i, tensor in zip(dynamic, tensors):
            full[i] = tensor
        call_args, call_kwargs = keras.tree.pack_sequence_as((args, kwargs), full)
        outputs = run(*call_args, **call_kwargs)
        masks[:] = _output_masks(outputs)
        return outputs

    outputs = recomputed(*[leaves[i] for i in dynamic])
    return _attach_masks(outputs, masks)


_BACKENDS = {
    "jax": _jax_recompute,
    "torch": _torch_recompute,
    "tensorflow": _tensorflow_recompute,
}


# ------------------------------------------------ graph pieces as blocks
@_serializable
class RecomputedBlock(keras.Model):
    """A functional piece of a model (e.g. one Transformer block) whose
    activations are recomputed in the backward pass. Its layers keep their
    names: `block.get_layer('Transformer-0-FeedForward')`."""

    @recompute_grad
    def call(self, inputs, training=None, mask=None):
        return super().call(inputs, training=training, mask=mask)

    def compute_mask(self, inputs, mask=None):
        """Symbolic (build-time) masks: the first output keeps the mask of the
        first input, as a Transformer block does; at run time the masks its
        layers compute are used."""
        return mask[0] if isinstance(mask, (list, tuple)) else mask


@_serializable
class RecomputedModel(keras.Model):
    """A functional model holding RecomputedBlocks; `get_layer(name)` also
    finds the layers inside the blocks."""

    def get_layer(self, name=None, index=None):
        if name is None or index is not None:
            return super().get_layer(name=name, index=index)
        for layer in self.layers:
            if layer.name == name:
                return layer
        for block in self.layers:
            if isinstance(block, RecomputedBlock):
                for layer in block.layers:
                    if layer.name == name:
                        return layer
        return super().get_layer(name=name)  # raises, listing the layers


def recompute_graph(inputs, outputs, name=None, return_block=False):
    """Replace the functional graph from `inputs` to `outputs` (lists of Keras
    tensors) by one RecomputedBlock called on `inputs` plus whatever other
    tensors that graph reads (masks, biases, conditions: tensors that do not
    depend on `inputs`). Returns the block's outputs, as a list; with
    return_block, also the block and those other tensors (to call the same
    block again: `block([x] + externals)`, as a shared block is)."""
    inputs, outputs = list(inputs), list(outputs)
    externals = _external_tensors(inputs, outputs)
    for tensor in externals:
        if isinstance(tensor._keras_history.operation, keras.layers.InputLayer):
            raise ValueError(
                f"recompute: block {name!r} reads the model input {tensor.name!r} directly; "
                "pass it through a layer first (Keras cannot save a block sharing an input)"
            )
    block_inputs = inputs + externals
    block = RecomputedBlock(block_inputs, outputs if len(outputs) > 1 else outputs[0], name=name)
    results = block(block_inputs)
    results = list(results) if len(outputs) > 1 else [results]
    return (results, block, externals) if return_block else results


def _node(tensor):
    operation, node_index, _ = tensor._keras_history
    return operation._inbound_nodes[node_index]


def _external_tensors(inputs, outputs):
    """Tensors the graph from `inputs` to `outputs` reads but does not compute."""
    starts = {id(t) for t in inputs}
    depends = {}

    def depends_on_inputs(tensor):
        key = id(tensor)
        if key in starts:
            return True
        if key not in depends:
            node = _node(tensor)
            depends[key] = any(depends_on_inputs(t) for t in node.input_tensors)
        return depends[key]

    externals, seen = [], set(starts)
    pending = list(outputs)
    while pending:
        tensor = pending.pop()
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        if depends_on_inputs(tensor):
            pending.extend(_node(tensor).input_tensors)
        else:
            externals.append(tensor)
    return externals


def check_layers_not_shared(model):
    """Raise if a layer sits both inside a RecomputedBlock and elsewhere in
    `model` (another block or the outer graph): saving would split it in two."""
    owners = {}
    places = [(model.name, model.layers)] + [
        (layer.name, layer.layers) for layer in model.layers if isinstance(layer, RecomputedBlock)
    ]
    for place, layers in places:
        for layer in layers:
            if isinstance(layer, (keras.layers.InputLayer, RecomputedBlock)):
                continue
            previous = owners.setdefault(id(layer), place)
            if previous != place:
                raise ValueError(
                    f"recompute: layer {layer.name!r} is used both in {previous!r} and in "
                    f"{place!r}; a recomputed block must own its layers (compute tensors "
                    "shared by several blocks outside them, or build without recompute)"
                )


__all__ = [
    "RecomputedBlock",
    "RecomputedModel",
    "check_layers_not_shared",
    "recompute_from_env",
    "recompute_graph",
    "recompute_grad",
]
