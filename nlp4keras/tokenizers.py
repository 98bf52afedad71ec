"""Tokenizers with the bert4keras API: vocab files and BERT's WordPiece.

`Tokenizer` is BERT's BasicTokenizer + WordPiece; its ids match Hugging
Face's fast `BertWordPiece` tokenizer. `TokenizerBase` holds what does not
depend on the subword algorithm (special tokens, truncation, `encode`).
"""

import os
import unicodedata

__all__ = ["load_vocab", "save_vocab", "TokenizerBase", "Tokenizer"]

# CJK ideographs as BERT defines them (Hangul and kana are not included).
_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


# -- character classes ------------------------------------------------------


def is_cjk_character(ch):
    code = ord(ch)
    return any(low <= code <= high for low, high in _CJK_RANGES)


def is_punctuation(ch):
    """BERT's punctuation: ASCII symbols (not letters/digits/space) and Unicode P*."""
    code = ord(ch)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_control(ch):
    """Control, format and private-use chars, which are dropped (not \\t\\n\\r)."""
    return ch not in "\t\n\r" and unicodedata.category(ch) in ("Cc", "Cf", "Co")


def is_space(ch):
    return ch in " \t\n\r" or (ch.isspace() and not is_control(ch))


def is_special(token):
    """Bracketed tokens such as [CLS], [PAD] or [unused1]."""
    return len(token) > 1 and token[0] == "[" and token[-1] == "]"


def stem(token):
    """A word piece without its '##' continuation mark."""
    return token[2:] if token.startswith("##") else token


# -- vocab files ------------------------------------------------------------


def load_vocab(dict_path, encoding="utf-8", simplified=False, startswith=None):
    """`{token: id}` from a vocab file (one token a line, id = line number).

    `simplified=True` returns `(new_token_dict, keep_tokens)` instead, without
    the tokens `Tokenizer` never emits, `startswith` tokens first, and
    `keep_tokens[new_id] == old_id` (to slice an embedding matrix).
    """
    token_dict = {}
    try:
        with open(dict_path, encoding=encoding) as reader:
            for index, line in enumerate(reader):
                token_dict.setdefault(line.strip(), index)
    except FileNotFoundError:
        raise FileNotFoundError(f"vocab file not found: {dict_path}") from None
    if not token_dict:
        raise ValueError(f"vocab file is empty: {dict_path}")
    if simplified:
        return _simplify_vocab(token_dict, startswith or [])
    return token_dict


def _simplify_vocab(token_dict, startswith):
    missing = [token for token in startswith if token not in token_dict]
    if missing:
        raise ValueError(f"startswith tokens not in the vocab: {missing}")
    kept = list(dict.fromkeys(startswith))
    kept += [
        token
        for token in sorted(token_dict, key=token_dict.get)
        if token not in startswith and not _is_unreachable(token)
    ]
    return {token: i for i, token in enumerate(kept)}, [token_dict[t] for t in kept]


def _is_unreachable(token):
    """Multi-char tokens with a CJK or punctuation char are never emitted, as
    those chars are always split off alone (so [CLS] etc. need `startswith`)."""
    if len(token) < 2:
        return False
    return any(is_cjk_character(ch) or is_punctuation(ch) for ch in stem(token))


def save_vocab(dict_path, token_dict, encoding="utf-8"):
    """Write `token_dict` as a vocab file, tokens in id order."""
    with open(dict_path, "w", encoding=encoding) as writer:
        for token in sorted(token_dict, key=token_dict.get):
            writer.write(token + "\n")


# -- what all tokenizers share ----------------------------------------------


def _check_text(text, name="text"):
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str, got {type(text).__name__}")


class TokenizerBase:
    """Special tokens, truncation and `encode`, shared by all tokenizers.
    Subclasses implement `_tokenize` (text -> tokens without start/end),
    `token_to_id`, `id_to_token` and `decode`."""

    def __init__(
        self, token_start="[CLS]", token_end="[SEP]", pre_tokenize=None, token_translate=None
    ):
        self._token_pad = "[PAD]"
        self._token_unk = "[UNK]"
        self._token_mask = "[MASK]"
        self._token_start = token_start
        self._token_end = token_end
        self._pre_tokenize = pre_tokenize
        self._token_translate = dict(token_translate or {})
        self._token_translate_inv = {v: k for k, v in self._token_translate.items()}

    def tokenize(self, text, maxlen=None):
        """Tokens of `text` with the start/end tokens, cut from the right."""
        _check_text(text)
        content = self._content_tokens(text)
        if maxlen is not None:
            _truncate(_budget(maxlen, self._n_specials()), "right", content)
        return self._wrap(content)

    def encode(
        self, first_text, second_text=None, maxlen=None, pattern="S*E*E", truncate_from="right"
    ):
        """`(token_ids, segment_ids)` for one text or a pair of texts.

        pattern 'S*E*E': [CLS] A [SEP] B [SEP]; 'S*ES*E': [CLS] A [SEP] [CLS] B [SEP].
        With `maxlen`, tokens are removed one at a time from the longer text
        (the first on ties), at `truncate_from`: 'right', 'left', or an int
        index into that text's tokens counted with its start/end tokens.
        """
        if pattern not in ("S*E*E", "S*ES*E"):
            raise ValueError(f"pattern must be 'S*E*E' or 'S*ES*E', got {pattern!r}")
        _check_text(first_text, "first_text")
        first, second = self._content_tokens(first_text), None
        second_has_start = pattern == "S*ES*E"
        if second_text is not None:
            _check_text(second_text, "second_text")
            second = self._content_tokens(second_text)
        if maxlen is not None:
            n_specials = self._n_specials()
            if second is not None:
                n_specials += self._n_specials(second_has_start)
            _truncate(
                _budget(maxlen, n_specials),
                truncate_from,
                first,
                second,
                n_start=int(self._token_start is not None),
                n_end=int(self._token_end is not None),
            )
        token_ids = self.tokens_to_ids(self._wrap(first))
        segment_ids = [0] * len(token_ids)
        if second is not None:
            second_ids = self.tokens_to_ids(self._wrap(second, second_has_start))
            token_ids += second_ids
            segment_ids += [1] * len(second_ids)
        return token_ids, segment_ids

    def tokens_to_ids(self, tokens):
        return [self.token_to_id(token) for token in tokens]

    def ids_to_tokens(self, ids):
        return [self.id_to_token(i) for i in ids]

    def _content_tokens(self, text):
        """Tokens of `text` after `token_translate`, without start/end."""
        translate = self._token_translate
        return [translate.get(token) or token for token in self._tokenize(text)]

    def _wrap(self, content, with_start=True):
        """`content` with the start (if `with_start`) and end tokens around it."""
        start = [self._token_start] if with_start and self._token_start is not None else []
        end = [self._token_end] if self._token_end is not None else []
        return start + content + end

    def _n_specials(self, with_start=True):
        return len(self._wrap([], with_start))

    def _tokenize(self, text):
        raise NotImplementedError(f"{type(self).__name__} must implement _tokenize")


def _budget(maxlen, n_specials):
    """How many text tokens fit in `maxlen` besides the start/end tokens."""
    if maxlen < n_specials:
        raise ValueError(f"maxlen={maxlen} cannot hold the {n_specials} start/end tokens")
    return maxlen - n_specials


def _truncate(budget, truncate_from, first, second=None, n_start=1, n_end=1):
    """Pop tokens in place from the longer list (the first on ties) until the
    lists hold `budget` tokens in all. An int `truncate_from` indexes a list
    as if its start/end tokens were there, clamped so these are never hit."""
    if truncate_from not in ("right", "left") and not isinstance(truncate_from, int):
        raise ValueError(f"truncate_from must be 'right', 'left' or an int, got {truncate_from!r}")
    lists = [first] if second is None else [first, second]
    while sum(map(len, lists)) > budget:
        longest = max(lists, key=len)
        if truncate_from == "right":
            longest.pop()
        elif truncate_from == "left":
            longest.pop(0)
        else:
            position = truncate_from
            if position < 0:
                position += n_start + len(longest) + n_end
            longest.pop(min(max(position - n_start, 0), len(longest) - 1))


# -- BERT WordPiece ---------------------------------------------------------


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
