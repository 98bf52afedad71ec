"""Data-parallel training on the torch backend with torch's own
DistributedDataParallel (Keras' torch backend has no distribution API; a
Keras 3 model there is a torch.nn.Module). One process per device, started
by `torchrun` (or any launcher that sets up `torch.distributed`):

    torch.distributed.init_process_group("nccl")  # "gloo" on CPU
    model = pretraining_model("mlm", "bert_config.json")  # compiled: loss and optimizer
    replicated = ddp_model(model)  # device_ids=[local_rank] on GPUs
    for inputs, labels in my_rows_of_each_batch:
        loss = ddp_train_step(replicated, inputs, labels)

`ddp_train_step` is Keras' own torch train step (forward, the compiled
loss, backward, `optimizer.apply`) with the forward pass through DDP, whose
backward pass averages the gradients over the processes; every process then
makes the same update with the model's own optimizer (schedules, weight
decay, gradient accumulation included), so the replicas stay equal.

Each process' loss is the mean over its own rows (for `masked_crossentropy`:
over its own labelled tokens), and DDP averages the gradients of these
means; that equals one process training on the whole batch when every
process holds as many labelled tokens (whole batches of equal rows do).
"""

import keras

from nlp4keras import validation


def _require_torch(who):
    backend = keras.backend.backend()
    if backend != "torch":
        raise RuntimeError(
            f"{who}: DistributedDataParallel needs Keras on torch; this process runs '{backend}' "
            "(set KERAS_BACKEND=torch; on JAX see nlp4keras.pretraining.distributed, on "
            "TensorFlow tf.distribute.MirroredStrategy)"
        )
    import torch.distributed

    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        raise RuntimeError(
            f"{who}: torch.distributed is not initialised; call "
            "torch.distributed.init_process_group(...) first (torchrun sets its environment)"
        )


def ddp_model(model, **ddp_options):
    """`model` (a compiled, built Keras model) wrapped in
    torch.nn.parallel.DistributedDataParallel. DDP copies process 0's
    weights to every process here. ddp_options go to DDP (device_ids=[local
    rank] on GPUs, find_unused_parameters=True for models with weights that
    some steps do not use, ...)."""
    who = "ddp_model"
    _require_torch(who)
    validation.instance(model, "model", keras.Model, who)
    if getattr(model, "optimizer", None) is None or not model.compiled:
        raise ValueError(f"{who}: compile the model first (or build it with pretraining_model)")
    if not model.built or not model.trainable_weights:
        raise ValueError(f"{who}: the model has no trainable weights yet; build it first")
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, **ddp_options)


def ddp_train_step(replicated, inputs, labels, sample_weight=None):
    """One training step of this process' rows (`inputs`, `labels`) through
    `replicated` (from `ddp_model`); returns the loss averaged over the
    processes (a float, the same on every process)."""
    who = "ddp_train_step"
    _require_torch(who)
    import torch
    from torch.nn.parallel import DistributedDataParallel

    validation.instance(replicated, "replicated", DistributedDataParallel, who,
                        what="a DistributedDataParallel model (from ddp_model)")  # fmt: skip
    model = replicated.module
    inputs, labels = _tensors(inputs), _tensors(labels)
    sample_weight = None if sample_weight is None else _tensors(sample_weight)
    model.zero_grad()
    predictions = replicated(inputs, training=True)  # DDP hooks the backward pass here
    loss = model.compute_loss(x=inputs, y=labels, y_pred=predictions,
                              sample_weight=sample_weight, training=True)  # fmt: skip
    model.optimizer.scale_loss(loss).backward()  # gradients all-reduced (averaged) by DDP
    weights = model.trainable_weights
    with torch.no_grad():
        model.optimizer.apply([w.value.grad for w in weights], weights)
        mean = loss.detach().clone()
        torch.distributed.all_reduce(mean)  # sum over the processes
    return float(mean) / torch.distributed.get_world_size()


def _tensors(data):
    return keras.tree.map_structure(keras.ops.convert_to_tensor, data)
