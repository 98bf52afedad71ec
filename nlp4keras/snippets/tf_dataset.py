"""`DataGenerator.to_dataset`: bert4keras' tf.data pipeline over single
samples, batched (and padded) by TensorFlow. TensorFlow backend only."""

import keras

from nlp4keras import validation


def to_dataset(generator, types, shapes, names=None, padded_batch=False):
    """An endless `tf.data.Dataset` of batches of `generator.batch_size`
    samples from a DataGenerator whose `__iter__(random)` yields one sample
    at a time (see `DataGenerator.to_dataset`)."""
    who = f"{type(generator).__name__}.to_dataset"
    padded_batch = validation.boolean(padded_batch, "padded_batch", who)
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise RuntimeError(
            f"{who} builds a tf.data.Dataset, which needs the TensorFlow backend "
            f"(KERAS_BACKEND=tensorflow); on {backend}, make __iter__ yield padded batches "
            "and train with model.fit(gen.forfit(), steps_per_epoch=len(gen))"
        )
    import tensorflow as tf

    name = _namer(names, who)
    types, shapes = name(types, "types"), name(shapes, "shapes")
    specs = _specs(tf, types, shapes, who)

    def samples():
        for sample in generator._forever(True):
            yield _tuples_like(name(sample, "a sample"), types, who)

    if not padded_batch:
        dataset = tf.data.Dataset.from_generator(samples, output_signature=specs)
        return dataset.batch(generator.batch_size)
    # Samples of any shape, padded per batch to `shapes` (None: the longest).
    unknown = tf.nest.map_structure(lambda spec: tf.TensorSpec(None, spec.dtype), specs)
    dataset = tf.data.Dataset.from_generator(samples, output_signature=unknown)
    padded_shapes = tf.nest.map_structure(lambda spec: spec.shape, specs)
    return dataset.padded_batch(generator.batch_size, padded_shapes)


def _namer(names, who):
    """bert4keras' naming of a sample (and of `types` and `shapes`): None
    keeps it; a str names the whole sample, a tuple of str its parts, a
    tuple of tuples of str the parts of each part (inputs, targets)."""
    if names is None:
        return lambda value, what: value
    if isinstance(names, str):
        return lambda value, what: {names: value}
    what = "a str, a tuple of str, or a tuple of tuples of str"
    if not isinstance(names, (list, tuple)) or not names:
        validation.instance(names, "names", (), who, what=what)
    if all(isinstance(n, str) for n in names):
        return lambda value, what: dict(zip(names, _parts(value, names, what, who)))
    for k, group in enumerate(names):
        if not (isinstance(group, (list, tuple)) and all(isinstance(n, str) for n in group)):
            validation.instance(group, f"names[{k}]", (), who, what="a tuple of str")

    def name_groups(value, what):
        named = []
        for k, (group, part) in enumerate(zip(names, _parts(value, names, what, who))):
            part = dict(zip(group, _parts(part, group, what, who)))
            # Keras 3 cannot match the target of a one-output model by name:
            # a lone named target is passed as it is.
            named.append(part[group[0]] if k and len(group) == 1 else part)
        return tuple(named)

    return name_groups


def _parts(value, names, what, who):
    """`value` split in as many parts as there are `names`."""
    if not isinstance(value, (list, tuple)) or len(value) != len(names):
        raise ValueError(
            f"{who}: {what} must have {len(names)} parts to match {tuple(names)!r:.80}, "
            f"got {value!r:.80}"
        )
    return value


def _specs(tf, types, shapes, who):
    """TensorSpecs with the structure of `types`; `shapes` has the same
    structure, with a shape (a list of ints and None) for each dtype."""
    if isinstance(types, dict):
        if not isinstance(shapes, dict) or set(shapes) != set(types):
            raise ValueError(f"{who}: `shapes` {shapes!r:.80} does not match `types` {types!r:.80}")
        return {k: _specs(tf, types[k], shapes[k], who) for k in types}
    if isinstance(types, (list, tuple)):
        if not isinstance(shapes, (list, tuple)) or len(shapes) != len(types):
            raise ValueError(f"{who}: `shapes` {shapes!r:.80} does not match `types` {types!r:.80}")
        return tuple(_specs(tf, t, s, who) for t, s in zip(types, shapes))
    try:
        dtype = tf.as_dtype(types)
    except TypeError:
        raise TypeError(f"{who}: `types` holds {types!r}, which is not a dtype") from None
    is_shape = isinstance(shapes, (list, tuple)) and all(
        d is None or validation.is_integer(d) for d in shapes
    )
    if not is_shape:
        raise ValueError(
            f"{who}: `shapes` holds {shapes!r} for a tensor of {types!r}; a shape is a list "
            "of ints and None, such as [None]"
        )
    return tf.TensorSpec([None if d is None else int(d) for d in shapes], dtype)


def _tuples_like(sample, types, who):
    """`sample` with lists made tuples where `types` has a structure (a
    leaf, such as a list of token ids, stays as it is)."""
    if isinstance(types, dict):
        return {k: _tuples_like(sample[k], types[k], who) for k in types}
    if isinstance(types, (list, tuple)):
        parts = _parts(sample, types, "a sample", who)
        return tuple(_tuples_like(s, t, who) for s, t in zip(parts, types))
    return sample
