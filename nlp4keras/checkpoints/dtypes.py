"""What kind of numbers a checkpoint tensor holds, and what a weight accepts.

numpy gives bfloat16 and the float8 types of ml_dtypes the kind 'V' (raw
bytes), so their kind alone cannot tell a float from a structured record.
"""

import numpy as np

# ml_dtypes' number types, by dtype name (their numpy kind is 'V').
_EXTRA_FLOATS = ("bfloat16", "float8_", "float6_", "float4_")
_EXTRA_INTEGERS = ("int1", "int2", "int4", "uint1", "uint2", "uint4")

FLOAT_NAMES = "floating-point tensors (float16, bfloat16, float32 or float64)"


def kind(dtype):
    """'float', 'complex', 'integer', 'bool' or None for a numpy dtype that
    holds no numbers (object, strings, bytes, records)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return "float"
    if dtype.kind == "c":
        return "complex"
    if dtype.kind in "iu":
        return "integer"
    if dtype.kind == "b":
        return "bool"
    if dtype.kind == "V" and dtype.names is None:
        if dtype.name.startswith(_EXTRA_FLOATS):
            return "float"
        if dtype.name in _EXTRA_INTEGERS:
            return "integer"
    return None


def weight_kind(dtype_name):
    """The kind of a Keras variable's dtype name ('float32', 'int64', ...), or None."""
    name = str(dtype_name)
    if name.startswith(("float", "bfloat")):
        return "float"
    if name.startswith(("int", "uint")):
        return "integer"
    if name == "bool":
        return "bool"
    return None


def why_not_assignable(dtype, weight_dtype):
    """None if a tensor of `dtype` may be assigned to a weight of
    `weight_dtype`, else what the weight takes ("only integer tensors"). Floats of any precision go
    into float weights (a bfloat16 checkpoint into float32 weights is fine);
    integers, bools and complex numbers are never silently turned into floats."""
    wanted = weight_kind(weight_dtype)
    if wanted is None:
        return None
    try:
        found = kind(dtype)
    except TypeError:
        found = None
    if found == wanted:
        return None
    if wanted == "float":
        return f"only {FLOAT_NAMES}"
    return f"only {wanted} tensors"


def describe(dtype):
    """A dtype's name for messages ('int64', 'bfloat16', 'object')."""
    try:
        return np.dtype(dtype).name
    except TypeError:
        return str(dtype)
