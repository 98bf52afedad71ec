"""Argument checks for every public entry of nlp4keras.

Each check returns the value (normalised: a Python int, float, str...) or
raises an error that names the argument and who takes it, shows the value
received and says what is allowed:

    integer(maxlen, "maxlen", "Tokenizer.encode", minimum=1)
    -> TypeError: Tokenizer.encode: `maxlen` must be an integer >= 1, got '10' (str)

A wrong type raises `InvalidType` (a TypeError), a value out of range
`InvalidValue` (a ValueError); both carry the argument's name in `.argument`,
so a caller can add where the value came from (e.g. a config file's key).
Numbers are always finite (NaN and inf are refused).
"""

import math
import numbers

import numpy as np


class ArgumentError(Exception):
    """Base of the errors below; `argument` is the name of the argument checked."""

    def __init__(self, message, argument=None):
        super().__init__(message)
        self.argument = argument


class InvalidType(ArgumentError, TypeError):
    pass


class InvalidValue(ArgumentError, ValueError):
    pass


def _subject(name, who):
    return f"{who}: `{name}`" if who else f"`{name}`"


def _shown(value):
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} ({type(value).__name__})"


def _bounds(minimum=None, maximum=None, above=None, below=None):
    rules = []
    if minimum is not None:
        rules.append(f">= {minimum}")
    if above is not None:
        rules.append(f"> {above}")
    if maximum is not None:
        rules.append(f"<= {maximum}")
    if below is not None:
        rules.append(f"< {below}")
    return " and ".join(rules)


def _in_bounds(value, minimum, maximum, above, below):
    return (
        (minimum is None or value >= minimum)
        and (maximum is None or value <= maximum)
        and (above is None or value > above)
        and (below is None or value < below)
    )


def is_integer(value):
    """A Python or numpy integer (not a bool), or a float with a whole value."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, numbers.Integral):
        return True
    return isinstance(value, numbers.Real) and math.isfinite(value) and value == int(value)


def integer(value, name, who=None, minimum=None, maximum=None, above=None, below=None):
    """`value` as an int (2.0 is accepted as 2; 2.5, '2', True and None are not)."""
    rule = _bounds(minimum, maximum, above, below)
    expected = f"an integer {rule}".rstrip()
    if not is_integer(value):
        raise InvalidType(f"{_subject(name, who)} must be {expected}, got {_shown(value)}", name)
    value = int(value)
    if not _in_bounds(value, minimum, maximum, above, below):
        raise InvalidValue(f"{_subject(name, who)} must be {expected}, got {value!r}", name)
    return value


def optional_integer(value, name, who=None, **bounds):
    """None, or `integer(value, ...)`."""
    return None if value is None else integer(value, name, who, **bounds)


def real(value, name, who=None, minimum=None, maximum=None, above=None, below=None):
    """`value` as a finite float (a Python or numpy real number, not a bool)."""
    rule = _bounds(minimum, maximum, above, below)
    expected = f"a finite real number {rule}".rstrip()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InvalidType(f"{_subject(name, who)} must be {expected}, got {_shown(value)}", name)
    value = float(value)
    if not math.isfinite(value) or not _in_bounds(value, minimum, maximum, above, below):
        raise InvalidValue(f"{_subject(name, who)} must be {expected}, got {value!r}", name)
    return value


def probability(value, name, who=None, allow_one=False):
    """A rate in [0, 1) (or [0, 1] with allow_one); None means 0."""
    if value is None:
        return 0.0
    if allow_one:
        return real(value, name, who, minimum=0, maximum=1)
    return real(value, name, who, minimum=0, below=1)


def boolean(value, name, who=None):
    """A Python or numpy bool (1 and 'yes' are not)."""
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidType(f"{_subject(name, who)} must be True or False, got {_shown(value)}", name)
    return bool(value)


def string(value, name, who=None, allow_empty=False):
    if not isinstance(value, str):
        raise InvalidType(f"{_subject(name, who)} must be a string, got {_shown(value)}", name)
    if not allow_empty and not value:
        raise InvalidValue(f"{_subject(name, who)} must be a non-empty string", name)
    return value


def one_of(value, name, options, who=None):
    """`value` if it is one of `options` (compared with ==), else a ValueError
    listing them, with the closest as a suggestion."""
    from nlp4keras.messages import did_you_mean

    try:
        if value in options:
            return value
    except TypeError:  # unhashable value against a set or dict
        pass
    hint = did_you_mean(value, [str(o) for o in options]) if isinstance(value, str) else ""
    allowed = ", ".join(repr(o) for o in options)
    raise InvalidValue(
        f"{_subject(name, who)} must be one of {allowed}, got {_shown(value)}.{hint}", name
    )


def callable_or_none(value, name, who=None):
    if value is not None and not callable(value):
        raise InvalidType(
            f"{_subject(name, who)} must be callable or None, got {_shown(value)}", name
        )
    return value


def instance(value, name, types, who=None, what=None):
    """`value` if isinstance(value, types); `what` describes the types in the message."""
    if not isinstance(value, types):
        if what is None:
            names = types if isinstance(types, tuple) else (types,)
            what = " or ".join(t.__name__ for t in names)
        raise InvalidType(f"{_subject(name, who)} must be {what}, got {_shown(value)}", name)
    return value


def activation(value, name, who=None):
    """An activation: a name Keras or nlp4keras knows, or a callable (None is refused:
    it would silently mean 'linear'; say 'linear')."""
    if callable(value):
        return value
    if not isinstance(value, str) or not value:
        raise InvalidType(
            f"{_subject(name, who)} must be an activation name (e.g. 'gelu', 'relu', "
            f"'linear') or a callable, got {_shown(value)}",
            name,
        )
    from nlp4keras.backend import get_activation

    try:
        get_activation(value)
    except (ValueError, TypeError) as error:
        raise InvalidValue(f"{_subject(name, who)}: {error}", name) from None
    return value


def integer_list(value, name, who=None, minimum=0, allow_empty=False):
    """A 1-D list/tuple/array of integers >= minimum, as a list of ints."""
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
        raise InvalidType(
            f"{_subject(name, who)} must be a list of integers, got {_shown(value)}", name
        )
    items = list(value)
    if not items and not allow_empty:
        raise InvalidValue(f"{_subject(name, who)} must not be empty", name)
    for index, item in enumerate(items):
        if not is_integer(item):
            raise InvalidType(
                f"{_subject(f'{name}[{index}]', who)} must be an integer, got {_shown(item)}", name
            )
        if item < minimum:
            raise InvalidValue(
                f"{_subject(f'{name}[{index}]', who)} must be >= {minimum}, got {item!r}", name
            )
    return [int(item) for item in items]
