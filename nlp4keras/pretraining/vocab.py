"""The vocab facts the pretraining pipeline needs: the tokenizer, the ids of
the special tokens, and the ids a random replacement may draw."""

import os

import numpy as np

from nlp4keras import validation
from nlp4keras.tokenizers import Tokenizer, load_vocab

# Labels hold 0 where no loss is taken (as bert4keras' `y_true != 0` masks and
# keras' SparseCategoricalCrossentropy(ignore_class=0)), so id 0 must be a
# token never predicted: [PAD] in BERT vocabs.
IGNORED_LABEL = 0


class PretrainingVocab:
    """A WordPiece vocab file (BERT's vocab.txt) for building and reading
    shards: `tokenizer`, `vocab_size`, `pad_id`, `cls_id`, `sep_id`,
    `mask_id`, `special_ids` (every "[...]" token: never chosen for masking)
    and `replacement_ids` (the others: what a random replacement draws)."""

    def __init__(self, vocab_path, do_lower_case=True):
        who = "PretrainingVocab"
        validation.instance(vocab_path, "vocab_path", (str, os.PathLike), who, what="a file path")
        self.do_lower_case = validation.boolean(do_lower_case, "do_lower_case", who)
        self.path = os.fspath(vocab_path)
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"{who}: vocab file not found: {self.path}")
        token_dict = load_vocab(self.path)
        self.tokenizer = Tokenizer(token_dict, do_lower_case=self.do_lower_case)
        self.vocab_size = len(token_dict)
        for name in ("[PAD]", "[CLS]", "[SEP]", "[MASK]"):
            if name not in token_dict:
                raise ValueError(f"{who}: the vocab {self.path} has no {name} token")
        self.pad_id, self.cls_id = token_dict["[PAD]"], token_dict["[CLS]"]
        self.sep_id, self.mask_id = token_dict["[SEP]"], token_dict["[MASK]"]
        if self.pad_id != IGNORED_LABEL:
            raise ValueError(
                f"{who}: [PAD] has id {self.pad_id} in {self.path}; labels use "
                f"{IGNORED_LABEL} for 'no loss', which must be the [PAD] id"
            )
        special = np.zeros(max(token_dict.values()) + 1, bool)
        for token, i in token_dict.items():
            special[i] = token.startswith("[") and token.endswith("]")
        self.special_ids = np.flatnonzero(special)
        self.replacement_ids = np.flatnonzero(~special)
        self.is_special = special

    def encode_words(self, text, words):
        """Token ids of `text` (as `tokenizer.encode` gives them, without
        [CLS]/[SEP]) and, per token, whether it starts a word of `words`
        (the segmenter's words of `text`, in order): a token starts a word
        when its first char does and it is not a WordPiece '##' continuation.
        The other tokens belong to the word of the token before them."""
        word_start_chars, position = set(), 0
        for word in words:
            found = text.find(word, position) if word else -1
            if found >= 0:
                word_start_chars.add(found)
                position = found + len(word)
        tokens = self.tokenizer.tokenize(text)[1:-1]
        chars = self.tokenizer.rematch(text, tokens)
        starts = [
            bool(span) and span[0] in word_start_chars and not token.startswith("##")
            for token, span in zip(tokens, chars)
        ]
        return self.tokenizer.tokens_to_ids(tokens), starts
