"""Errors raised while reading or loading checkpoints."""


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, truncated or does not fit the model."""
