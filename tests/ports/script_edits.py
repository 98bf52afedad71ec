"""The edits a port check makes to a bert4keras example, and nothing else:

1. its import lines: `bert4keras` -> `nlp4keras` (`change_imports`);
2. optionally what `nlp4keras migrate --write` does (`migrate`);
3. exact string replacements from the test's table: paths to the user's files and smaller
   epochs/batches (`replace_exactly`). One that matches nothing is an error, so the table
   cannot silently go out of date.
"""

import contextlib
import io
import re

# `from bert4keras.x import ...` / `import bert4keras.x`, at any indentation.
IMPORT_LINE = re.compile(r"^(\s*(?:from|import)\s+)bert4keras\b", re.MULTILINE)


class TableOutOfDate(AssertionError):
    """A replacement of the port check's table no longer matches the script."""


def change_imports(text):
    """The script with `bert4keras` -> `nlp4keras` in its import lines only."""
    new_text, count = IMPORT_LINE.subn(r"\1nlp4keras", text)
    if count == 0:
        raise TableOutOfDate("the script imports nothing from bert4keras")
    return new_text


def migrate(path):
    """Run `nlp4keras migrate PATH --write` (its CLI entry point, in this process); returns
    (exit status, report). Status 1 only means that some lines need a person."""
    from nlp4keras import cli

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        status = cli.main(["migrate", str(path), "--write"])
    if status not in (0, 1):
        raise RuntimeError(f"nlp4keras migrate failed on {path} (exit {status}):\n{out.getvalue()}")
    return status, out.getvalue()


def replace_exactly(text, replacements, script):
    """Apply (old, new) string replacements, each to every occurrence; each must occur."""
    for old, new in replacements:
        if old not in text:
            raise TableOutOfDate(
                f"{script}: {old!r} is not in the script (after the import change/migrate): "
                "update the port check's table"
            )
        text = text.replace(old, new)
    return text
