"""Keras 2 calls with a certain Keras 3 spelling: fit_generator & co.,
optimizers' lr, tf.keras, the TF_KERAS switch, a few K functions."""

import ast

from nlp4keras.migrate import hints, package

GENERATOR_METHODS = {
    "fit_generator": "fit",
    "predict_generator": "predict",
    "evaluate_generator": "evaluate",
}
LOOP_METHODS = {"fit", "evaluate", "predict", *GENERATOR_METHODS}
LOOP_KEYWORDS_GONE = ("workers", "use_multiprocessing", "max_queue_size")

# K.x -> keras.ops.y where both take the same positional arguments.
K_TO_OPS = {
    "identity": "identity",
    "softsign": "softsign",
    "size": "size",
    "reverse": "flip",
    "map_fn": "map",
}
# K.x -> K.y (Keras 2 aliases).
K_ALIASES = {"get_variable_shape": "int_shape"}


# ---------------------------------------------------- fit_generator & co.
def _rename_keyword(src, kw, new, line, kind, message):
    tok = src.name_token(src.start(kw), kw.arg)
    if tok is not None:
        src.replace(tok.start, tok.end, new, line, kind, message)


def _loop_call(src, call):
    method = call.func.attr
    if any(kw.arg in LOOP_KEYWORDS_GONE for kw in call.keywords):
        gone = ", ".join(kw.arg for kw in call.keywords if kw.arg in LOOP_KEYWORDS_GONE)
        src.issue(call.lineno, "fit arguments", hints.FIT_WORKERS, f"{method}({gone}=)")
    new = GENERATOR_METHODS.get(method)
    if new is None:
        return
    tok = src.attribute_name_token(call.func)
    if tok is not None:
        src.replace(tok.start, tok.end, new, tok.start[0], "generator method", f"{method} -> {new}")
    keywords = {kw.arg: kw for kw in call.keywords}
    if "generator" in keywords and "x" in keywords:
        src.issue(call.lineno, "fit arguments", hints.GENERATOR_KEYWORD)
    elif "generator" in keywords:
        kw = keywords["generator"]
        _rename_keyword(src, kw, "x", kw.lineno, "generator method", f"{method}(generator=) -> x=")


# ------------------------------------------------------------ optimizers
def _optimizer_call(src, call):
    keywords = {kw.arg: kw for kw in call.keywords}
    if "decay" in keywords:
        src.issue(
            call.lineno, "optimizer", hints.OPTIMIZER_DECAY, f"{src.segment(call.func)}(decay=)"
        )
    if "lr" not in keywords:
        return
    if "learning_rate" in keywords:
        src.issue(call.lineno, "optimizer", hints.OPTIMIZER_BOTH_LR)
        return
    kw, name = keywords["lr"], src.segment(call.func)
    message = f"{name}(lr=) -> learning_rate="
    _rename_keyword(src, kw, "learning_rate", kw.lineno, "optimizer lr", message)


def _optimizer_lr_attribute(src, node):
    tok = src.attribute_name_token(node)
    if tok is not None:
        message = f"{src.segment(node)} -> .learning_rate"
        src.replace(tok.start, tok.end, "learning_rate", tok.start[0], "optimizer lr", message)


# ------------------------------------------------------------- TF_KERAS
def _is_environ(node):
    """os.environ, or environ imported from os."""
    return getattr(node, "attr", None) == "environ" or getattr(node, "id", None) == "environ"


def _is_tf_keras_switch(node):
    """os.environ['TF_KERAS'] = ... or os.environ.setdefault('TF_KERAS', ...)."""
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target = node.targets[0]
        return (
            isinstance(target, ast.Subscript)
            and _is_environ(target.value)
            and isinstance(target.slice, ast.Constant)
            and target.slice.value == "TF_KERAS"
        )
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        call = node.value
        return (
            getattr(call.func, "attr", None) == "setdefault"
            and _is_environ(call.func.value)
            and call.args
            and isinstance(call.args[0], ast.Constant)
            and call.args[0].value == "TF_KERAS"
        )
    return False


def _remove_tf_keras_switch(src, node):
    message = f"removed {src.segment(node)} (Keras 3 only: TF_KERAS means nothing)"
    if not src.remove_statement(node, "TF_KERAS", message):
        src.issue(node.lineno, "TF_KERAS", hints.TF_KERAS_SWITCH, src.segment(node))


# ------------------------------------------------------------- tf.keras
def _import_keras_after(src, tf_import):
    """Adds `import keras` after a top-level `import tensorflow as tf`."""
    line = src.lines[tf_import.end_lineno - 1]
    newline = line[len(line.rstrip("\r\n")) :] or "\n"
    pos = (tf_import.end_lineno + 1, 0)
    prefix = "" if line.endswith(("\n", "\r")) else newline
    message = "import keras (tf.keras is Keras 3's keras)"
    src.replace(pos, pos, f"{prefix}import keras{newline}", tf_import.lineno, "tf.keras", message)


def _top_level_tf_import(src, bindings):
    for node in src.tree.body:
        if isinstance(node, ast.Import) and len(node.names) == 1:
            alias = node.names[0]
            bound = alias.asname or alias.name
            if alias.name == "tensorflow" and bound in bindings.tf_names:
                return node if src.alone_on_its_lines(node) else None
    return None


def migrate_tf_keras(src, bindings):
    uses = [
        node
        for node in src.nodes
        if isinstance(node, ast.Attribute) and node.attr == "keras" and bindings.is_tf(node.value)
    ]
    if not uses:
        return
    tf_import = None if bindings.keras_bound else _top_level_tf_import(src, bindings)
    if not bindings.keras_bound and (tf_import is None or bindings.name_keras_used):
        for node in uses:
            src.issue(node.lineno, "tf.keras", hints.TF_KERAS_ATTRIBUTE, src.segment(node))
        return
    if tf_import is not None:
        _import_keras_after(src, tf_import)
    for node in uses:
        message = f"{src.segment(node)}. -> keras."
        src.replace(src.start(node), src.end(node), "keras", node.lineno, "tf.keras", message)


# -------------------------------------------------------------------- K
def _positional_only(call, most):
    return (
        not call.keywords
        and len(call.args) <= most
        and not any(isinstance(a, ast.Starred) for a in call.args)
    )


def _k_to_ops(src, node, call, bindings):
    """Rewrites K.x(...) -> keras.ops.y(...); False when it cannot."""
    if not (bindings.keras_bound and call is not None and _positional_only(call, 2)):
        return False
    new = f"keras.ops.{K_TO_OPS[node.attr]}"
    message = f"{src.segment(node)} -> {new} (not in nlp4keras' K)"
    src.replace(src.start(node), src.end(node), new, node.lineno, "K call", message)
    return True


def _k_attribute(src, node, call, bindings):
    name, known = node.attr, package.k_functions()
    unsupported = package.k_unsupported()
    if name == "gradients":
        return  # reported with its context by the person rules
    if name in unsupported:
        message = hints.K_FUNCTIONS.get(name) or unsupported[name]
        src.issue(node.lineno, f"K.{name}", message, f"K.{name}")
    elif name == "function" and call is not None and any(k.arg == "updates" for k in call.keywords):
        src.issue(node.lineno, "K.function(updates=)", hints.K_FUNCTION_UPDATES)
    elif known is package.ANY_NAME or name in known:
        return
    elif name in K_ALIASES and K_ALIASES[name] in known:
        tok = src.attribute_name_token(node)
        message = f"K.{name} -> K.{K_ALIASES[name]}"
        if tok is not None:
            src.replace(tok.start, tok.end, K_ALIASES[name], node.lineno, "K call", message)
    elif name in K_TO_OPS and _k_to_ops(src, node, call, bindings):
        return
    elif name in hints.K_FUNCTIONS:
        src.issue(node.lineno, f"K.{name}", hints.K_FUNCTIONS[name], f"K.{name}")
    else:
        src.issue(node.lineno, "K function missing", hints.K_MISSING, f"K.{name}")


def migrate_calls(src, bindings):
    for node in src.nodes:
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in LOOP_METHODS:
                _loop_call(src, node)
            if bindings.is_optimizer_class(func):
                _optimizer_call(src, node)
        elif isinstance(node, ast.Attribute):
            if node.attr == "lr" and bindings.is_optimizer(node.value):
                _optimizer_lr_attribute(src, node)
            elif bindings.is_k(node.value):
                parent = src.parents.get(node)
                call = parent if isinstance(parent, ast.Call) and parent.func is node else None
                _k_attribute(src, node, call, bindings)
    for statement in src.nodes:
        if isinstance(statement, ast.stmt) and _is_tf_keras_switch(statement):
            _remove_tf_keras_switch(src, statement)
