"""The `nlp4keras` command (also `python -m nlp4keras`)."""

import argparse
import difflib
import sys

from nlp4keras.migrate import ScriptError, Summary, migrate_source, python_files, read_script
from nlp4keras.migrate.files import parse_error, write_script

MIGRATE_DESCRIPTION = """\
Rewrite bert4keras scripts for nlp4keras, and say what needs a person.

Rewritten (only what is certain; comments and formatting are kept):
  imports bert4keras.* -> nlp4keras.*, keras.backend as K -> nlp4keras' K,
  tensorflow.keras / tf.keras -> keras, Keras 2 module paths that moved;
  file names: save_weights/load_weights('x.weights') -> 'x.weights.h5',
  model.save('x') -> 'x.keras', also load_model and ModelCheckpoint;
  fit_generator/predict_generator/evaluate_generator -> fit/predict/evaluate;
  optimizers' lr= -> learning_rate=, optimizer.lr -> optimizer.learning_rate;
  os.environ['TF_KERAS'] = '1' removed; a few K functions -> keras.ops.

Reported with line numbers for a person: K.gradients / tf.gradients,
model.train_function surgery, model.total_loss, TF1 sessions and
tf.compat.v1, tf.distribute set up for TF1 Keras, multi_gpu_model, file
names that are computed, K functions and bert4keras names nlp4keras lacks.
A line with the comment `# nlp4keras: ok` is not reported again.

Without --write nothing is written. Running it twice changes nothing more.
"""

MIGRATE_EPILOG = """\
exit status: 0 nothing needs a person, 1 something does, 2 a usage error or a
file that is missing, not Python or does not parse (the others are still done).
"""


def _parser():
    parser = argparse.ArgumentParser(prog="nlp4keras", description="nlp4keras tools.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    migrate = commands.add_parser(
        "migrate",
        help="rewrite bert4keras scripts for nlp4keras",
        description=MIGRATE_DESCRIPTION,
        epilog=MIGRATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    migrate.add_argument(
        "scripts", nargs="+", metavar="SCRIPT", help="a bert4keras script, or a folder of them"
    )
    migrate.add_argument(
        "--write",
        action="store_true",
        help="rewrite the files in place; no backup files are made (commit or copy them first)",
    )
    migrate.add_argument(
        "--diff",
        action="store_true",
        help="print a unified diff of the changes to stdout (the report then goes to "
        "stderr); writes nothing unless --write is given too",
    )
    return parser


def _unified_diff(old, new, name):
    name = name.lstrip("/")
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{name}", f"b/{name}"
    )
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )


def _migrate_one(path, args, summary, out):
    text, encoding = read_script(path)
    try:
        new_text, report = migrate_source(text)
    except SyntaxError as error:
        raise parse_error(path, error) from error
    changed = new_text != text
    if args.diff and changed:
        sys.stdout.write(_unified_diff(text, new_text, path.as_posix()))
    if args.write and changed:
        write_script(path, new_text, encoding)
    lines = report.lines(str(path)) or [f"{path}: nothing to change"]
    print("\n".join(lines), file=out)
    summary.add(report, changed)


def _migrate(args):
    summary = Summary()
    out = sys.stderr if args.diff else sys.stdout
    for path, error in python_files(args.scripts):
        if error is None:
            try:
                _migrate_one(path, args, summary, out)
            except ScriptError as script_error:
                error = script_error
        if error is not None:
            summary.errors += 1
            print(f"error: {error}", file=sys.stderr)
    print(f"nlp4keras migrate: {summary.line(args.write)}", file=out)
    for line in summary.detail():
        print(f"  {line}", file=out)
    if not args.write and summary.changed:
        print("  (nothing written: --write rewrites the files, --diff shows the changes)", file=out)
    return 2 if summary.errors else 1 if summary.person_files else 0


def _tolerant_output():
    """Reports quote the scripts: never fail on a terminal that cannot show them."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    _tolerant_output()
    return _migrate(args)
