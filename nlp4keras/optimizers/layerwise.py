"""Layer-wise learning-rate decay for `extend_with_parameter_wise_lr`."""

import math
import re

from nlp4keras import validation
from nlp4keras.optimizers.wrapper_base import variable_path

_BLOCK = re.compile(r"Transformer-(\d+)-")
_EMBEDDING = re.compile(r"Embedding-")


def layerwise_lr_multipliers(model, decay=0.9, head_multiplier=1.0, extra=None):
    """The `paramwise_lr_schedule` giving layer-wise lr decay on a Transformer.

    model: a `keras.Model` (or layer) built by nlp4keras, or the Transformer
    object `build_transformer_model(..., return_keras_model=False)` returns.
    With L blocks (layers named "Transformer-<i>-..."), block i gets
    decay**(L-1-i) (the top block 1), the embeddings ("Embedding-...") decay**L,
    every other layer with trainable weights (MLM/NSP/pooler heads, a
    classifier, a CRF) `head_multiplier`. `extra={substring: multiplier}` then
    sets the multiplier of every variable whose path contains the substring,
    overriding the above, e.g. `extra={"CRF/trans": 100.0}` for a CRF layer named "CRF".

    Keys are layer names with a trailing "/" (e.g. "Transformer-3-FeedForward/"),
    or full variable paths where one layer's variables differ; multipliers of 1
    are left out. Raises ValueError if the keys would match unintended variables.
    """
    who = "layerwise_lr_multipliers"
    decay = validation.real(decay, "decay", who, above=0)
    head_multiplier = validation.real(head_multiplier, "head_multiplier", who, minimum=0)
    extra = _checked_extra(extra, who)

    paths = [variable_path(v) for v in _trainable_variables(model, who)]
    block_of = _block_finder(model)
    blocks = [b for b in map(block_of, map(_layer_of, paths)) if b is not None]
    if not blocks:
        raise ValueError(f"{who}: the model has no trainable 'Transformer-<i>-' layers")
    top = max(blocks)

    wanted = {}
    for path in paths:
        layer = _layer_of(path)
        block = block_of(layer)
        if block is not None:
            multiplier = decay ** (top - block)
        elif _EMBEDDING.search(layer):
            multiplier = decay ** (top + 1)
        else:
            multiplier = head_multiplier
        for substring, value in extra.items():
            if substring in path:
                multiplier = value
        wanted[path] = multiplier
    schedule = _compress(wanted)
    _check_schedule(schedule, wanted, who)
    return schedule


def _block_finder(model):
    """layer name -> block index (None: not in a block). A Transformer object
    says which layers each block holds (a shared ALBERT block counts as the
    top one); a bare keras.Model is read by its layer names."""
    blocks = getattr(model, "block_layer_names", None)
    if callable(blocks):
        index = {}
        for i, names in enumerate(blocks()):
            index.update((name, i) for name in names)
        return lambda layer: index.get(layer.rsplit("/", 1)[-1])

    def by_name(layer):
        match = _BLOCK.search(layer)
        return int(match.group(1)) if match else None

    return by_name


def _checked_extra(extra, who):
    """{substring: multiplier >= 0} (None for none)."""
    if extra is None:
        return {}
    if not isinstance(extra, dict):
        raise validation.InvalidType(
            f"{who}: `extra` must be a dict {{substring: multiplier}}, got {extra!r} "
            f"({type(extra).__name__})",
            "extra",
        )
    checked = {}
    for substring, multiplier in extra.items():
        validation.string(substring, "extra key", who)
        checked[substring] = validation.real(multiplier, f"extra[{substring!r}]", who, minimum=0)
    return checked


def _trainable_variables(model, who):
    owner = getattr(model, "model", None) if not hasattr(model, "trainable_variables") else model
    variables = getattr(owner, "trainable_variables", None)
    if variables is None:
        raise TypeError(f"{who} expects a keras.Model or an nlp4keras Transformer, got {model!r}")
    return variables


def _layer_of(path):
    return path.rsplit("/", 1)[0] if "/" in path else path


def _compress(wanted):
    """One key per layer ("<layer>/") where its variables agree, else one per path."""
    by_layer = {}
    for path, multiplier in wanted.items():
        by_layer.setdefault(_layer_of(path), []).append((path, multiplier))
    schedule = {}
    for layer, items in by_layer.items():
        values = {multiplier for _, multiplier in items}
        if len(values) == 1 and all("/" in path for path, _ in items):
            pairs = [(layer + "/", values.pop())]
        else:
            pairs = items
        schedule.update((key, value) for key, value in pairs if value != 1.0)
    return schedule


def _check_schedule(schedule, wanted, who):
    """Substring keys multiply: make sure each variable gets exactly its value."""
    for path, multiplier in wanted.items():
        got = math.prod(value for key, value in schedule.items() if key in path)
        if not math.isclose(got, multiplier, rel_tol=1e-12):
            keys = [key for key in schedule if key in path]
            raise ValueError(
                f"{who}: variable {path!r} would get multiplier {got} instead of "
                f"{multiplier} (matched by {keys}); rename the layers or pass the "
                "multipliers by full variable path"
            )
