"""Padding and truncation of token sequences: `sequence_padding` and
`truncate_sequences` (bert4keras API), with bucketed padded lengths so JAX
compiles a bounded set of batch shapes."""

import numbers
from collections.abc import Mapping, Set

import numpy as np

from nlp4keras import validation

_MODES = ("post", "pre")


def sequence_padding(
    inputs,
    length=None,
    value=0,
    seq_dims=1,
    mode="post",
    length_buckets=None,
    multiple_of=None,
    dtype=None,
):
    """Pad a list of (possibly nested) sequences into one numpy array.

    The first `seq_dims` dims of every item are padded with `value` to
    `length` (an int for every dim, or one int or None per dim; None means the
    longest item along that dim) and longer items are truncated, keeping
    their first `length` entries in both modes, as bert4keras does. `mode`
    'post' pads after the data, 'pre' before it. Items may be lists, nested
    lists (ragged ones too) or arrays; dims after the first `seq_dims` must
    have the same shape in every item.

    For dims whose length is None, `length_buckets` (e.g. (32, 64, 128, 256,
    512)) rounds the padded length up to the smallest bucket that holds the
    longest item, and `multiple_of` rounds it up to a multiple; either keeps
    the set of batch shapes small, so JAX compiles each shape once. An item
    longer than the largest bucket raises ValueError rather than being cut:
    truncate first (tokenizer `maxlen`, `truncate_sequences`) or pass `length`.

    `dtype` defaults to the items' dtype (that of `value` when every item is
    empty). Returns an array of shape `(len(inputs), *lengths, *item_tail)`.

    Checked: items hold numbers or strings (not both; None, dicts and sets
    are errors naming where they are, e.g. `inputs[2][0]`); `value` is a
    number or a string that the output dtype holds unchanged (an int array
    is not padded with 1.5 or NaN, nor strings with 0); with `dtype`, the
    items must fit it too (no cut floats, no overflow).
    """
    who = "sequence_padding"
    items = _item_list(inputs, who)
    mode = validation.one_of(mode, "mode", _MODES, who)
    seq_dims = validation.integer(seq_dims, "seq_dims", who, minimum=1)
    if length_buckets is not None and multiple_of is not None:
        raise ValueError(f"{who}: pass length_buckets or multiple_of, not both")
    lengths = _requested_lengths(length, seq_dims, who)
    buckets = _checked_buckets(length_buckets, who)
    multiple_of = validation.optional_integer(multiple_of, "multiple_of", who, minimum=1)
    if dtype is not None:
        dtype = _checked_dtype(dtype, who)

    extents, leaves, trees = [0] * seq_dims, [], []
    for i, item in enumerate(items):
        trees.append(_measure(item, f"inputs[{i}]", 0, seq_dims, extents, leaves))
    for dim in range(seq_dims):
        if lengths[dim] is None:
            lengths[dim] = _round_up(extents[dim], dim, buckets, multiple_of)

    tail = _common_tail(leaves, seq_dims)
    if dtype is None:
        dtype = _common_dtype(leaves, value)
    else:
        _check_castable(leaves, dtype)
    _check_fill(value, dtype, who)
    out = np.full((len(items), *lengths, *tail), value, dtype=dtype)
    for i, tree in enumerate(trees):
        _place(tree, out[i], 0, seq_dims, lengths, mode == "pre")
    return out


def truncate_sequences(maxlen, indices, *sequences):
    """Shorten lists in place until their total length is at most `maxlen`.

    Each step pops one entry from the currently longest list (the first one
    on ties), at position `indices` (e.g. -1: from the right, 0: from the
    left), or `indices[k]` for the k-th list. Returns the lists, as a list.
    None counts as empty and is returned as None; unlike bert4keras, empty
    lists and None are kept in the result, so it unpacks like the arguments.
    """
    who = "truncate_sequences"
    maxlen = validation.integer(maxlen, "maxlen", who, minimum=0)
    indices = _pop_indices(indices, len(sequences), who)
    for k, sequence in enumerate(sequences):
        if sequence is not None and (
            isinstance(sequence, (str, bytes)) or not hasattr(sequence, "__len__")
        ):
            raise TypeError(
                f"{who}: sequence {k} must be a list (or None), got {sequence!r:.60} "
                f"({type(sequence).__name__})"
            )
    lengths = [0 if s is None else len(s) for s in sequences]
    while sum(lengths) > maxlen:
        k = lengths.index(max(lengths))
        if not hasattr(sequences[k], "pop"):
            kind = type(sequences[k]).__name__
            raise TypeError(
                f"{who}: sequences are shortened in place and must be lists, "
                f"got a {kind} (sequence {k})"
            )
        try:
            sequences[k].pop(indices[k])
        except IndexError:
            raise ValueError(
                f"{who}: cannot pop index {indices[k]} from sequence {k} of length {lengths[k]}"
            ) from None
        lengths[k] -= 1
    return list(sequences)


def _pop_indices(indices, count, who):
    """One int index per sequence."""
    if isinstance(indices, (list, tuple)):
        if len(indices) != count:
            raise ValueError(f"{who}: got {len(indices)} indices for {count} sequences")
        return [validation.integer(i, f"indices[{k}]", who) for k, i in enumerate(indices)]
    return [validation.integer(indices, "indices", who)] * count


def _item_list(inputs, who):
    """`inputs` as a non-empty list of items."""
    if isinstance(inputs, (str, bytes, Mapping, Set)) or not hasattr(inputs, "__iter__"):
        raise TypeError(
            f"{who}: `inputs` must be a list of sequences (lists or arrays), got "
            f"{inputs!r:.60} ({type(inputs).__name__})"
        )
    items = list(inputs)
    if not items:
        raise ValueError(f"{who} got no inputs: pass at least one sequence")
    return items


def _requested_lengths(length, seq_dims, who):
    """`length` as a list with one int or None per padded dim."""
    if isinstance(length, (list, tuple, np.ndarray)):
        lengths = list(length)
        if len(lengths) != seq_dims:
            raise ValueError(
                f"{who}: `length` has {len(lengths)} entries, expected seq_dims={seq_dims}"
            )
        names = [f"length[{k}]" for k in range(seq_dims)]
    else:
        lengths, names = [length] * seq_dims, ["length"] * seq_dims
    return [validation.optional_integer(n, name, who, minimum=0) for n, name in zip(lengths, names)]


def _checked_buckets(length_buckets, who):
    if length_buckets is None:
        return None
    return sorted(validation.integer_list(length_buckets, "length_buckets", who, minimum=1))


def _checked_dtype(dtype, who):
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(
            f"{who}: `dtype` {dtype!r} is not a numpy dtype (e.g. 'int32', 'float32')"
        ) from None


def _round_up(longest, dim, buckets, multiple_of):
    if multiple_of is not None:
        return -(-longest // multiple_of) * multiple_of
    if buckets is None:
        return longest
    for bucket in buckets:
        if bucket >= longest:
            return bucket
    raise ValueError(
        f"the longest input has {longest} entries along dim {dim}, more than the largest "
        f"length bucket {buckets[-1]}: truncate the inputs first, add a larger bucket, "
        "or pass length= to cut them"
    )


def _as_block(x):
    """`x` as a regular (non-object) ndarray, or None when it is ragged or
    holds other objects."""
    if isinstance(x, np.ndarray):
        return None if x.dtype == object else x
    try:
        block = np.asarray(x)
    except ValueError:  # nested sequences of unequal lengths
        return None
    return None if block.dtype == object else block


def _check_entry(x, path, remaining):
    """Refuse what is neither a sequence nor (past the padded dims) a scalar."""
    if isinstance(x, (list, tuple, np.ndarray)) or hasattr(x, "__array__"):
        return
    if isinstance(x, (str, bytes, numbers.Number)):
        if remaining <= 0:
            return
        wanted = f"a sequence (list or array) nested {remaining} deep"
    else:
        wanted = "a sequence (list or array), a number or a string"
    shown = f"{x!r:.60} ({type(x).__name__})"
    raise TypeError(f"sequence_padding: {path} is {shown}; expected {wanted}")


def _check_not_stringified(x, block, path):
    """numpy turns [1, 'a'] into ['1', 'a']: refuse numbers among strings."""
    if not _is_text(block.dtype) or isinstance(x, np.ndarray) or not block.size:
        return
    entries = np.asarray(x, dtype=object).ravel()
    number = next((e for e in entries if not isinstance(e, (str, bytes))), None)
    if number is not None:
        raise TypeError(
            f"sequence_padding: {path} mixes strings and numbers (e.g. {number!r}); "
            "convert them to one kind"
        )


def _measure(x, path, depth, seq_dims, extents, leaves):
    """Record the extent of `x` along each padded dim; return it as a tree
    (an ndarray, or a list of subtrees where `x` is ragged). `path` names
    `x` in errors, e.g. 'inputs[3][0]'."""
    remaining = seq_dims - depth
    _check_entry(x, path, remaining)
    block = _as_block(x)
    if block is not None:
        _check_not_stringified(x, block, path)
        if block.ndim < remaining and block.size:
            raise ValueError(
                f"sequence_padding: {path} has shape {block.shape}, expected a sequence "
                f"nested {remaining} deep (seq_dims={seq_dims})"
            )
        for k in range(max(0, min(remaining, block.ndim))):
            extents[depth + k] = max(extents[depth + k], block.shape[k])
        leaves.append((max(remaining, 0), block, path))
        return block
    children = [
        _measure(child, f"{path}[{j}]", depth + 1, seq_dims, extents, leaves)
        for j, child in enumerate(x)
    ]
    if remaining <= 0:
        raise ValueError(
            f"sequence_padding: {path} is ragged after the first seq_dims={seq_dims} dims, "
            "which must have the same shape in every item (raise seq_dims to pad them too)"
        )
    extents[depth] = max(extents[depth], len(children))
    return children


def _common_tail(leaves, seq_dims):
    """The shape every item shares after its first `seq_dims` dims."""
    tails = {}
    for r, block, path in leaves:
        if block.ndim >= r and block.size:
            tails.setdefault(block.shape[r:], path)
    if len(tails) > 1:
        (tail_a, path_a), (tail_b, path_b) = list(tails.items())[:2]
        raise ValueError(
            f"sequence_padding: inputs differ in shape after the first seq_dims={seq_dims} "
            f"dims: {path_a} has {tail_a} there, {path_b} has {tail_b}"
        )
    if tails:
        return next(iter(tails))
    empty_tails = [block.shape[r:] for r, block, _ in leaves if block.ndim >= r]
    return empty_tails[0] if empty_tails else ()


def _is_text(dtype):
    return dtype.kind in "US"


def _common_dtype(leaves, value):
    filled = [(block.dtype, path) for _, block, path in leaves if block.size]
    if not filled:
        return np.asarray(value).dtype
    texts = [path for dtype, path in filled if _is_text(dtype)]
    if texts and len(texts) < len(filled):
        number = next(path for dtype, path in filled if not _is_text(dtype))
        raise TypeError(
            f"sequence_padding: inputs mix strings ({texts[0]}) and numbers ({number}); "
            "convert them to one kind"
        )
    dtype = np.result_type(*(dtype for dtype, _ in filled))
    if _is_text(dtype) and isinstance(value, (str, bytes)):  # leave room for the value
        dtype = np.result_type(dtype, np.asarray(value).dtype)
    return dtype


def _fits(array, dtype):
    """Whether `array` (values, or a 0-d fill value) converts to `dtype`
    unchanged; float targets may round."""
    dtype = np.dtype(dtype)
    if _is_text(array.dtype) != _is_text(dtype):
        return False
    if dtype.kind in "fc":
        return True
    if _is_text(dtype):  # a narrower string dtype would cut them
        return bool(np.all(array.astype(dtype) == array))
    with np.errstate(invalid="ignore", over="ignore"):
        converted = array.astype(dtype)
        return bool(np.all(converted.astype(array.dtype) == array))


def _check_castable(leaves, dtype):
    """Items must fit the `dtype` asked for (no cut floats, no overflow)."""
    for _, block, path in leaves:
        if block.size and not np.can_cast(block.dtype, dtype) and not _fits(block, dtype):
            raise ValueError(
                f"sequence_padding: {path} holds {block.dtype} values that dtype {dtype} "
                "cannot hold unchanged; pass a wider dtype or convert the inputs"
            )


def _check_fill(value, dtype, who):
    """`value` must be a scalar that `dtype` holds unchanged."""
    fill = np.asarray(value) if value is not None else None
    if fill is None or fill.ndim != 0 or fill.dtype == object:
        raise TypeError(
            f"{who}: `value` must be a number or a string to pad with, got {value!r:.60} "
            f"({type(value).__name__})"
        )
    if _is_text(fill.dtype) != _is_text(np.dtype(dtype)):
        wanted = "a string such as ''" if _is_text(np.dtype(dtype)) else "a number"
        raise TypeError(
            f"{who}: `value` {value!r} cannot pad output of dtype {dtype}; pass {wanted}"
        )
    if not _fits(fill, dtype):
        raise ValueError(
            f"{who}: `value` {value!r} would change in the output dtype {dtype}; pass a "
            "value that dtype holds, or dtype= a wider one"
        )


def _place(tree, out, depth, seq_dims, lengths, pre):
    """Copy `tree` into `out` (its padded slot), truncating to `lengths`."""
    remaining = seq_dims - depth
    if isinstance(tree, np.ndarray):
        if not tree.size:
            return
        source, target = [], []
        for k in range(remaining):
            size = lengths[depth + k]
            n = min(tree.shape[k], size)
            source.append(slice(0, n))
            target.append(slice(size - n, size) if pre else slice(0, n))
        out[tuple(target)] = tree[tuple(source)]
        return
    children = tree[: lengths[depth]]
    start = lengths[depth] - len(children) if pre else 0
    for j, child in enumerate(children):
        _place(child, out[start + j], depth + 1, seq_dims, lengths, pre)
