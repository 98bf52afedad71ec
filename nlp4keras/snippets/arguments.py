"""bert4keras' decorators that add or remove keyword arguments of a method
(mostly `__init__`), for subclasses that change what their parent takes."""

import functools

from nlp4keras import validation


def insert_arguments(**arguments):
    """Give the decorated method extra keyword arguments with defaults:
    each is popped from the call's keyword arguments (else its default is
    used), stored as an attribute of `self`, and not passed on.

        class Electra(BERT):
            @insert_arguments(with_discriminator=False)
            def __init__(self, **kwargs):
                super().__init__(**kwargs)  # self.with_discriminator is set
    """

    def decorator(method):
        _check_method(method, "insert_arguments")

        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            for name, default in arguments.items():
                setattr(self, name, kwargs.pop(name, default))
            return method(self, *args, **kwargs)

        return wrapper

    return decorator


def delete_arguments(*arguments):
    """Refuse the named keyword arguments in calls of the decorated method
    (a TypeError like Python's for an unexpected keyword argument), for a
    subclass that does not support options of its parent."""
    for k, name in enumerate(arguments):
        validation.string(name, f"arguments[{k}]", "delete_arguments")

    def decorator(method):
        _check_method(method, "delete_arguments")

        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            for name in arguments:
                if name in kwargs:
                    raise TypeError(
                        f"{type(self).__name__} got an unexpected keyword argument {name!r}"
                    )
            return method(self, *args, **kwargs)

        return wrapper

    return decorator


def _check_method(method, who):
    if not callable(method):
        validation.instance(method, "method", (), who, what="a function to decorate")
