"""Vocab files: one token a line, id = line number."""

import codecs
import os
from collections.abc import Mapping

from nlp4keras import validation
from nlp4keras.tokenizers.chars import is_cjk_character, is_punctuation, stem
from nlp4keras.tokenizers.checks import refuse

_SHOWN = 5  # how many bad lines or ids an error lists


def load_vocab(dict_path, encoding="utf-8", simplified=False, startswith=None):
    """`{token: id}` from a vocab file (one token a line, id = line number).

    A token is its line without the line break and surrounding spaces or
    tabs (other whitespace, such as '\\u2028' in bert-base-chinese, is kept:
    it is the token). An empty line, a token on two lines, or bytes that are
    not `encoding` raise ValueError naming the file and the line.

    `simplified=True` returns `(new_token_dict, keep_tokens)` instead, without
    the tokens `Tokenizer` never emits, `startswith` tokens first, and
    `keep_tokens[new_id] == old_id` (to slice an embedding matrix).
    """
    who = "load_vocab"
    _check_path(dict_path, "dict_path", who)
    _check_encoding(encoding, who)
    simplified = validation.boolean(simplified, "simplified", who)
    if startswith is not None:
        startswith = _token_sequence(startswith, "startswith", who)
    tokens = _read_tokens(dict_path, encoding)
    if not tokens:
        raise ValueError(f"vocab file is empty: {dict_path}")
    token_dict = _index_tokens(tokens, dict_path)
    if simplified:
        return _simplify_vocab(token_dict, startswith or [])
    return token_dict


def save_vocab(dict_path, token_dict, encoding="utf-8"):
    """Write `token_dict` as a vocab file, tokens in id order. Its ids must be
    0 to len - 1 (ids are line numbers) and each token must read back as
    itself (no line breaks, no surrounding spaces or tabs)."""
    who = "save_vocab"
    _check_path(dict_path, "dict_path", who)
    _check_encoding(encoding, who)
    token_dict = check_token_dict(token_dict, "token_dict", who)
    tokens = sorted(token_dict, key=token_dict.get)
    _check_line_numbers([token_dict[token] for token in tokens], who)
    for token in tokens:
        if _line_token(token) != token or "\n" in token or "\r" in token:
            raise ValueError(
                f"{who}: token {token!r} (id {token_dict[token]}) would not read back as "
                "itself: a vocab file cannot hold line breaks or surrounding spaces and tabs"
            )
    text = "".join(token + "\n" for token in tokens)
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError as error:
        token = tokens[text.count("\n", 0, error.start)]
        raise ValueError(
            f"{who}: token {token!r} cannot be written in encoding {encoding!r} ({error.reason})"
        ) from None
    with open(dict_path, "wb") as writer:
        writer.write(data)


def check_token_dict(token_dict, name, who):
    """`token_dict` as a dict of non-empty str tokens to distinct int ids >= 0."""
    if not isinstance(token_dict, Mapping):
        refuse(token_dict, name, who, "a vocab file path or a {token: id} dict")
    if not token_dict:
        raise ValueError(f"{who}: `{name}` is empty")
    ids = list(token_dict.values())
    if (  # the common case, checked at C speed
        set(map(type, token_dict)) == {str}
        and set(map(type, ids)) == {int}
        and "" not in token_dict
        and min(ids) >= 0
        and len(set(ids)) == len(ids)
    ):
        return dict(token_dict)
    checked, owner = {}, {}
    for token, i in token_dict.items():
        if not isinstance(token, str) or not token:
            error = TypeError if not isinstance(token, str) else ValueError
            raise error(
                f"{who}: `{name}` holds the token {token!r} ({type(token).__name__}); "
                "tokens must be non-empty str"
            )
        if type(i) is not int or i < 0:
            i = validation.integer(i, f"{name}[{token!r}]", who, minimum=0)
        if i in owner:
            raise ValueError(
                f"{who}: `{name}` gives id {i} to both {owner[i]!r} and {token!r}; "
                "each token needs its own id"
            )
        owner[i] = token
        checked[token] = i
    return checked


def _check_path(path, name, who):
    validation.instance(path, name, (str, os.PathLike), who, what="a file path (str or Path)")


def _check_encoding(encoding, who):
    validation.string(encoding, "encoding", who)
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ValueError(f"{who}: `encoding` {encoding!r} is not a known text encoding") from None


def _token_sequence(tokens, name, who):
    if isinstance(tokens, str) or not isinstance(tokens, (list, tuple)):
        refuse(tokens, name, who, "a list of str tokens")
    for k, token in enumerate(tokens):
        validation.string(token, f"{name}[{k}]", who)
    return list(tokens)


def _line_token(line):
    """The token of one line: without its line break, spaces and tabs."""
    return line.strip(" \t\n")


def _read_tokens(path, encoding):
    """The token of each line of the vocab file at `path`."""
    try:
        with open(path, encoding=encoding) as reader:
            tokens = [line.strip(" \t\n") for line in reader]  # as _line_token
    except FileNotFoundError:
        raise FileNotFoundError(f"vocab file not found: {path}") from None
    except UnicodeDecodeError as error:
        raise _decode_error(path, encoding, error) from None
    if tokens and tokens[0].startswith("\ufeff"):  # a byte order mark
        tokens[0] = _line_token(tokens[0][1:])
    return tokens


def _decode_error(path, encoding, error):
    """A ValueError naming the line and byte offset of undecodable bytes."""
    with open(path, "rb") as file:
        data = file.read()
    try:
        data.decode(encoding)
        offset, bad = error.start, error.object[error.start : error.end]
    except UnicodeDecodeError as located:  # offsets into the whole file
        offset, bad = located.start, data[located.start : located.end]
    line = data.count(b"\n", 0, offset) + 1
    return ValueError(
        f"vocab file {path} is not valid {encoding}: bytes {bad!r} at byte offset {offset} "
        f"(line {line}); pass the file's encoding with encoding=..."
    )


def _index_tokens(tokens, path):
    """`{token: line index}`; empty lines and repeated tokens are errors."""
    token_dict = dict(zip(tokens, range(len(tokens))))
    if len(token_dict) == len(tokens) and "" not in token_dict:
        return token_dict
    empty = [n for n, token in enumerate(tokens, 1) if not token]
    if empty:
        shown = ", ".join(map(str, empty[:_SHOWN])) + (", ..." if len(empty) > _SHOWN else "")
        raise ValueError(
            f"vocab file {path} has {len(empty)} empty line(s) (line {shown}): a vocab file "
            "has one token a line and ids are line numbers, so remove trailing empty lines "
            "and give others a placeholder token such as [unused1]"
        )
    token_dict = {}
    for index, token in enumerate(tokens):
        first = token_dict.setdefault(token, index)
        if first != index:
            raise ValueError(
                f"vocab file {path} has the token {token!r} on line {first + 1} and again on "
                f"line {index + 1}: the second could never be produced; give it another token"
            )
    return token_dict


def _check_line_numbers(ids, who):
    """Ids in order must be 0, 1, 2...: a vocab file has no room for gaps."""
    for expected, i in enumerate(ids):
        if i != expected:
            raise ValueError(
                f"{who}: the ids of `token_dict` must be 0 to {len(ids) - 1} (ids are line "
                f"numbers in a vocab file), but id {expected} is missing"
            )


def _simplify_vocab(token_dict, startswith):
    missing = [token for token in startswith if token not in token_dict]
    if missing:
        raise ValueError(f"startswith tokens not in the vocab: {missing}")
    kept = list(dict.fromkeys(startswith))
    kept += [
        token
        for token in sorted(token_dict, key=token_dict.get)
        if token not in startswith and not is_redundant(token)
    ]
    return {token: i for i, token in enumerate(kept)}, [token_dict[t] for t in kept]


def is_redundant(token):
    """Multi-char tokens with a CJK or punctuation char are never emitted, as
    those chars are always split off alone (so [CLS] etc. need `startswith`)."""
    if len(token) < 2:
        return False
    return any(is_cjk_character(ch) or is_punctuation(ch) for ch in stem(token))
