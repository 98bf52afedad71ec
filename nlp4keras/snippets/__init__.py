"""bert4keras `snippets`: data utilities (padding, truncation, text splitting,
parallel mapping, `DataGenerator`) and decoding helpers (`ViterbiDecoder`)."""

from nlp4keras.snippets.data_generator import DataGenerator  # noqa: F401
from nlp4keras.snippets.padding import sequence_padding, truncate_sequences  # noqa: F401
from nlp4keras.snippets.parallel import parallel_apply, parallel_apply_generator  # noqa: F401
from nlp4keras.snippets.text import (  # noqa: F401
    is_string,
    lowercase_and_normalize,
    strQ2B,
    text_segmentate,
    to_array,
)
from nlp4keras.snippets.viterbi import ViterbiDecoder  # noqa: F401
