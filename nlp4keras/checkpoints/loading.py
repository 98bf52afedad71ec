"""Assigning checkpoint tensors to model variables, one at a time, with a report."""

import re
from dataclasses import dataclass, field

import numpy as np

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

    @property
    def ok(self):
        return not self.missing and not self.mismatched

    def problems(self):
        lines = []
        for _, path, shape, described in self.missing:
            lines.append(f"  missing tensor {described} for weight {path!r} of shape {shape}")
        for _, path, ckpt_shape, model_shape, described in self.mismatched:
            lines.append(
                f"  shape mismatch for {described}: {ckpt_shape} in the checkpoint, "
                f"{tuple(model_shape)} for weight {path!r}"
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


def assign_from_checkpoint(pairs, reader, read, strict=True, core_scopes=()):
    """Assign `read(name)` to each (variable, name) pair, tensor by tensor.

    Missing names and shape mismatches are collected; with `strict` they raise
    a CheckpointError listing all of them (and the unused tensors, which often
    show what the checkpoint really is), otherwise a warning lists them and
    the variables keep their initial values. Unused tensors whose names start
    with one of `core_scopes` (the encoder's own weights) mean the model will
    not reproduce the checkpoint's original outputs: a warning says so.
    """
    report = LoadReport(source=reader.path)
    available = set(reader.keys())
    used = set()
    for variable, name in pairs:
        used.add(name)
        path = getattr(variable, "path", variable.name)
        if name not in available:
            report.missing.append(
                (name, path, tuple(variable.shape), _described(reader, name, "expected as"))
            )
            continue
        value = np.asarray(read(name))
        if tuple(value.shape) != tuple(variable.shape):
            report.mismatched.append(
                (
                    name,
                    path,
                    tuple(value.shape),
                    tuple(variable.shape),
                    _described(reader, name, "stored as"),
                )
            )
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
