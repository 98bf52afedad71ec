"""Assigning checkpoint tensors to model variables, one at a time, with a report."""

import re
import warnings
from dataclasses import dataclass, field

import numpy as np

from nlp4keras.checkpoints.errors import CheckpointError
from nlp4keras.checkpoints.hf_names import HFNamingView, looks_like_google_names
from nlp4keras.checkpoints.sources import open_checkpoint

# Variables of Google/TF training checkpoints that are not model weights.
_NOT_WEIGHTS = re.compile(
    r"(^|/)(global_step|adam_[mv]|Adam(_\d+)?|Momentum|bad_steps|good_steps|loss_scale"
    r"|current_loss_scale)$|^_CHECKPOINTABLE_OBJECT_GRAPH$")


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
            f"{reader.path} uses HF/PyTorch tensor names, which this model family cannot map")
    return HFNamingView(reader, hf_naming)


@dataclass
class LoadReport:
    """What a checkpoint load did: names are checkpoint (Google) names."""

    source: str
    loaded: list = field(default_factory=list)
    missing: list = field(default_factory=list)  # (name, variable path, model shape)
    mismatched: list = field(default_factory=list)  # (name, variable path, ckpt shape, model shape)
    unexpected: list = field(default_factory=list)  # names in the file no weight asked for

    @property
    def ok(self):
        return not self.missing and not self.mismatched

    def problems(self):
        lines = []
        for name, path, shape in self.missing:
            lines.append(f"  missing tensor {name!r} for weight {path!r} of shape {tuple(shape)}")
        for name, path, ckpt_shape, model_shape in self.mismatched:
            lines.append(f"  shape mismatch for {name!r}: {tuple(ckpt_shape)} in the checkpoint, "
                         f"{tuple(model_shape)} for weight {path!r}")
        return "\n".join(lines)

    def __str__(self):
        text = f"Loaded {len(self.loaded)} tensors from {self.source}."
        if not self.ok:
            text += "\n" + self.problems()
        if self.unexpected:
            shown = ", ".join(repr(n) for n in self.unexpected[:20])
            more = f" and {len(self.unexpected) - 20} more" if len(self.unexpected) > 20 else ""
            text += f"\n  unused tensors in the checkpoint ({len(self.unexpected)}): {shown}{more}"
        return text


def _source_name(reader, name):
    source = getattr(reader, "source_name", None)
    if source is None or source(name) == name:
        return name
    return f"{name} (stored as {source(name)!r})"


def assign_from_checkpoint(pairs, reader, read, strict=True):
    """Assign `read(name)` to each (variable, name) pair, tensor by tensor.

    Missing names and shape mismatches are collected; with `strict` they raise
    a CheckpointError listing all of them, otherwise a warning lists them and
    the variables keep their initial values.
    """
    report = LoadReport(source=reader.path)
    available = set(reader.keys())
    used = set()
    for variable, name in pairs:
        used.add(name)
        path = getattr(variable, "path", variable.name)
        if name not in available:
            report.missing.append((_source_name(reader, name), path, tuple(variable.shape)))
            continue
        value = np.asarray(read(name))
        if tuple(value.shape) != tuple(variable.shape):
            report.mismatched.append(
                (_source_name(reader, name), path, tuple(value.shape), tuple(variable.shape)))
            continue
        variable.assign(value)
        report.loaded.append(name)
    unused = sorted(k for k in available - used if not _NOT_WEIGHTS.search(k))
    report.unexpected = [getattr(reader, "source_name", lambda n: n)(k) for k in unused]
    report.unexpected += list(getattr(reader, "unmapped", []))
    if not report.ok:
        message = f"checkpoint {reader.path} does not fit the model:\n{report.problems()}"
        if strict:
            raise CheckpointError(
                message + "\nPass ignore_invalid_weights=True to load the tensors that fit.")
        warnings.warn(message + "\nThese weights keep their initial values.", stacklevel=3)
    return report
