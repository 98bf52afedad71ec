"""BERT's tokenizer: BasicTokenizer splitting + greedy longest-match WordPiece.

Its ids match Hugging Face's fast `BertWordPiece` tokenizer.
"""

import os
import unicodedata
from itertools import chain

from nlp4keras import validation
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
from nlp4keras.tokenizers.checks import check_text, refuse, token_list
from nlp4keras.tokenizers.vocab import check_token_dict, is_redundant, load_vocab


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
        ids = self.tokenizer._token_ids(self.tokenizer._word_pieces(word))
        self[word] = ids
        return ids


class Tokenizer(TokenizerBase):
    """BERT's tokenizer: basic splitting, then greedy longest-match WordPiece.

    `token_dict` is a `{token: id}` dict or a vocab file path. A word longer
    than `word_maxlen` chars, or one WordPiece cannot cover, becomes [UNK].
    Special tokens typed in the text ("[MASK]") are split like other text,
    as in bert4keras (HF's fast tokenizer keeps them whole). A character the
    vocab lacks, a lone surrogate ('\\ud800') included, makes its word [UNK].
    `decode`, `id_to_token` and `ids_to_tokens` raise `TokenIdError` (a
    ValueError) for an id that is not in the vocab.

    A vocab without the start/end tokens ([CLS]/[SEP]) is accepted, as in
    bert4keras: `tokenize` still puts them around the text, and `encode`
    gives them the [UNK] id (the `_token_unk_id` attribute, which a script
    may set for a vocab without [UNK]); their `_token_start_id` /
    `_token_end_id` are None. Pass `token_start=None` / `token_end=None` to
    leave them out instead.
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
        who = type(self).__name__
        self._do_lower_case = validation.boolean(do_lower_case, "do_lower_case", who)
        self._word_maxlen = validation.integer(word_maxlen, "word_maxlen", who, minimum=1)
        if isinstance(token_dict, (str, os.PathLike)):
            token_dict = load_vocab(token_dict)
        self._token_dict = check_token_dict(token_dict, "token_dict", who)
        self._token_dict_inv = {i: token for token, i in self._token_dict.items()}
        self._vocab_size = len(self._token_dict)
        self._id_range = _id_range(self._token_dict_inv)
        for source, target in self._token_translate.items():
            if target not in self._token_dict:
                raise ValueError(
                    f"{who}: `token_translate` maps {source!r} to {target!r}, "
                    "which is not in the vocab"
                )
        self._max_piece_length = max(len(stem(token)) for token in self._token_dict)
        self._piece_ids = _PieceCache(self)
        for name in ("pad", "unk", "mask", "start", "end"):  # None when not in the vocab
            token = getattr(self, f"_token_{name}")
            setattr(self, f"_token_{name}_id", self._token_dict.get(token))

    def token_to_id(self, token):
        """The id of `token`; the [UNK] id for tokens outside the vocab."""
        if not isinstance(token, str):
            refuse(token, "token", self._who("token_to_id"), "a str")
        token_id = self._token_dict.get(token)
        return self._require_unk_id(token) if token_id is None else token_id

    def id_to_token(self, i):
        """The token of id `i`; an id not in the vocab raises `TokenIdError`."""
        token = self._token_dict_inv.get(i) if type(i) is int else None
        if token is None:
            token = self._token_dict_inv[self._checked_id(i, self._who("id_to_token"))]
        return token

    def decode(self, ids, tokens=None):
        """Readable text: word pieces joined, bracketed special tokens dropped.
        An id that is not in the vocab raises `TokenIdError` (a ValueError)."""
        who = self._who("decode")
        if tokens is None:
            inverse = self._token_dict_inv
            tokens = [inverse[i] for i in self._checked_ids(ids, "ids", who)]
        else:
            tokens = token_list(tokens, "tokens", who)
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
        who = self._who("rematch")
        check_text(text, "text", who)
        tokens = token_list(tokens, "tokens", who)
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

    def _is_known_id(self, i):
        return i in self._token_dict_inv

    def _all_known(self, ids):
        low, high, gaps = self._id_range
        if not gaps:  # ids 0..n-1, as from a vocab file: a range check is enough
            return not ids or (min(ids) >= low and max(ids) <= high)
        return all(map(self._token_dict_inv.__contains__, ids))

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
        for word in self._pre_tokenized(text):  # known words stay whole
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


def _id_range(inverse):
    """(lowest id, highest id, whether ids in between are missing)."""
    low, high = min(inverse), max(inverse)
    return low, high, high - low + 1 != len(inverse)


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
