"""Padding and truncation of token sequences: `sequence_padding` and
`truncate_sequences` (bert4keras API), with bucketed padded lengths so JAX
compiles a bounded set of batch shapes."""

import numbers

import numpy as np

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
    """
    items = list(inputs)
    if not items:
        raise ValueError("sequence_padding got no inputs: pass at least one sequence")
    if mode not in _MODES:
        raise ValueError(f"mode must be 'post' or 'pre', got {mode!r}")
    if not _is_int(seq_dims) or seq_dims < 1:
        raise ValueError(f"seq_dims must be an int >= 1, got {seq_dims!r}")
    if length_buckets is not None and multiple_of is not None:
        raise ValueError("pass length_buckets or multiple_of, not both")
    lengths = _requested_lengths(length, seq_dims)
    buckets = _checked_buckets(length_buckets)
    if multiple_of is not None and (not _is_int(multiple_of) or multiple_of < 1):
        raise ValueError(f"multiple_of must be an int >= 1, got {multiple_of!r}")

    extents, leaves, trees = [0] * seq_dims, [], []
    for i, item in enumerate(items):
        try:
            trees.append(_measure(item, 0, seq_dims, extents, leaves))
        except ValueError as error:
            raise ValueError(f"inputs[{i}]: {error}") from None
    for dim in range(seq_dims):
        if lengths[dim] is None:
            lengths[dim] = _round_up(extents[dim], dim, buckets, multiple_of)

    tail = _common_tail(leaves, seq_dims)
    if dtype is None:
        dtype = _common_dtype(leaves, value)
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
    if not _is_int(maxlen) or maxlen < 0:
        raise ValueError(f"maxlen must be an int >= 0, got {maxlen!r}")
    if isinstance(indices, (list, tuple)):
        if len(indices) != len(sequences):
            raise ValueError(f"got {len(indices)} indices for {len(sequences)} sequences")
    else:
        indices = [indices] * len(sequences)
    lengths = [0 if s is None else len(s) for s in sequences]
    while sum(lengths) > maxlen:
        k = lengths.index(max(lengths))
        if not hasattr(sequences[k], "pop"):
            kind = type(sequences[k]).__name__
            raise TypeError(f"sequences are shortened in place and must be lists, got a {kind}")
        try:
            sequences[k].pop(indices[k])
        except IndexError:
            raise ValueError(
                f"cannot pop index {indices[k]} from sequence {k} of length {lengths[k]}"
            ) from None
        lengths[k] -= 1
    return list(sequences)


def _is_int(x):
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _requested_lengths(length, seq_dims):
    """`length` as a list with one int or None per padded dim."""
    if length is None or _is_int(length):
        lengths = [length] * seq_dims
    else:
        lengths = list(length)
        if len(lengths) != seq_dims:
            raise ValueError(f"length has {len(lengths)} entries, expected seq_dims={seq_dims}")
    for n in lengths:
        if n is not None and (not _is_int(n) or n < 0):
            raise ValueError(f"length entries must be ints >= 0 or None, got {length!r}")
    return [None if n is None else int(n) for n in lengths]


def _checked_buckets(length_buckets):
    if length_buckets is None:
        return None
    buckets = sorted(length_buckets)
    if not buckets or not all(_is_int(b) and b >= 1 for b in buckets):
        raise ValueError(f"length_buckets must be ints >= 1, got {length_buckets!r}")
    return buckets


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
    """`x` as a regular (non-object) ndarray, or None when it is ragged."""
    if isinstance(x, np.ndarray):
        return None if x.dtype == object else x
    try:
        block = np.asarray(x)
    except ValueError:  # nested sequences of unequal lengths
        return None
    return None if block.dtype == object else block


def _measure(x, depth, seq_dims, extents, leaves):
    """Record the extent of `x` along each padded dim; return it as a tree
    (an ndarray, or a list of subtrees where `x` is ragged)."""
    remaining = seq_dims - depth
    block = _as_block(x)
    if block is not None:
        if block.ndim < remaining and block.size:
            raise ValueError(
                f"expected a sequence nested {remaining} deep, got shape {block.shape}"
            )
        for k in range(min(remaining, block.ndim)):
            extents[depth + k] = max(extents[depth + k], block.shape[k])
        leaves.append((remaining, block))
        return block
    if remaining == 0:
        raise ValueError(f"dims after the first seq_dims={seq_dims} must have the same shape")
    children = [_measure(child, depth + 1, seq_dims, extents, leaves) for child in x]
    extents[depth] = max(extents[depth], len(children))
    return children


def _common_tail(leaves, seq_dims):
    """The shape every item shares after its first `seq_dims` dims."""
    tails = {block.shape[r:] for r, block in leaves if block.ndim >= r and block.size}
    if len(tails) > 1:
        raise ValueError(
            f"inputs differ in shape after the first seq_dims={seq_dims} dims: {sorted(tails)}"
        )
    if tails:
        return tails.pop()
    empty_tails = [block.shape[r:] for r, block in leaves if block.ndim >= r]
    return empty_tails[0] if empty_tails else ()


def _common_dtype(leaves, value):
    dtypes = [block.dtype for _, block in leaves if block.size]
    if not dtypes:
        return np.asarray(value).dtype
    dtype = np.result_type(*dtypes)
    if dtype.kind in "US":  # strings: leave room for the padding value
        dtype = np.result_type(dtype, np.asarray(value).dtype)
    return dtype


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
