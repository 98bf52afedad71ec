"""File names given to save_weights / load_weights / save / load_model /
ModelCheckpoint: Keras 3 chooses the format by the ending (`.weights.h5` for
weights, `.keras` or legacy `.h5` for models). Plain string literals are
rewritten; anything computed is reported."""

import ast
import tokenize

from nlp4keras.migrate import hints
from nlp4keras.migrate.bindings import call_name, dotted

WEIGHTS_ENDINGS = (".weights.h5", ".weights.json")
MODEL_ENDINGS = (".keras", ".h5", ".hdf5")
_KERAS_SAVING_MODULES = ("models", "saving")


# ------------------------------------------------ renames (pure, on values)
def weights_rename(path):
    """(tail to drop, tail to add) that makes `path` a Keras 3 weights file, or None."""
    if path.endswith(WEIGHTS_ENDINGS):
        return None
    if path.endswith(".weights"):
        return "", ".h5"
    for legacy in (".h5", ".hdf5"):
        if path.endswith(legacy):
            return legacy, ".weights.h5"
    return "", ".weights.h5"


def model_rename(path):
    return None if path.endswith(MODEL_ENDINGS) else ("", ".keras")


def load_weights_rename(path, saved):
    """Legacy .h5 files still load, unless this script saves that name itself."""
    if path not in saved and path.endswith(WEIGHTS_ENDINGS + MODEL_ENDINGS):
        return None
    return weights_rename(path)


def renamed(path, rename):
    removed, added = rename
    return path[: len(path) - len(removed)] + added


# --------------------------------------------------------- the calls
def _argument(call, position, keyword="filepath"):
    for kw in call.keywords:
        if kw.arg == keyword:
            return kw.value
    return call.args[position] if len(call.args) > position else None


def _keyword_value(call, name):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def _is_keras_function(func, name, bindings):
    """`name(...)` imported from Keras, or keras.models.name / keras.saving.name."""
    if isinstance(func, ast.Name):
        return func.id == name and name in bindings.keras_names
    text = dotted(func) or ""
    return text.endswith(tuple(f"{module}.{name}" for module in _KERAS_SAVING_MODULES))


def _checkpoint_kind(call):
    """'weights' or 'model' for a ModelCheckpoint, None when unknown."""
    flag = _keyword_value(call, "save_weights_only")
    if flag is None and len(call.args) > 4:
        flag = call.args[4]
    if flag is None:
        return "model"
    if isinstance(flag, ast.Constant) and isinstance(flag.value, bool):
        return "weights" if flag.value else "model"
    return None


def path_calls(src, bindings):
    """(call, path node, kind, label) for each call that takes a file name;
    kind: 'save weights', 'load weights', 'save model', 'load model'."""
    for node in src.nodes:
        if not isinstance(node, ast.Call):
            continue
        func, name = node.func, call_name(node)
        if isinstance(func, ast.Attribute) and name in ("save_weights", "load_weights"):
            kind = "save weights" if name == "save_weights" else "load weights"
            yield node, _argument(node, 0), kind, name
        elif isinstance(func, ast.Attribute) and name == "save" and bindings.is_model(func.value):
            yield node, _argument(node, 0), "save model", "save"
        elif name == "save_model" and _is_keras_function(func, name, bindings):
            yield node, _argument(node, 1), "save model", name
        elif name == "load_model" and _is_keras_function(func, name, bindings):
            yield node, _argument(node, 0), "load model", name
        elif name == "ModelCheckpoint":
            kind = _checkpoint_kind(node)
            if kind is None:
                what = "ModelCheckpoint(save_weights_only=?)"
                src.issue(node.lineno, "file name", hints.weights_path(), what)
            else:
                yield node, _argument(node, 0), f"save {kind}", name


def _string_value(node):
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _literal_tail(node):
    """The known end of a computed path: 'x' + '.h5', f'{d}/m.keras'."""
    if isinstance(node, ast.JoinedStr) and node.values:
        return _string_value(node.values[-1])
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _string_value(node.right) or _literal_tail(node.right)
    return None


def _string_token(src, node):
    """The one STRING token of a plain (not bytes, not f) literal, or None."""
    tok = src.token_at(src.start(node))
    if tok is None or tok.type != tokenize.STRING or tok.end != src.end(node):
        return None
    prefix = tok.string[: len(tok.string) - len(tok.string.lstrip("rRuUbBfF"))]
    return None if set(prefix.lower()) & {"b", "f"} else tok


def _rewrite_literal(src, node, rename, kind, label):
    path, tok = node.value, _string_token(src, node)
    removed, added = rename
    quote_len = 3 if tok and tok.string.endswith(('"""', "'''")) else 1
    body_end = len(tok.string) - quote_len if tok else 0
    if tok is None or not tok.string[:body_end].endswith(removed):
        src.issue(node.lineno, "file name", _needs_ending(kind), f"{label}({path!r})")
        return
    text = tok.string[: body_end - len(removed)] + added + tok.string[body_end:]
    message = f"{label} path {path!r} -> {renamed(path, rename)!r}"
    what = "weights file name" if kind.endswith("weights") else "model file name"
    src.replace(tok.start, tok.end, text, node.lineno, what, message)


def _needs_ending(kind, known=""):
    return (hints.weights_path if kind.endswith("weights") else hints.model_path)(known)


def _renamed_where_bound(bindings, node, kind):
    """A variable bound to a literal ending in .weights (migrate_weights_strings renames it)."""
    if not (kind.endswith("weights") and isinstance(node, ast.Name)):
        return False
    value, _ = bindings.strings.get(node.id, ("", 0))
    return value.endswith(".weights")


def _known_value(bindings, node):
    if isinstance(node, ast.Name) and node.id in bindings.strings:
        value, line = bindings.strings[node.id]
        return f" ({node.id} = {value!r} at line {line})"
    return ""


def _ending_ok(kind, tail):
    if tail is None:
        return False
    if kind == "save weights":
        return tail.endswith(WEIGHTS_ENDINGS)
    if kind == "load weights":
        return tail.endswith(WEIGHTS_ENDINGS + MODEL_ENDINGS)
    return tail.endswith(MODEL_ENDINGS)


def _rename_for(kind, path, saved):
    if path.endswith(("/", "\\")):
        return "folder"
    if kind == "save weights":
        return weights_rename(path)
    if kind == "load weights":
        return load_weights_rename(path, saved["weights"])
    if kind == "save model" or path in saved["models"]:
        return model_rename(path)
    return None if path.endswith(MODEL_ENDINGS) else "unreadable"


def _saved_paths(calls):
    saved = {"weights": set(), "models": set()}
    for _, path, kind, _ in calls:
        value = _string_value(path)
        if value is not None and kind.startswith("save"):
            saved["weights" if kind == "save weights" else "models"].add(value)
    return saved


def migrate_paths(src, bindings):
    """Rewrites literal file names; returns the ids of the literals handled."""
    calls = list(path_calls(src, bindings))
    saved, handled = _saved_paths(calls), set()
    for call, path, kind, label in calls:
        if _keyword_value(call, "save_format") is not None:
            src.issue(call.lineno, "save_format", hints.SAVE_FORMAT, f"{label}(save_format=)")
        if kind == "load weights" and _keyword_value(call, "by_name") is not None:
            src.issue(
                call.lineno, "load_weights(by_name=)", hints.BY_NAME, "load_weights(by_name=)"
            )
        value = _string_value(path)
        if path is None:
            continue
        handled.update(id(part) for part in ast.walk(path))
        if value is None:
            if not _ending_ok(kind, _literal_tail(path)) and not _renamed_where_bound(
                bindings, path, kind
            ):
                known = _known_value(bindings, path)
                what = f"{label}({src.segment(path)})"
                src.issue(call.lineno, "file name", _needs_ending(kind, known), what)
            continue
        rename = _rename_for(kind, value, saved)
        if rename == "folder":
            src.issue(call.lineno, "file name", hints.DIRECTORY_PATH, f"{label}({value!r})")
        elif rename == "unreadable":
            src.issue(call.lineno, "file name", hints.LOAD_MODEL_PATH, f"{label}({value!r})")
        elif rename is not None:
            _rewrite_literal(src, path, rename, kind, label)
    return handled


def migrate_weights_strings(src, handled):
    """Other literals ending in .weights: names kept in a variable or passed to
    a callback for a later save_weights/load_weights (bert4keras' Evaluator
    pattern). bert4keras scripts use that ending for weights files only, so
    they are renamed too, and the report lists each one."""
    for node in src.nodes:
        value = _string_value(node)
        if value and value.endswith(".weights") and id(node) not in handled:
            _rewrite_literal(src, node, weights_rename(value), "save weights", "a weights file")
