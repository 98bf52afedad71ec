"""Vocab files: one token a line, id = line number."""

from nlp4keras.tokenizers.chars import is_cjk_character, is_punctuation, stem


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
        if token not in startswith and not is_redundant(token)
    ]
    return {token: i for i, token in enumerate(kept)}, [token_dict[t] for t in kept]


def is_redundant(token):
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
