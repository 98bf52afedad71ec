"""BERT's tokenizer: BasicTokenizer splitting + greedy longest-match WordPiece.

Its ids match Hugging Face's fast `BertWordPiece` tokenizer.
"""

import os
import unicodedata
from itertools import chain

from nlp4keras.tokenizers.base import TokenizerBase
from nlp4keras.tokenizers.chars import (
    cjk_punctuation,
    is_cjk_character,
    is_control,
    is_punctuation,
    is_space,
    is_special,
    stem,
)
from nlp4keras.tokenizers.vocab import is_redundant, load_vocab


class _SpacingTable(dict):
    """`str.translate` table, filled on demand: drops control chars, turns
    whitespace into ' ' and pads CJK ideographs and punctuation with spaces.
    With `strip_marks`, combining marks (category Mn) are dropped too."""

    def __init__(self, strip_marks):
        super().__init__()
        self.strip_marks = strip_marks

    def __missing__(self, code):
        ch = chr(code)
        if is_space(ch):
            value = " "
        elif code in (0, 0xFFFD) or is_control(ch):
            value = None
        elif self.strip_marks and unicodedata.category(ch) == "Mn":
            value = None
        elif is_cjk_character(ch) or is_punctuation(ch):
            value = f" {ch} "
        else:
            value = ch
        self[code] = value
        return value


_SPACING = {False: _SpacingTable(strip_marks=False), True: _SpacingTable(strip_marks=True)}


def _lowercase_and_decompose(text):
    """Lowercased NFD text (marks are then dropped by the spacing table).
    Capital sigma is lowered per char (no final-sigma rule), as HF does."""
    if text.isascii():
        return text.lower()
    if "\u03a3" in text:
        text = text.replace("\u03a3", "\u03c3")
    return unicodedata.normalize("NFD", text).lower()


def _normalize_char(ch, do_lower_case):
    """What one original char becomes before splitting (for `rematch`):
    whitespace is one ' ', control chars nothing, others their normalised
    form without the spaces put around CJK chars and punctuation."""
    if do_lower_case:
        ch = _lowercase_and_decompose(ch)
    normalized = ch.translate(_SPACING[do_lower_case])
    return normalized if normalized == " " else normalized.replace(" ", "")


def _next_word(normalized, offset):
    """`(start, end)` of the next basic-split word at or after `offset`: one
    CJK char or punctuation mark, or a run of other non-space chars."""
    start = offset
    while start < len(normalized) and normalized[start] == " ":
        start += 1
    end = start
    while end < len(normalized) and normalized[end] != " ":
        if is_cjk_character(normalized[end]) or is_punctuation(normalized[end]):
            end += end == start  # a word of its own, or the end of this one
            break
        end += 1
    return start, end


class _PieceCache(dict):
    """word -> its WordPiece ids, filled on demand; cleared when it grows
    past `limit` words so memory stays bounded on open-ended text."""

    def __init__(self, tokenizer, limit=200_000):
        super().__init__()
        self.tokenizer = tokenizer
        self.limit = limit

    def __missing__(self, word):
        if len(self) >= self.limit:
            self.clear()
        ids = self.tokenizer.tokens_to_ids(self.tokenizer._word_pieces(word))
        self[word] = ids
        return ids


class Tokenizer(TokenizerBase):
    """BERT's tokenizer: basic splitting, then greedy longest-match WordPiece.

    `token_dict` is a `{token: id}` dict or a vocab file path. A word longer
    than `word_maxlen` chars, or one WordPiece cannot cover, becomes [UNK].
    Special tokens typed in the text ("[MASK]") are split like other text,
    as in bert4keras (HF's fast tokenizer keeps them whole).
    """

    # bert4keras exposed the character classes as static methods.
    stem = staticmethod(stem)
    _is_space = staticmethod(is_space)
    _is_punctuation = staticmethod(is_punctuation)
    _is_cjk_character = staticmethod(is_cjk_character)
    _is_control = staticmethod(is_control)
    _is_special = staticmethod(is_special)
    _is_redundant = staticmethod(is_redundant)
    _cjk_punctuation = staticmethod(cjk_punctuation)

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
        self._piece_ids = _PieceCache(self)
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

    def rematch(self, text, tokens):
        """For each token, the indices of the chars of `text` it came from
        (bert4keras' offset mapping). Special tokens get `[]`; [UNK] gets the
        whole word it replaced. Tokens from one char (e.g. Hangul jamo after
        NFD) share that char's index."""
        normalized, char_index = [], []
        for i, ch in enumerate(text):
            piece = _normalize_char(ch, self._do_lower_case)
            normalized.append(piece)
            char_index += [i] * len(piece)
        normalized = "".join(normalized)
        mapping, offset = [], 0
        for token in tokens:
            if token == self._token_unk:
                start, end = _next_word(normalized, offset)
            elif is_special(token):
                mapping.append([])
                continue
            else:
                piece = stem(token) or token
                start = normalized.find(piece, offset)
                end = start + len(piece)
            if start < 0 or start == end:
                mapping.append([])
                continue
            mapping.append(sorted(set(char_index[start:end])))
            offset = end
        return mapping

    def _normalize(self, text):
        """Lowercased and accent-stripped (if asked), control chars dropped,
        CJK chars and punctuation surrounded by spaces."""
        if self._do_lower_case:
            text = _lowercase_and_decompose(text)
        return text.translate(_SPACING[self._do_lower_case])

    def _tokenize(self, text):
        if self._pre_tokenize is None:
            return self._split_and_piece(text)
        if self._do_lower_case:  # pre_tokenize sees lowercased, unaccented text
            text = _lowercase_and_decompose(text)
            text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
        tokens = []
        for word in self._pre_tokenize(text):  # known words stay whole
            if word in self._token_dict:
                tokens.append(word)
            else:
                tokens += self._split_and_piece(word)
        return tokens

    def _content_ids(self, text):
        if self._pre_tokenize is not None or self._token_translate:
            return super()._content_ids(text)
        # The fast path: each distinct word is split once, then looked up.
        words = self._normalize(text).split()
        return list(chain.from_iterable(map(self._piece_ids.__getitem__, words)))

    def _split_and_piece(self, text):
        """Basic splitting into words, then WordPiece on each word."""
        tokens = []
        for word in self._normalize(text).split():
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
