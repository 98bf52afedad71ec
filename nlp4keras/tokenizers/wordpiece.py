"""BERT's tokenizer: BasicTokenizer splitting + greedy longest-match WordPiece.

Its ids match Hugging Face's fast `BertWordPiece` tokenizer.
"""

import os
import unicodedata

from nlp4keras.tokenizers.base import TokenizerBase
from nlp4keras.tokenizers.chars import (
    is_cjk_character,
    is_control,
    is_punctuation,
    is_space,
    is_special,
    stem,
)
from nlp4keras.tokenizers.vocab import load_vocab


class _SpacingTable(dict):
    """`str.translate` table, filled on demand: drops control chars, turns
    whitespace into ' ' and pads CJK ideographs and punctuation with spaces."""

    def __missing__(self, code):
        ch = chr(code)
        if is_space(ch):
            value = " "
        elif code in (0, 0xFFFD) or is_control(ch):
            value = None
        elif is_cjk_character(ch) or is_punctuation(ch):
            value = f" {ch} "
        else:
            value = ch
        self[code] = value
        return value


_SPACING = _SpacingTable()


def _lowercase_and_strip_accents(text):
    """Decompose (NFD), drop combining marks (category Mn), lowercase."""
    if text.isascii():
        return text.lower()
    text = unicodedata.normalize("NFD", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    if "\u03a3" in text:  # capital sigma: per char, no final-sigma rule, as HF
        return "".join(ch.lower() for ch in text)
    return text.lower()


class Tokenizer(TokenizerBase):
    """BERT's tokenizer: basic splitting, then greedy longest-match WordPiece.

    `token_dict` is a `{token: id}` dict or a vocab file path. A word longer
    than `word_maxlen` chars, or one WordPiece cannot cover, becomes [UNK].
    Special tokens typed in the text ("[MASK]") are split like other text,
    as in bert4keras (HF's fast tokenizer keeps them whole).
    """

    def __init__(self, token_dict, do_lower_case=False, word_maxlen=200, **kwargs):
        super().__init__(**kwargs)
        if isinstance(token_dict, (str, os.PathLike)):
            token_dict = load_vocab(token_dict)
        if not token_dict:
            raise ValueError("token_dict is empty")
        self._token_dict = dict(token_dict)
        self._token_dict_inv = {i: token for token, i in self._token_dict.items()}
        self._vocab_size = len(self._token_dict)
        self._do_lower_case = do_lower_case
        self._word_maxlen = word_maxlen
        self._max_piece_length = max(len(stem(token)) for token in self._token_dict)
        for name in ("pad", "unk", "mask", "start", "end"):
            token = getattr(self, f"_token_{name}")
            setattr(self, f"_token_{name}_id", self._token_dict.get(token))
            if name in ("start", "end") and token is not None and token not in token_dict:
                raise ValueError(f"{name} token {token!r} is not in the vocab")

    def token_to_id(self, token):
        """The id of `token`; the [UNK] id for tokens outside the vocab."""
        token_id = self._token_dict.get(token)
        return self._require_unk_id(token) if token_id is None else token_id

    def id_to_token(self, i):
        return self._token_dict_inv[i]

    def decode(self, ids, tokens=None):
        """Readable text: word pieces joined, bracketed special tokens dropped."""
        if tokens is None:
            tokens = self.ids_to_tokens(ids)
        text = ""
        for token in tokens:
            if not token or is_special(token):
                continue
            if token.startswith("##") and len(token) > 2:
                text += token[2:]
            elif text and _needs_space(text, token):
                text += " " + token
            else:
                text += token
        return text

    def _tokenize(self, text):
        if self._do_lower_case:
            text = _lowercase_and_strip_accents(text)
        if self._pre_tokenize is None:
            return self._split_and_piece(text)
        tokens = []
        for word in self._pre_tokenize(text):  # known words stay whole
            if word in self._token_dict:
                tokens.append(word)
            else:
                tokens += self._split_and_piece(word)
        return tokens

    def _split_and_piece(self, text):
        """Basic splitting into words, then WordPiece on each word."""
        tokens = []
        for word in text.translate(_SPACING).split():
            tokens += self._word_pieces(word)
        return tokens

    def _word_pieces(self, word):
        """Greedy longest-match-first split of one word into vocab pieces."""
        if len(word) > self._word_maxlen:
            return [self._unk_token(word)]
        if word in self._token_dict:
            return [word]
        pieces, start = [], 0
        while start < len(word):
            piece, start = self._longest_piece(word, start)
            if piece is None:
                return [self._unk_token(word)]
            pieces.append(piece)
        return pieces

    def _longest_piece(self, word, start):
        """Longest vocab piece of `word` at `start` ('##'-marked after 0) and
        the index where it ends; `(None, start)` when there is none."""
        prefix = "##" if start else ""
        end = min(len(word), start + self._max_piece_length)
        while end > start:
            piece = prefix + word[start:end]
            if piece in self._token_dict:
                return piece, end
            end -= 1
        return None, start

    def _unk_token(self, word):
        self._require_unk_id(word)
        return self._token_unk

    def _require_unk_id(self, token):
        if self._token_unk_id is None:
            raise ValueError(
                f"unknown token {token!r} needs the unk token "
                f"{self._token_unk!r}, which is not in the vocab"
            )
        return self._token_unk_id


def _needs_space(text, token):
    """Whether decoding puts a space between `text` and the next `token`: not
    around CJK chars and non-ASCII punctuation, before closing marks, after
    opening ones, or inside numbers such as 3.14 and 1,000."""
    previous, first = text[-1], token[0]
    for ch in (previous, first):
        if is_cjk_character(ch) or (not ch.isascii() and is_punctuation(ch)):
            return False
    if first in ".,!?;:%)]}'-/" or previous in "([{$'-/":
        return False
    return not (previous in ".," and text[-2:-1].isdigit() and first.isdigit())
