"""The package's argument checks (nlp4keras.validation) on hostile values:
each bad value gives the documented error class and a message naming who,
the argument, the value and the rule; odd but legal values are normalised."""

import math

import numpy as np
import pytest

from nlp4keras import validation as check

pytestmark = pytest.mark.backend_free  # tests/lanes.py: first lane of `make test` only

BAD = [
    # (check, value, keyword arguments, error class, message)
    (check.integer, "10", {}, check.InvalidType, r"f: `n` must be an integer, got '10' \(str\)"),
    (check.integer, 2.5, {}, check.InvalidType, r"must be an integer, got 2.5 \(float\)"),
    (check.integer, True, {}, check.InvalidType, r"got True \(bool\)"),
    (check.integer, None, {}, check.InvalidType, r"got None \(NoneType\)"),
    (check.integer, math.nan, {}, check.InvalidType, r"got nan"),
    (check.integer, math.inf, {}, check.InvalidType, r"got inf"),
    (check.integer, 0, {"minimum": 1}, check.InvalidValue, r"an integer >= 1, got 0"),
    (check.integer, 7, {"below": 7}, check.InvalidValue, r"an integer < 7, got 7"),
    (check.integer, np.int64(-1), {"minimum": 0}, check.InvalidValue, r">= 0, got -1"),
    (check.real, math.nan, {}, check.InvalidValue, r"a finite real number, got nan"),
    (check.real, -math.inf, {}, check.InvalidValue, r"a finite real number, got -inf"),
    (check.real, "0.1", {}, check.InvalidType, r"got '0.1' \(str\)"),
    (check.real, np.bool_(True), {}, check.InvalidType, r"\(bool_?\)"),
    (check.real, 0.0, {"above": 0}, check.InvalidValue, r"> 0, got 0.0"),
    (check.probability, 1.0, {}, check.InvalidValue, r">= 0 and < 1, got 1.0"),
    (check.probability, 1.5, {"allow_one": True}, check.InvalidValue, r"<= 1, got 1.5"),
    (check.boolean, 1, {}, check.InvalidType, r"must be True or False, got 1 \(int\)"),
    (check.boolean, "False", {}, check.InvalidType, r"must be True or False, got 'False'"),
    (check.string, b"x", {}, check.InvalidType, r"must be a string, got b'x' \(bytes\)"),
    (check.string, "", {}, check.InvalidValue, r"must be a non-empty string"),
    (check.callable_or_none, 3, {}, check.InvalidType, r"must be callable or None, got 3"),
    (check.activation, None, {}, check.InvalidType, r"must be an activation name"),
    (check.activation, "gleu", {}, check.InvalidValue, r"unknown activation 'gleu'"),
    (check.integer_list, "123", {}, check.InvalidType, r"must be a list of integers"),
    (check.integer_list, [], {}, check.InvalidValue, r"must not be empty"),
    (check.integer_list, [1, 2.5], {}, check.InvalidType, r"`n\[1\]` must be an integer"),
    (check.integer_list, [3, -1], {}, check.InvalidValue, r"`n\[1\]` must be >= 0, got -1"),
]


@pytest.mark.parametrize(
    "function, value, options, error, message",
    BAD,
    ids=[f"{b[0].__name__}-{b[1]!r}-{i}" for i, b in enumerate(BAD)],
)
def test_error_check(function, value, options, error, message):
    with pytest.raises(error, match=message) as caught:
        function(value, "n", "f", **options)
    assert caught.value.argument == "n"
    # Callers that catch the built-in classes keep working.
    assert isinstance(caught.value, TypeError if error is check.InvalidType else ValueError)


def test_error_one_of_suggests_the_closest():
    with pytest.raises(check.InvalidValue, match=r"one of 'left', 'right'.*Did you mean 'right'"):
        check.one_of("rigth", "side", ("left", "right"), "f")
    with pytest.raises(check.InvalidValue, match=r"got \[1\] \(list\)"):
        check.one_of([1], "side", {"left", "right"}, "f")  # unhashable against a set


def test_error_instance_names_what_is_expected():
    with pytest.raises(check.InvalidType, match=r"f: `d` must be a dict of arrays, got 3 \(int\)"):
        check.instance(3, "d", dict, "f", "a dict of arrays")


def test_error_long_values_are_shortened_in_messages():
    with pytest.raises(check.InvalidType) as caught:
        check.integer("x" * 1000, "n")
    assert len(str(caught.value)) < 200 and "..." in str(caught.value)


LEGAL = [
    (check.integer, 2.0, {}, 2),
    (check.integer, np.int32(5), {"minimum": 5}, 5),
    (check.integer, np.float64(3.0), {}, 3),
    (check.optional_integer, None, {}, None),
    (check.real, np.float32(0.5), {}, 0.5),
    (check.real, 3, {}, 3.0),
    (check.probability, None, {}, 0.0),
    (check.probability, 1, {"allow_one": True}, 1.0),
    (check.boolean, np.bool_(False), {}, False),
    (check.string, "", {"allow_empty": True}, ""),
    (check.activation, "gelu", {}, "gelu"),
    (check.integer_list, np.array([4, 0]), {}, [4, 0]),
    (check.integer_list, (1.0, 2), {}, [1, 2]),
]


@pytest.mark.parametrize(
    "function, value, options, expected",
    LEGAL,
    ids=[f"{b[0].__name__}-{b[1]!r}-{i}" for i, b in enumerate(LEGAL)],
)
def test_output_check(function, value, options, expected):
    result = function(value, "n", "f", **options)
    assert result == expected and type(result) is type(expected)
