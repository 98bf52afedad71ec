"""Lines no rule can rewrite: TF1 sessions and graphs, tf.distribute set up
for TF1 Keras, symbolic gradients, surgery on Keras 2 internals."""

import ast

from nlp4keras.migrate import hints
from nlp4keras.migrate.bindings import dotted

# Keras 2 Model internals bert4keras' training tricks replaced or read.
TRAIN_FUNCTION_ATTRIBUTES = {
    "train_function",
    "_make_train_function",
    "_make_predict_function",
    "_make_test_function",
    "_feed_inputs",
    "_feed_targets",
    "_feed_sample_weights",
}
TF1_NAMES = {
    "Session",
    "InteractiveSession",
    "ConfigProto",
    "GPUOptions",
    "placeholder",
    "get_default_graph",
    "reset_default_graph",
    "global_variables_initializer",
    "variable_scope",
    "get_variable",
}
DISTRIBUTION_PREFIXES = (
    "distribute",
    "tpu",
    "config.experimental_connect_to_host",
    "config.experimental_connect_to_cluster",
)


def _outermost_chains(nodes):
    """a.b.c attribute chains, each once (not its a.b part)."""
    inner = set()
    for node in nodes:
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute):
            inner.add(id(node.value))
    for node in nodes:
        if isinstance(node, ast.Attribute) and id(node) not in inner:
            yield node


def _enclosing(src, node, kinds):
    while node in src.parents:
        node = src.parents[node]
        if isinstance(node, kinds):
            return node
    return None


def _argument_names(function):
    args = function.args
    return {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}


def _gradients_hint(src, node, has_surgery):
    function = _enclosing(src, node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
    if function is not None and {"y_true", "y_pred"} <= _argument_names(function):
        return hints.GRADIENTS_IN_LOSS
    if isinstance(function, ast.FunctionDef) and function.name == "call":
        if _enclosing(src, function, ast.ClassDef) is not None:
            return hints.GRADIENTS_IN_LAYER
    return hints.GRADIENTS_IN_TRAIN_FUNCTION if has_surgery else hints.GRADIENTS


def _tf_issue(src, node, rest, has_surgery):
    line = node.lineno
    if rest == "compat.v1" or rest.startswith("compat.v1."):
        src.issue(line, "tf.compat.v1", hints.TF_COMPAT_V1, dotted(node))
    elif rest.split(".")[0] in TF1_NAMES:
        src.issue(line, "TF1 session", hints.SESSION, dotted(node))
    elif rest.startswith(DISTRIBUTION_PREFIXES):
        src.issue(line, "tf.distribute", hints.TF_DISTRIBUTE, dotted(node))
    elif rest.split(".")[0] == "contrib":
        src.issue(line, "tf.contrib", hints.TF_CONTRIB, dotted(node))
    elif rest == "gradients":
        hint = _gradients_hint(src, node, has_surgery)
        src.issue(line, "tf.gradients", hint, f"{dotted(node)}(...)")


def _model_attribute(src, node, bindings):
    if not bindings.is_model(node.value):
        return
    what = src.segment(node)
    if node.attr in TRAIN_FUNCTION_ATTRIBUTES:
        src.issue(node.lineno, "train_function", hints.TRAIN_FUNCTION, what)
    elif node.attr == "total_loss":
        src.issue(node.lineno, "model.total_loss", hints.TOTAL_LOSS, what)


def _has_train_function_surgery(nodes):
    return any(
        isinstance(node, ast.Attribute) and node.attr in TRAIN_FUNCTION_ATTRIBUTES for node in nodes
    )


def _tf1_imports(src):
    for node in src.nodes:
        if isinstance(node, ast.Import) and any(
            a.name.startswith("tensorflow.compat.v1") for a in node.names
        ):
            what = "import tensorflow.compat.v1"
            src.issue(node.lineno, "tf.compat.v1", hints.TF_COMPAT_V1, what)


def _in_source_order(nodes):
    nodes = [node for node in nodes if hasattr(node, "lineno")]
    return sorted(nodes, key=lambda node: (node.lineno, node.col_offset))


RANDOM_FUNCTIONS = {
    "random_binomial",
    "random_bernoulli",
    "random_normal",
    "random_uniform",
    "truncated_normal",
    "dropout",
}


def _unseeded_random_in_layer(src, bindings, node):
    """K.random_*(...) / K.dropout(...) without seed= in a class's `call`."""
    func = node.func
    if not (isinstance(func, ast.Attribute) and func.attr in RANDOM_FUNCTIONS):
        return
    if not bindings.is_k(func.value) or any(k.arg == "seed" for k in node.keywords):
        return
    function = _enclosing(src, node, (ast.FunctionDef,))
    if function is not None and function.name == "call":
        if _enclosing(src, function, ast.ClassDef) is not None:
            src.issue(node.lineno, "random op in a layer", hints.RANDOM_IN_LAYER, src.segment(func))


def _forfit_kept_for_next(src, nodes):
    """`x = gen.forfit()` in a file that calls next(): a Dataset on TensorFlow."""
    calls_next = any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "next"
        for n in nodes
    )
    for node in nodes:
        if calls_next and isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            func = node.value.func
            if isinstance(func, ast.Attribute) and func.attr == "forfit":
                src.issue(node.lineno, "forfit() and next()", hints.FORFIT_NEXT, src.segment(func))


def report_person_lines(src, bindings):
    has_surgery = _has_train_function_surgery(src.nodes)
    _tf1_imports(src)
    _forfit_kept_for_next(src, src.nodes)
    for node in src.nodes:
        if isinstance(node, ast.Call):
            _unseeded_random_in_layer(src, bindings, node)
    for node in _in_source_order(src.nodes):
        if isinstance(node, ast.Attribute):
            _model_attribute(src, node, bindings)
            if node.attr == "gradients" and bindings.is_k(node.value):
                hint = _gradients_hint(src, node, has_surgery)
                src.issue(node.lineno, "K.gradients", hint, f"{src.segment(node)}(...)")
            if node.attr == "multi_gpu_model":
                src.issue(node.lineno, "multi_gpu_model", hints.MULTI_GPU_MODEL)
        elif isinstance(node, ast.Name) and node.id == "multi_gpu_model":
            src.issue(node.lineno, "multi_gpu_model", hints.MULTI_GPU_MODEL)
    for chain in _outermost_chains(src.nodes):
        name = dotted(chain)
        base = name.split(".")[0] if name else None
        if base in bindings.tf_names:
            _tf_issue(src, chain, name[len(base) + 1 :], has_surgery)
