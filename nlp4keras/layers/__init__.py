"""nlp4keras layers. Importing this module registers them for `load_model`."""

from nlp4keras.layers.attention import MultiHeadAttention
from nlp4keras.layers.core import Add, BiasAdd, TakeToken
from nlp4keras.layers.crf import (
    ConditionalRandomField,
    CRFDecoder,
    MaximumEntropyMarkovModel,
    viterbi_decode,
)
from nlp4keras.layers.dgcnn import DGCNN
from nlp4keras.layers.embeddings import Embedding, PositionEmbedding
from nlp4keras.layers.feedforward import FeedForward
from nlp4keras.layers.global_pointer import EfficientGlobalPointer, GlobalPointer
from nlp4keras.layers.loss import Loss
from nlp4keras.layers.masks import LMMask, UniLMMask
from nlp4keras.layers.normalization import LayerNormalization
from nlp4keras.layers.pooling import GlobalAveragePooling1D, GlobalMaxPooling1D

__all__ = [
    "Add",
    "BiasAdd",
    "ConditionalRandomField",
    "CRFDecoder",
    "DGCNN",
    "EfficientGlobalPointer",
    "Embedding",
    "FeedForward",
    "GlobalAveragePooling1D",
    "GlobalMaxPooling1D",
    "GlobalPointer",
    "LayerNormalization",
    "LMMask",
    "Loss",
    "MaximumEntropyMarkovModel",
    "MultiHeadAttention",
    "PositionEmbedding",
    "TakeToken",
    "UniLMMask",
    "viterbi_decode",
]
