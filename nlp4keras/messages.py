"""Helpers for messages to users: suggestions and warnings that point at the
user's code rather than at nlp4keras internals."""

import difflib
import os
import sys
import warnings

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def did_you_mean(word, options):
    """' Did you mean 'x'?' for the closest option, or ''."""
    close = difflib.get_close_matches(str(word), sorted(options), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def warn_user(message, category=UserWarning):
    """warnings.warn attributed to the first caller outside nlp4keras."""
    level, frame = 2, sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)
