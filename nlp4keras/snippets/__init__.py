"""bert4keras `snippets`: data utilities (padding, truncation, text splitting,
parallel mapping, `DataGenerator`, `open`), decoding helpers
(`AutoRegressiveDecoder`, `ViterbiDecoder`), sequence matching, numpy helpers
and `WebServing`."""

from nlp4keras.snippets import uniout  # noqa: F401
from nlp4keras.snippets.arguments import delete_arguments, insert_arguments  # noqa: F401
from nlp4keras.snippets.arrays import orthogonally_resize, softmax  # noqa: F401
from nlp4keras.snippets.data_generator import DataGenerator  # noqa: F401
from nlp4keras.snippets.decoding import AutoRegressiveDecoder  # noqa: F401
from nlp4keras.snippets.files import open  # noqa: F401
from nlp4keras.snippets.matching import (  # noqa: F401
    longest_common_subsequence,
    longest_common_substring,
    string_matching,
)
from nlp4keras.snippets.padding import sequence_padding, truncate_sequences  # noqa: F401
from nlp4keras.snippets.parallel import parallel_apply, parallel_apply_generator  # noqa: F401
from nlp4keras.snippets.text import (  # noqa: F401
    convert_to_str,
    convert_to_unicode,
    is_one_of,
    is_string,
    lowercase_and_normalize,
    strQ2B,
    text_segmentate,
    to_array,
)
from nlp4keras.snippets.viterbi import ViterbiDecoder  # noqa: F401
from nlp4keras.snippets.web_serving import WebServing  # noqa: F401
