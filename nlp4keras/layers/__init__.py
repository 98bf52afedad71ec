"""nlp4keras layers. Importing this module registers them for `load_model`."""

from nlp4keras.layers.attention import MultiHeadAttention
from nlp4keras.layers.core import Add, BiasAdd, TakeToken
from nlp4keras.layers.embeddings import Embedding, PositionEmbedding
from nlp4keras.layers.feedforward import FeedForward
from nlp4keras.layers.masks import LMMask, UniLMMask
from nlp4keras.layers.normalization import LayerNormalization

__all__ = [
    "Add",
    "BiasAdd",
    "Embedding",
    "FeedForward",
    "LMMask",
    "LayerNormalization",
    "MultiHeadAttention",
    "PositionEmbedding",
    "TakeToken",
    "UniLMMask",
]
