"""Assigning checkpoint tensors to model variables, one at a time, with a report."""

import math
import re
from dataclasses import dataclass, field

import numpy as np

from nlp4keras.checkpoints.dtypes import describe, why_not_assignable
from nlp4keras.checkpoints.errors import CheckpointError
from nlp4keras.checkpoints.hf_names import HFNamingView, looks_like_google_names
from nlp4keras.checkpoints.sources import open_checkpoint
from nlp4keras.messages import warn_user

# Variables of Google/TF training checkpoints that are not model weights.
_NOT_WEIGHTS = re.compile(
    r"(^|/)(global_step|adam_[mv]|Adam(_\d+)?|Momentum|bad_steps|good_steps|loss_scale"
    r"|current_loss_scale)$|^_CHECKPOINTABLE_OBJECT_GRAPH$"
)


def open_for_model(checkpoint, hf_naming):
    """Open `checkpoint` and, if its tensors carry HF names, view them under
    the Google names a model family's variable_mapping() uses."""
    reader = open_checkpoint(checkpoint)
    keys = reader.keys()
    if looks_like_google_names(keys) or not keys:
        return reader
    if hf_naming is None:
        reader.close()
        raise CheckpointError(
            f"{reader.path} uses HF/PyTorch tensor names, which this model family cannot map"
        )
    return HFNamingView(reader, hf_naming)


@dataclass
class LoadReport:
    """What a checkpoint load did: names are checkpoint (Google) names."""

    source: str
    loaded: list = field(default_factory=list)
    # (name, variable path, model shape, description for messages)
    missing: list = field(default_factory=list)
    # (name, variable path, checkpoint shape, model shape, description)
    mismatched: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)  # names in the file no weight asked for
    unused_core: list = field(default_factory=list)  # unexpected encoder tensors (Google names)
    # (name, variable path, checkpoint dtype, model dtype, what the weight takes, description)
    wrong_dtype: list = field(default_factory=list)

    @property
    def ok(self):
        return not self.missing and not self.mismatched and not self.wrong_dtype

    def problems(self):
        lines = []
        for _, path, shape, described in self.missing:
            lines.append(f"  missing tensor {described} for weight {path!r} of shape {shape}")
        for _, path, ckpt_shape, model_shape, described in self.mismatched:
            lines.append(
                f"  shape mismatch for {described}: {ckpt_shape} in the checkpoint, "
                f"{tuple(model_shape)} for weight {path!r}"
            )
        for _, path, dtype, model_dtype, takes, described in self.wrong_dtype:
            lines.append(
                f"  dtype mismatch for {described}: {dtype} in the checkpoint, {model_dtype} "
                f"for weight {path!r}, which takes {takes}; nothing is converted"
            )
        return "\n".join(lines)

    def unused_line(self, limit=20):
        if not self.unexpected:
            return ""
        shown = ", ".join(repr(n) for n in self.unexpected[:limit])
        more = f" and {len(self.unexpected) - limit} more" if len(self.unexpected) > limit else ""
        return f"  unused tensors in the checkpoint ({len(self.unexpected)}): {shown}{more}"

    def __str__(self):
        text = f"Loaded {len(self.loaded)} tensors from {self.source}."
        if not self.ok:
            text += "\n" + self.problems()
        if self.unexpected:
            text += "\n" + self.unused_line()
        return text


def _described(reader, name, verb):
    """A Google name with the name it has (or would have) in an HF file."""
    source = reader.source_name(name)
    if source == name:
        return repr(name)
    return f"{name!r} ({verb} {source!r})"


def _may_become(declared, expected):
    """Whether a model's `load_variable` may turn a tensor of shape `declared`
    into a weight of shape `expected`: the same shape; the same number of
    elements in another layout (a transpose or reshape); or other rows of the
    same width (keep_tokens and compound_tokens pick and add vocab rows), or
    other columns of the same height (the same on a vocab-column kernel)."""
    if declared == expected or math.prod(declared) == math.prod(expected):
        return True
    same_rank = len(declared) == len(expected) >= 1
    return same_rank and (declared[1:] == expected[1:] or declared[:-1] == expected[:-1])


def _dtype_problem(dtype, variable):
    """None, or what `variable` takes if a `dtype` tensor may not go into it."""
    if dtype is None:
        return None
    return why_not_assignable(dtype, getattr(variable, "dtype", None))


def assign_from_checkpoint(pairs, reader, read, strict=True, core_scopes=()):
    """Assign `read(name)` to each (variable, name) pair, tensor by tensor.

    Each tensor's declared dtype and shape are checked against its weight
    before a byte of it is read: a tensor that cannot fit is reported without
    reading it, so a file declaring a huge tensor costs no memory. Integer,
    bool and complex tensors never go into float weights (half-precision
    floats do).

    Missing names, shape mismatches and wrong dtypes are collected; with
    `strict` they raise a CheckpointError listing all of them (and the unused
    tensors, which often show what the checkpoint really is), otherwise a
    warning lists them and the variables keep their initial values. Unused
    tensors whose names start with one of `core_scopes` (the encoder's own
    weights) mean the model will not reproduce the checkpoint's original
    outputs: a warning says so.
    """
    report = LoadReport(source=reader.path)
    available = set(reader.keys())
    used = set()
    dtype_of = getattr(reader, "dtype", lambda name: None)
    for variable, name in pairs:
        used.add(name)
        path = getattr(variable, "path", variable.name)
        expected = tuple(variable.shape)
        if name not in available:
            report.missing.append((name, path, expected, _described(reader, name, "expected as")))
            continue
        if _wrong_dtype(report, reader, name, path, dtype_of(name), variable):
            continue
        declared = tuple(reader.shape(name))
        if _wrong_shape(report, reader, name, path, declared, expected, before_reading=True):
            continue
        value = np.asarray(read(name))
        if _wrong_dtype(report, reader, name, path, value.dtype, variable):
            continue
        if _wrong_shape(report, reader, name, path, value.shape, expected, before_reading=False):
            continue
        variable.assign(value)
        report.loaded.append(name)
    unused = sorted(k for k in available - used if not _NOT_WEIGHTS.search(k))
    report.unexpected = [reader.source_name(k) for k in unused] + list(reader.unmapped)
    report.unused_core = [k for k in unused if k.startswith(tuple(core_scopes))]
    if not report.ok:
        message = f"checkpoint {reader.path} does not fit the model:\n{report.problems()}"
        if report.unexpected:
            message += "\n" + report.unused_line(limit=10)
        if strict:
            raise CheckpointError(
                message + "\nPass ignore_invalid_weights=True to load the tensors that fit."
            )
        warn_user(message + "\nThese weights keep their initial values.")
    if report.unused_core:
        warn_user(
            f"{reader.path}: the model does not use these encoder tensors of the "
            f"checkpoint, so its outputs will differ from the original model's: "
            f"{', '.join(report.unused_core[:10])}"
        )
    return report


def _wrong_dtype(report, reader, name, path, dtype, variable):
    """Record (and say) whether a tensor of `dtype` may not go into `variable`."""
    takes = _dtype_problem(dtype, variable)
    if takes is not None:
        described = _described(reader, name, "stored as")
        model_dtype = str(variable.dtype)
        report.wrong_dtype.append((name, path, describe(dtype), model_dtype, takes, described))
    return takes is not None


def _wrong_shape(report, reader, name, path, shape, expected, before_reading):
    """Record (and say) whether a shape does not fit the weight. Before
    reading, the declared shape only has to be one load_variable may reshape."""
    shape = tuple(shape)
    fits = _may_become(shape, expected) if before_reading else shape == expected
    if not fits:
        described = _described(reader, name, "stored as")
        report.mismatched.append((name, path, shape, expected, described))
    return not fits
