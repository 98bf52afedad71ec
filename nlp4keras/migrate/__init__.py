"""`nlp4keras migrate`: rewrite a bert4keras script for nlp4keras.

    new_text, report = migrate_source(text)

rewrites what is certain (imports, weights/model file names, fit_generator &
co., optimizers' lr=, tf.keras, TF_KERAS, a few K functions) token by token,
keeping comments and formatting, and reports with line numbers what needs a
person (symbolic gradients, train_function surgery, TF1 sessions,
tf.distribute, computed file names, names nlp4keras lacks). Running it on its
own output changes nothing.
"""

import ast

from nlp4keras.migrate.api import migrate_calls, migrate_tf_keras
from nlp4keras.migrate.bindings import find_bindings
from nlp4keras.migrate.files import ScriptError, python_files, read_script, write_script
from nlp4keras.migrate.imports import migrate_imports
from nlp4keras.migrate.paths import migrate_paths, migrate_weights_strings
from nlp4keras.migrate.person import report_person_lines
from nlp4keras.migrate.report import Report, Summary
from nlp4keras.migrate.source import REVIEWED_MARK, Change, Issue, Source

__all__ = [
    "REVIEWED_MARK",
    "Change",
    "Issue",
    "Report",
    "ScriptError",
    "Summary",
    "migrate_source",
    "python_files",
    "read_script",
    "write_script",
]


def migrate_source(text):
    """(migrated text, Report). Raises SyntaxError when `text` is not Python 3."""
    src = Source(text)
    bindings = find_bindings(src.tree, src.nodes)
    migrate_imports(src, bindings)
    handled = migrate_paths(src, bindings)
    migrate_weights_strings(src, handled)
    migrate_calls(src, bindings)
    migrate_tf_keras(src, bindings)
    report_person_lines(src, bindings)
    new_text, changes, issues = src.result()
    try:
        if new_text != text:
            ast.parse(new_text)
    except SyntaxError as error:  # a bug here, never the script's fault
        raise RuntimeError(f"nlp4keras migrate produced invalid Python: {error}") from error
    return new_text, Report(changes, issues)
