"""Import statements: bert4keras -> nlp4keras, Keras 2's K -> nlp4keras' K,
tf.keras -> keras, Keras 2 module paths that moved; names nlp4keras lacks."""

import ast

from nlp4keras.migrate import hints, package
from nlp4keras.migrate.bindings import NEW_PACKAGE, OLD_PACKAGE, is_keras_backend_import

TF_KERAS = "tensorflow.keras"

_ENGINE_NAMES = frozenset({"Layer", "InputSpec", "Input", "InputLayer"})
_LAYER_SUBMODULES = (
    "core",
    "merge",
    "recurrent",
    "embeddings",
    "convolutional",
    "convolutional_recurrent",
    "normalization",
    "pooling",
    "wrappers",
    "advanced_activations",
    "noise",
    "local",
)
# Keras 2 module -> (Keras 3 module, the names it has there; None: all).
KERAS_MOVES = {f"keras.layers.{sub}": ("keras.layers", None) for sub in _LAYER_SUBMODULES}
KERAS_MOVES.update(
    {
        "keras.engine": ("keras.layers", _ENGINE_NAMES),
        "keras.engine.topology": ("keras.layers", _ENGINE_NAMES),
        "keras.engine.base_layer": ("keras.layers", _ENGINE_NAMES),
        "keras.engine.input_layer": ("keras.layers", _ENGINE_NAMES),
        "keras.engine.training": ("keras.models", frozenset({"Model"})),
        "keras.utils.np_utils": ("keras.utils", frozenset({"to_categorical", "normalize"})),
        "keras.utils.generic_utils": (
            "keras.utils",
            frozenset(
                {"Progbar", "get_custom_objects", "custom_object_scope", "CustomObjectScope"}
            ),
        ),
    }
)


def _k_import(alias_name):
    suffix = "" if alias_name == "K" else f" as {alias_name}"
    return f"from {NEW_PACKAGE}.backend import K{suffix}"


def _rewrite_whole(src, node, text, before):
    src.replace(src.start(node), src.end(node), text, node.lineno, "import", f"{before} -> {text}")


# ------------------------------------------------------------- checks
def _open_has_bert4keras_arguments(src):
    return any(
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "open"
        and any(kw.arg == "indexable" for kw in node.keywords)
        for node in src.nodes
    )


def _droppable(src, alias, sub):
    """A bert4keras name nlp4keras lacks that the script can just stop importing."""
    if alias.name not in hints.DROPPABLE_NAMES or alias.asname:
        return False
    if alias.name == "open" and _open_has_bert4keras_arguments(src):
        return False
    return not package.has_name(sub, alias.name)


def _drop_aliases(src, node, dropped):
    """Removes `dropped` from `from X import ...` (the statement, if nothing is left)."""
    names = ", ".join(alias.name for alias in dropped)
    why = "; ".join(f"{a.name}: {hints.DROPPABLE_NAMES[a.name]}" for a in dropped)
    message = f"dropped {names} from the import ({why})"
    kept = [alias for alias in node.names if alias not in dropped]
    if not kept:
        return src.remove_statement(node, "import", message)
    if node.lineno != node.end_lineno:
        return False
    start, end = src.start(node.names[0]), src.end(node.names[-1])
    text = ", ".join(src.segment(alias) for alias in kept)
    src.replace(start, end, text, node.lineno, "import", message)
    return True


def _check_old_package_names(src, node, module):
    """Report the names `from nlp4keras.X import ...` cannot import; drop
    those the script does not need."""
    sub = module[len(NEW_PACKAGE) + 1 :] if module != NEW_PACKAGE else ""
    if not package.has_module(sub):
        src.issue(node.lineno, "not in nlp4keras", hints.missing_module(module))
        return
    dropped = [alias for alias in node.names if _droppable(src, alias, sub)]
    if dropped and not _drop_aliases(src, node, dropped):
        dropped = []
    for alias in node.names:
        if alias.name == "*" or alias in dropped or package.has_name(sub, alias.name):
            continue
        src.issue(node.lineno, "not in nlp4keras", hints.missing_name(sub, alias.name))


def _check_keras_names(src, node, module):
    names = {alias.name for alias in node.names}
    if "multi_gpu_model" in names:
        src.issue(node.lineno, "multi_gpu_model", hints.MULTI_GPU_MODEL)
    for name in sorted(names & hints.GONE_LAYERS.keys()):
        src.issue(node.lineno, "not in Keras 3", hints.GONE_LAYERS[name], f"keras.layers.{name}")
    if module in hints.GONE_MODULES:
        src.issue(node.lineno, "not in Keras 3", hints.GONE_MODULES[module], module)


# -------------------------------------------------------- from-imports
def _from_old_package(src, node, span):
    start, end, module = span
    new = NEW_PACKAGE + module[len(OLD_PACKAGE) :]
    first = src.token_at(start)
    message = f"import {module} -> {new}"
    src.replace(first.start, first.end, NEW_PACKAGE, node.lineno, "import", message)
    _check_old_package_names(src, node, new)


def _from_keras_module(src, node, span, module):
    """`module` is the Keras module named (tensorflow.keras already read as keras)."""
    start, end, written = span
    if len(node.names) == 1 and is_keras_backend_import(module, node.names[0].name):
        alias = node.names[0]
        before = f"from {written} import {alias.name}"
        _rewrite_whole(src, node, _k_import(alias.asname or alias.name), before)
        return
    if any(is_keras_backend_import(module, a.name) for a in node.names):
        src.issue(node.lineno, "Keras 2 backend", hints.SPLIT_BACKEND_IMPORT)
    target, allowed = KERAS_MOVES.get(module, (module, None))
    names = {alias.name for alias in node.names}
    if allowed is not None and not names <= allowed:
        src.issue(node.lineno, "not in Keras 3", hints.moved_module(module, target, allowed))
        target = module
    if target != written:
        src.replace(start, end, target, node.lineno, "import", f"import {written} -> {target}")
    _check_keras_names(src, node, target)


def _from_tensorflow(src, node):
    keras_aliases = [a for a in node.names if a.name == "keras"]
    if not keras_aliases:
        return
    if len(node.names) > 1:
        src.issue(node.lineno, "tf.keras", hints.SPLIT_TF_KERAS_IMPORT)
        return
    alias = keras_aliases[0]
    text = "import keras" + (f" as {alias.asname}" if alias.asname not in (None, "keras") else "")
    _rewrite_whole(src, node, text, "from tensorflow import keras")


def _import_from(src, node):
    module = node.module or ""
    if node.level:
        return
    span = src.from_import_module_span(node)
    if span is None:
        return
    if module == OLD_PACKAGE or module.startswith(OLD_PACKAGE + "."):
        _from_old_package(src, node, span)
    elif module == NEW_PACKAGE or module.startswith(NEW_PACKAGE + "."):
        _check_old_package_names(src, node, module)
    elif module == "tensorflow":
        _from_tensorflow(src, node)
    elif module.startswith("tensorflow.python.keras"):
        src.issue(node.lineno, "tf.keras", hints.PRIVATE_TF_KERAS)
    elif module == TF_KERAS or module.startswith(TF_KERAS + "."):
        _from_keras_module(src, node, span, module[len("tensorflow.") :])
    elif module == "keras" or module.startswith("keras."):
        _from_keras_module(src, node, span, module)


# ------------------------------------------------------- plain imports
def _import(src, node):
    for alias in node.names:
        name = alias.name
        span = src.dotted_name_span(src.start(alias))
        if span is None:
            continue
        if name == OLD_PACKAGE or name.startswith(OLD_PACKAGE + "."):
            first = src.token_at(span[0])
            new = NEW_PACKAGE + name[len(OLD_PACKAGE) :]
            message = f"import {name} -> {new}"
            src.replace(first.start, first.end, NEW_PACKAGE, node.lineno, "import", message)
            if not package.has_module(new[len(NEW_PACKAGE) + 1 :]):
                src.issue(node.lineno, "not in nlp4keras", hints.missing_module(new))
        elif name in ("keras.backend", f"{TF_KERAS}.backend") and alias.asname:
            if len(node.names) == 1:
                _rewrite_whole(src, node, _k_import(alias.asname), f"import {name}")
            else:
                src.issue(node.lineno, "Keras 2 backend", hints.SPLIT_BACKEND_IMPORT)
        elif name == TF_KERAS and alias.asname == "keras" and len(node.names) == 1:
            _rewrite_whole(src, node, "import keras", f"import {name} as keras")
        elif name.startswith(TF_KERAS) and alias.asname:
            new = name[len("tensorflow.") :]
            src.replace(span[0], span[1], new, node.lineno, "import", f"import {name} -> {new}")
        elif name.startswith("tensorflow.python.keras"):
            src.issue(node.lineno, "tf.keras", hints.PRIVATE_TF_KERAS)


def _rename_package_uses(src):
    """After `import bert4keras.x`, code says bert4keras.x...: rename those."""
    for node in src.nodes:
        if isinstance(node, ast.Name) and node.id == OLD_PACKAGE:
            tok = src.name_token(src.start(node), OLD_PACKAGE)
            if tok is not None:
                message = f"{OLD_PACKAGE}. -> {NEW_PACKAGE}."
                src.replace(tok.start, tok.end, NEW_PACKAGE, node.lineno, "import", message)


def migrate_imports(src, bindings):
    for node in src.nodes:
        if isinstance(node, ast.ImportFrom):
            _import_from(src, node)
        elif isinstance(node, ast.Import):
            _import(src, node)
    if bindings.old_package_bound:
        _rename_package_uses(src)
