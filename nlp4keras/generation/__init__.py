"""Fast generation with a key/value cache (see generator.CachedGenerator)."""

from nlp4keras.generation.generator import CachedGenerator

__all__ = ["CachedGenerator"]
