"""SentencePiece tokenizer with the bert4keras API (`SpTokenizer`), plus `rematch`.

The `sentencepiece` package is optional: it is imported when an `SpTokenizer`
is built.
"""

import operator
import os

from nlp4keras import validation
from nlp4keras.tokenizers.base import TokenizerBase
from nlp4keras.tokenizers.checks import (
    TextError,
    check_text,
    lone_surrogate,
    token_list,
)

_BOUNDARY = "\u2581"  # '▁', SentencePiece's mark for a word boundary (a space)


def _import_sentencepiece():
    try:
        import sentencepiece
    except ImportError as error:
        raise ImportError(
            "SpTokenizer needs the sentencepiece package: pip install nlp4keras[sentencepiece]"
        ) from error
    return sentencepiece


def _load_model(path):
    """A `SentencePieceProcessor` for the model file at `path`."""
    spm = _import_sentencepiece()
    if not os.path.isfile(path):
        raise FileNotFoundError(f"SentencePiece model file not found: {path}")
    with open(path, "rb") as file:
        serialized = file.read()
    model = spm.SentencePieceProcessor()
    try:
        model.LoadFromSerializedProto(serialized)
    except (RuntimeError, OSError) as error:
        raise ValueError(f"{path} is not a SentencePiece model: {error}") from error
    return model


class SpTokenizer(TokenizerBase):
    """A SentencePiece model (`.model` file) with the bert4keras tokenizer API.

    Tokens are the model's pieces and ids its ids. As bert4keras used it for
    T5/mT5, there is no start token and the end token is '</s>' by default;
    a `token_start`/`token_end` that is not a piece of the model is an error
    (pass `token_end=None` for a model without '</s>'). `_token_pad` is the
    model's pad piece ('' if it has none), `_token_mask` its '[MASK]' or
    '<mask>' piece (else ''); their ids are None when absent.
    `pre_tokenize` splits the text into words that the model then sees
    joined by spaces, as in bert4keras.

    Text with a lone surrogate ('\\ud800'), which SentencePiece cannot take,
    raises `TextError` (a ValueError) naming its position. `decode`,
    `id_to_token` and `ids_to_tokens` raise `TokenIdError` (a ValueError) for
    an id outside [0, vocab size).
    """

    def __init__(self, sp_model_path, token_start=None, token_end="</s>", **kwargs):
        who = type(self).__name__
        validation.instance(
            sp_model_path, "sp_model_path", (str, os.PathLike), who, what="a file path"
        )
        super().__init__(token_start=token_start, token_end=token_end, **kwargs)
        path = os.fspath(sp_model_path)
        self.sp_model = _load_model(path)
        sp = self.sp_model
        self._vocab_size = sp.get_piece_size()
        self._id_range = (0, self._vocab_size - 1, False)
        self._offset_mapping = _has_offset_mapping(sp)
        self._vanishes = {}  # character -> whether the model's normaliser deletes it
        self._token_pad = sp.id_to_piece(sp.pad_id()) if self._is_id(sp.pad_id()) else ""
        self._token_unk = sp.id_to_piece(sp.unk_id())
        self._token_mask = next((t for t in ("[MASK]", "<mask>") if self._has_piece(t)), "")
        for name in ("start", "end"):
            token = getattr(self, f"_token_{name}")
            if token is not None and not self._has_piece(token):
                raise ValueError(
                    f"token_{name}={token!r} is not a piece of the SentencePiece model {path}; "
                    f"pass token_{name}=None or one of its pieces"
                )
        for name in ("pad", "unk", "mask", "start", "end"):
            token = getattr(self, f"_token_{name}")
            token_id = sp.piece_to_id(token) if token and self._has_piece(token) else None
            setattr(self, f"_token_{name}_id", token_id)
        for source, target in self._token_translate.items():
            if not self._has_piece(target):
                raise ValueError(
                    f"{who}: `token_translate` maps {source!r} to {target!r}, which is not "
                    f"a piece of the SentencePiece model {path}"
                )

    def token_to_id(self, token):
        """The id of piece `token`; the unk id for anything else."""
        try:
            return self.sp_model.piece_to_id(token)
        except TypeError:  # not a str, or one holding a lone surrogate
            who = self._who("token_to_id")
            check_text(token, "token", who)
            position = lone_surrogate(token)
            if position is None:
                raise
            raise TextError(token, position, "token", who) from None

    def id_to_token(self, i):
        """The piece of id `i`; an id outside the vocab raises `TokenIdError`."""
        return self.sp_model.id_to_piece(self._checked_id(i, self._who("id_to_token")))

    def decode(self, ids):
        """Text of `ids`: special pieces (control, unknown, unused) dropped,
        `token_translate` undone, pieces joined by SentencePiece. An id
        outside [0, vocab size) raises `TokenIdError` (a ValueError)."""
        ids = self._checked_ids(ids, "ids", self._who("decode"))
        sp = self.sp_model
        tokens = [sp.id_to_piece(i) for i in ids if not self._is_special(i)]
        tokens = [self._token_translate_inv.get(token) or token for token in tokens]
        return sp.decode_pieces(tokens)

    def rematch(self, text, tokens):
        """For each token, the indices of the characters of `text` it covers.

        `tokens` are those of `tokenize(text)`, possibly truncated, or
        `ids_to_tokens` of `encode(text)` (where unknown pieces are '<unk>').
        Start/end tokens and control pieces get []. A token covers the
        characters SentencePiece attributes to its piece, minus the whitespace
        its '▁' stands for, so a lone '▁' covers nothing. Where one character
        becomes several pieces (NFKC expansions such as '½' -> '1⁄2',
        byte-fallback pieces), the last piece gets it. Tokens are matched to
        the pieces of `text` by id; if truncation makes that ambiguous (a
        repeated piece), the earliest pieces are taken.
        """
        who = self._who("rematch")
        check_text(text, "text", who)
        tokens = token_list(tokens, "tokens", who)
        try:
            ids, spans = self._ids_and_spans(text)
            token_ids = [self._text_token_id(token) for token in tokens]
        except TextError as error:
            raise error.named(text, "text", who) from None
        content = [i for i, token_id in enumerate(token_ids) if token_id is not None]
        matches = _match(ids, [token_ids[i] for i in content])
        mapping = [[] for _ in tokens]
        for i, match in zip(content, matches):
            if match is not None:
                mapping[i] = spans[match]
        return mapping

    def _tokenize(self, text):
        if self._pre_tokenize is not None:
            text = " ".join(self._pre_tokenized(text))
        return _with_text(self.sp_model.encode_as_pieces, text)

    def _is_special(self, i):
        """Whether id `i` is a control, unknown or unused piece."""
        sp, i = self.sp_model, operator.index(i)
        return sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i)

    def _is_decodable(self, i):
        i = operator.index(i)
        return self._is_id(i) and not self._is_special(i)

    def _is_id(self, i):
        return 0 <= i < self._vocab_size

    _is_known_id = _is_id

    def _all_known(self, ids):
        return not ids or (min(ids) >= 0 and max(ids) < self._vocab_size)

    def _has_piece(self, token):
        return self.sp_model.id_to_piece(self.token_to_id(token)) == token

    def _text_token_id(self, token):
        """The id of a token that stands for text; None for the start/end
        tokens and for control or unused pieces."""
        if token in (self._token_start, self._token_end):
            return None
        sp = self.sp_model
        i = self.token_to_id(token)
        return None if sp.is_control(i) or sp.is_unused(i) else i

    def _content_ids(self, text):
        if self._pre_tokenize is not None or self._token_translate:
            return super()._content_ids(text)
        try:
            return self.sp_model.encode(text)  # the fast path, straight from the model
        except RuntimeError as error:  # pybind11 could not pass the text to C++
            raise _text_error(text, error) from None

    def _ids_and_spans(self, text):
        """The content ids of `text` (after `token_translate`) and the indices
        of the characters of `text` that each covers."""
        origin = None  # model text index -> text index, when they differ
        model_text = text
        if self._pre_tokenize is not None:
            model_text, origin = _join_words(text, self._pre_tokenized(text))
        translate = self._token_translate
        ids, spans = [], []
        for piece, piece_id, (begin, end) in self._pieces_with_offsets(model_text):
            chars = range(begin, end)
            if _BOUNDARY in piece:  # the whitespace that became '▁'
                chars = [c for c in chars if not model_text[c].isspace()]
            # Characters the normaliser deletes (controls such as '\x08') give
            # the piece no text: SentencePiece lends them to the next piece.
            chars = [c for c in chars if not self._vanishing(model_text[c])]
            if origin is not None:
                chars = [origin[c] for c in chars if origin[c] is not None]
            if translate.get(piece):  # as `_content_tokens` translates
                piece_id = self.token_to_id(translate[piece])
            ids.append(piece_id)
            spans.append(list(chars))
        return ids, spans

    def _vanishing(self, char):
        if char not in self._vanishes:
            normalize = getattr(self.sp_model, "normalize", None)
            kept = normalize(char).replace(_BOUNDARY, "") if normalize else char
            self._vanishes[char] = not kept and not char.isspace()
        return self._vanishes[char]

    def _pieces_with_offsets(self, text):
        """`(piece, id, (begin, end))` for each piece of `text`, begin/end
        being character offsets into `text`."""
        if self._offset_mapping:  # sentencepiece >= 0.2.2 computes them
            encoded = _with_text(self.sp_model.encode, text, out_type="offset_mapping")
            return zip(encoded["pieces"], encoded["ids"], encoded["offsets"])
        char_at = _char_at_byte(text)
        serialized = _with_text(self.sp_model.encode, text, out_type="serialized_proto")
        return [
            (piece, piece_id, (char_at[begin], char_at[end]))
            for piece, piece_id, begin, end in _read_pieces(serialized)
        ]


def _with_text(call, text, **kwargs):
    """`call(text, **kwargs)`; a text SentencePiece refuses raises TextError."""
    try:
        return call(text, **kwargs)
    except RuntimeError as error:  # pybind11 could not pass the text to C++
        raise _text_error(text, error) from None


def _text_error(text, error):
    """A TextError if `text` holds a lone surrogate, else `error` itself."""
    position = lone_surrogate(text)
    return error if position is None else TextError(text, position)


def _has_offset_mapping(model):
    """Whether this sentencepiece version encodes with out_type='offset_mapping'."""
    try:
        model.encode("", out_type="offset_mapping")
    except (RuntimeError, ValueError):  # 'unknown out_type'
        return False
    return True


def _join_words(text, words):
    """`' '.join(words)` and, for each of its characters, its index in `text`:
    words are looked up in `text` in order; joining spaces and words not found
    get None."""
    joined, origin, cursor = [], [], 0
    for n, word in enumerate(words):
        if n:
            joined.append(" ")
            origin.append(None)
        start = text.find(word, cursor)
        if start < 0:
            origin += [None] * len(word)
        else:
            origin += range(start, start + len(word))
            cursor = start + len(word)
        joined.append(word)
    return "".join(joined), origin


def _char_at_byte(text):
    """For each byte offset into `text` encoded as UTF-8 (and its end), the
    index of the character that byte belongs to."""
    if text.isascii():
        return range(len(text) + 1)
    char_at = []
    for i, ch in enumerate(text):
        char_at += [i] * len(ch.encode("utf-8"))
    char_at.append(len(text))
    return char_at


def _match(pieces, tokens):
    """For each token, the index of the piece it is, or None: the longest
    common prefix, then the longest common suffix of what is left, then
    in-order matches for the tokens in between."""
    n, m = len(tokens), len(pieces)
    match = [None] * n
    prefix = 0
    while prefix < min(n, m) and tokens[prefix] == pieces[prefix]:
        match[prefix] = prefix
        prefix += 1
    suffix = 0
    while suffix < min(n, m) - prefix and tokens[n - 1 - suffix] == pieces[m - 1 - suffix]:
        match[n - 1 - suffix] = m - 1 - suffix
        suffix += 1
    cursor = prefix
    for i in range(prefix, n - suffix):
        for j in range(cursor, m - suffix):
            if pieces[j] == tokens[i]:
                match[i], cursor = j, j + 1
                break
    return match


# -- a minimal reader of SentencePiece's serialized `SentencePieceText` proto --
# Offsets for sentencepiece < 0.2.2 without a protobuf dependency (its
# 'immutable_proto' output is gone from newer versions).


def _read_pieces(data):
    """`(piece, id, begin, end)` for each piece, begin/end being byte offsets
    into the encoded text."""
    result, position = [], 0
    while position < len(data):
        key, position = _varint(data, position)
        if key == 2 << 3 | 2:  # field 2 (`pieces`), length-delimited
            size, position = _varint(data, position)
            result.append(_piece(data, position, position + size))
            position += size
        else:
            position = _skip(data, position, key & 7)
    return result


def _piece(data, position, stop):
    """`(piece, id, begin, end)` of the `SentencePiece` message in
    `data[position:stop]`: fields `piece` = 1, `id` = 2, `begin` = 4, `end` = 5."""
    piece, numbers = "", {}
    while position < stop:
        key, position = _varint(data, position)
        if key & 7 == 0:  # a varint
            numbers[key >> 3], position = _varint(data, position)
        elif key == 1 << 3 | 2:  # field 1 (`piece`), length-delimited
            size, position = _varint(data, position)
            piece = data[position : position + size].decode("utf-8")
            position += size
        else:
            position = _skip(data, position, key & 7)
    return piece, numbers.get(2, 0), numbers.get(4, 0), numbers.get(5, 0)


def _skip(data, position, wire_type):
    """The position after a field value of `wire_type` at `position`."""
    if wire_type == 0:
        return _varint(data, position)[1]
    if wire_type == 2:
        size, position = _varint(data, position)
        return position + size
    if wire_type in (1, 5):  # 64- or 32-bit fixed width
        return position + (8 if wire_type == 1 else 4)
    raise ValueError(f"unexpected protobuf wire type {wire_type}")


def _varint(data, position):
    """The varint at `position` of `data`, and the position after it."""
    byte = data[position]
    if byte < 0x80:  # the common one-byte case
        return byte, position + 1
    value = shift = 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7
