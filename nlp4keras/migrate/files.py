"""Reading and writing scripts as they are: their encoding (PEP 263 cookie,
BOM) and line endings are kept."""

import io
import tokenize
from pathlib import Path

PYTHON_SUFFIXES = (".py", ".pyw")


class ScriptError(Exception):
    """A file that cannot be migrated (missing, not Python, not parsing)."""


def _is_python_file(path, data):
    if path.suffix in PYTHON_SUFFIXES:
        return True
    first_line = data.split(b"\n", 1)[0]
    return first_line.startswith(b"#!") and b"python" in first_line


def python_files(arguments):
    """(path, error or None) for each argument; a folder gives its .py files."""
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*.py")
                if not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not found:
                yield path, ScriptError(f"{path}: no .py files in this folder")
            yield from ((p, None) for p in found)
        elif path.exists():
            yield path, None
        else:
            yield path, ScriptError(f"{path}: no such file or folder")


def read_script(path):
    """(text, encoding). Raises ScriptError when it is not a Python script."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ScriptError(f"{path}: cannot be read ({error.strerror})") from error
    if not _is_python_file(path, data):
        raise ScriptError(f"{path}: not a Python file (a .py file, or a python #! script)")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        text = data.decode(encoding)
    except (SyntaxError, UnicodeDecodeError, LookupError) as error:
        raise ScriptError(f"{path}: not a Python file (cannot decode it: {error})") from error
    return text, encoding


def parse_error(path, error):
    where = f"line {error.lineno}: " if error.lineno else ""
    return ScriptError(
        f"{path}: does not parse as Python 3 ({where}{error.msg}); a Python 2 script needs "
        "converting first"
    )


def write_script(path, text, encoding):
    Path(path).write_bytes(text.encode(encoding))
