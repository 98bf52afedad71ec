"""Sequence matching helpers of bert4keras: `string_matching`,
`longest_common_substring` and `longest_common_subsequence`."""

import re

from nlp4keras import validation


def string_matching(s, keywords):
    """Whether at least one of `keywords` (regular expressions, searched
    anywhere in `s` with `re.search`) matches `s`."""
    who = "string_matching"
    validation.instance(s, "s", str, who, what="a str")
    if isinstance(keywords, str) or not hasattr(keywords, "__iter__"):
        what = "a list of str patterns (a single str would be read one character at a time)"
        validation.instance(keywords, "keywords", (), who, what=what)
    for k, keyword in enumerate(keywords):
        validation.instance(keyword, f"keywords[{k}]", str, who, what="a str pattern")
        try:
            if re.search(keyword, s):
                return True
        except re.error as error:
            raise ValueError(
                f"{who}: `keywords[{k}]` {keyword!r} is not a valid regular expression: {error}"
            ) from None
    return False


def longest_common_substring(source, target):
    """The longest run of consecutive items shared by two sequences (str,
    list, tuple...; items compared with ==).

    Returns `(length, (i, i_end, j, j_end))` with
    `source[i:i_end] == target[j:j_end]` of that length; `(0, (0, 0, 0, 0))`
    when nothing is shared. Of several longest runs, the one ending first in
    `source` (then first in `target`) is returned, as in bert4keras."""
    source, target = _sequences(source, target, "longest_common_substring")
    best, span = 0, (0, 0, 0, 0)
    previous = [0] * (len(target) + 1)  # run lengths ending at the previous source item
    for i, item in enumerate(source, 1):
        current = [0] * (len(target) + 1)
        for j, other in enumerate(target, 1):
            if item == other:
                current[j] = previous[j - 1] + 1
                if current[j] > best:
                    best = current[j]
                    span = (i - best, i, j - best, j)
        previous = current
    return best, span


def longest_common_subsequence(source, target):
    """The longest sequence of items found in both sequences in the same
    order, not necessarily consecutive (items compared with ==).

    Returns `(length, mapping)`: `mapping` lists `(i, j)` pairs, increasing
    in both, with `source[i] == target[j]`, one pair per item of the common
    subsequence. Of several longest ones, bert4keras' choice is returned:
    built from the ends, it matches equal last items, and otherwise drops
    the last item of `target` only when that keeps a longer match, else the
    last item of `source`."""
    source, target = _sequences(source, target, "longest_common_subsequence")
    # table[i][j]: the length for source[:i] and target[:j]
    table = [[0] * (len(target) + 1) for _ in range(len(source) + 1)]
    for i, item in enumerate(source, 1):
        row, above = table[i], table[i - 1]
        for j, other in enumerate(target, 1):
            row[j] = above[j - 1] + 1 if item == other else max(row[j - 1], above[j])
    length, mapping = table[-1][-1], []
    i, j = len(source), len(target)
    while len(mapping) < length:
        if source[i - 1] == target[j - 1]:
            mapping.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif table[i][j - 1] > table[i - 1][j]:
            j -= 1
        else:
            i -= 1
    return length, mapping[::-1]


def _sequences(source, target, who):
    """Both arguments must be sequences (indexable, with a length)."""
    for name, value in (("source", source), ("target", target)):
        if not (hasattr(value, "__len__") and hasattr(value, "__getitem__")) or isinstance(
            value, dict
        ):
            validation.instance(value, name, (), who, what="a sequence (str, list or tuple)")
    return source, target
