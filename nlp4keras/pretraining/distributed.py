"""Distributed training through Keras' own engine, `keras.distribution` (JAX):

    keras.distribution.set_distribution(data_parallel())  # every device, batch split
    keras.distribution.set_distribution(model_parallel(model_axis_size=2))  # + sharded kernels
    model = build_transformer_model(...)  # build *after* setting the distribution
    check_sharding(model)  # the kernels the layout shards, or a clear error

`model_parallel` shards Megatron style over the mesh's "model" axis: the
token embeddings on the hidden axis, the q/k/v and feed-forward input
kernels (and their biases) by columns, the attention and feed-forward output
kernels by rows; every other weight is replicated. Batches are split over
the "batch" axis. Several processes (hosts) join with
`initialize_multi_process` before anything else runs; a `PretrainingDataset`
built after `set_distribution` then yields only this process' rows of every
global batch (see README.md, "Distributed training").
"""

import keras

from nlp4keras import validation

BATCH_AXIS = "batch"
MODEL_AXIS = "model"

# Weight paths of our layers, e.g. `Transformer-0-FeedForward/i0_kernel`;
# prefixes cover T5's `Encoder-` / `Decoder-` and nested models.
_PREFIX = r"(?:.*[-/])?"
_ATTENTION = _PREFIX + r"Transformer(?:-\d+)?-MultiHead(?:Self|Cross)Attention"
_FEED_FORWARD = _PREFIX + r"Transformer(?:-\d+)?-FeedForward"
_COLUMNS, _ROWS, _VECTOR = "columns", "rows", "vector"
_RULES = {
    _PREFIX + "Embedding-Token/embeddings": _COLUMNS,  # (vocab, hidden): hidden sharded
    _ATTENTION + "/[qkv]_kernel": _COLUMNS,  # each device computes some heads
    _ATTENTION + "/[qkv]_bias": _VECTOR,
    _ATTENTION + "/o_kernel": _ROWS,  # partial sums of the heads, all-reduced
    _FEED_FORWARD + r"/i\d+_kernel": _COLUMNS,  # i0, and i1 for gated units
    _FEED_FORWARD + r"/i\d+_bias": _VECTOR,
    _FEED_FORWARD + "/o_kernel": _ROWS,
}


def _require_jax(who):
    backend = keras.backend.backend()
    if backend != "jax":
        raise RuntimeError(
            f"{who}: keras.distribution shards models on the JAX backend; this process runs "
            f"Keras on '{backend}'. Set KERAS_BACKEND=jax, or on TensorFlow use tf.distribute "
            "(e.g. MirroredStrategy: build and compile in strategy.scope()), on torch "
            "torch.distributed (DDP); see README.md, 'Distributed training'"
        )


def _devices(devices, who):
    """`devices` (names like 'gpu:0', or None for every device) as a list."""
    if devices is None:
        return keras.distribution.list_devices()
    if isinstance(devices, str) or not hasattr(devices, "__len__") or not len(devices):
        validation.instance(devices, "devices", (), who, what="a non-empty list of device names "
                            "(keras.distribution.list_devices()) or None")  # fmt: skip
    return list(devices)


def layout_map(mesh, model_axis=MODEL_AXIS):
    """A `keras.distribution.LayoutMap` over `mesh` (a `DeviceMesh`) sharding
    our layers' kernels over the mesh axis `model_axis` (see the module's
    docstring); weights it does not name stay replicated."""
    who = "layout_map"
    _require_jax(who)
    validation.instance(mesh, "mesh", keras.distribution.DeviceMesh, who)
    validation.one_of(model_axis, "model_axis", list(mesh.axis_names), who)
    layouts = keras.distribution.LayoutMap(mesh)
    axes = {
        _COLUMNS: (None, model_axis),
        _ROWS: (model_axis, None),
        _VECTOR: (model_axis,),
    }
    for pattern, kind in _RULES.items():
        layouts[pattern] = axes[kind]
    return layouts


def data_parallel(devices=None):
    """`keras.distribution.DataParallel` over `devices` (default: all, across
    processes): weights replicated, each batch split over the devices."""
    who = "data_parallel"
    _require_jax(who)
    return keras.distribution.DataParallel(devices=_devices(devices, who))


def model_parallel(devices=None, model_axis_size=2):
    """`keras.distribution.ModelParallel` on a (batch, model) mesh of
    `devices` (default: all) with `model_axis_size` devices per model
    replica, sharded by `layout_map`; batches are split over the replicas."""
    who = "model_parallel"
    _require_jax(who)
    devices = _devices(devices, who)
    size = validation.integer(model_axis_size, "model_axis_size", who, minimum=1)
    if len(devices) % size:
        raise ValueError(
            f"{who}: `model_axis_size` ({size}) must divide the number of devices "
            f"({len(devices)}): the mesh is (replicas, model_axis_size)"
        )
    mesh = keras.distribution.DeviceMesh(
        (len(devices) // size, size), (BATCH_AXIS, MODEL_AXIS), devices
    )
    return keras.distribution.ModelParallel(layout_map=layout_map(mesh), batch_dim_name=BATCH_AXIS)


def check_sharding(model, distribution=None):
    """{weight path: layout axes} of the weights of `model` that
    `distribution` (default: the current one) shards. Raises a ValueError if
    it shards none (the layout names no layer of the model), or if a sharded
    dimension or an attention layer's head count is not a multiple of its
    mesh axis' size. Call it on the model built under the distribution."""
    who = "check_sharding"
    _require_jax(who)
    validation.instance(model, "model", keras.Model, who)
    distribution = distribution or keras.distribution.distribution()
    kinds = (keras.distribution.ModelParallel, keras.distribution.DataParallel)
    validation.instance(distribution, "distribution", kinds, who,
                        what="a ModelParallel or DataParallel (or one set)")  # fmt: skip
    mesh = distribution.device_mesh
    sizes = dict(zip(mesh.axis_names, mesh.shape))
    sharded = {}
    for weight in model.weights:
        layout = distribution.get_variable_layout(weight)
        axes = tuple(layout.axes) if layout is not None else ()
        if not any(axes):
            continue
        for dim, axis in zip(weight.shape, axes):
            if axis is not None and dim % sizes[axis]:
                raise ValueError(
                    f"{who}: {weight.path} has shape {tuple(weight.shape)}; its layout {axes} "
                    f"splits a dimension of {dim} over the {sizes[axis]} devices of mesh "
                    f"axis '{axis}'"
                )
        sharded[weight.path] = axes
    if not sharded:
        raise ValueError(
            f"{who}: the distribution shards no weight of model '{model.name}' (its layout "
            "matches none of its weight paths, e.g. Transformer-0-FeedForward/i0_kernel)"
        )
    _check_heads(model, distribution, sizes, who)
    return sharded


def _check_heads(model, distribution, sizes, who):
    """Attention heads must not straddle devices when q/k/v are sharded by columns."""
    for layer in _layers(model):
        kernel = getattr(layer, "q_kernel", None)
        if kernel is None or not hasattr(layer, "heads"):
            continue
        axes = distribution.get_variable_layout(kernel).axes
        split = sizes.get(axes[-1], 1) if axes and axes[-1] else 1
        for name in ("heads", "kv_heads"):
            heads = getattr(layer, name, layer.heads)
            if heads % split:
                raise ValueError(
                    f"{who}: {layer.name} has {heads} {name.replace('_', ' ')}, not a "
                    f"multiple of the {split} devices its q/k/v kernels are split over; "
                    "choose a model_axis_size that divides the head count"
                )


def _layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _layers(layer)


def initialize_multi_process(coordinator=None, num_processes=None, process_id=None):
    """Joins this process to a multi-process (multi-host) job, before any
    other JAX work: `coordinator` is process 0's "host:port", which every
    process names. With all three None, Keras reads
    KERAS_DISTRIBUTION_JOB_ADDRESSES, _NUM_PROCESSES and _PROCESS_ID, and JAX
    detects Cloud TPU / SLURM / Open MPI jobs by itself. Wraps
    `keras.distribution.initialize` (`jax.distributed.initialize`, then a
    random seed shared by every process)."""
    who = "initialize_multi_process"
    _require_jax(who)
    if coordinator is not None:
        coordinator = validation.string(coordinator, "coordinator", who)
        host, _, port = coordinator.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"{who}: `coordinator` must be 'host:port', got {coordinator!r}")
    if num_processes is not None:
        num_processes = validation.integer(num_processes, "num_processes", who, minimum=1)
    if process_id is not None:
        below = num_processes
        process_id = validation.integer(process_id, "process_id", who, minimum=0, below=below)
    keras.distribution.initialize(coordinator, num_processes, process_id)
