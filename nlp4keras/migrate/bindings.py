"""What the names of a script refer to, found once per script: the K
namespace, TensorFlow, keras, optimizer classes and instances, models, and
module-level string constants. Scopes are not told apart (a name bound to K
anywhere counts as K everywhere), which suits scripts."""

import ast
from dataclasses import dataclass, field

OLD_PACKAGE = "bert4keras"
NEW_PACKAGE = "nlp4keras"
BACKENDS = {f"{OLD_PACKAGE}.backend", f"{NEW_PACKAGE}.backend"}
# Modules whose `backend` is Keras 2's K (rewritten to nlp4keras' K).
KERAS_MODULES = ("keras", "tensorflow.keras", "tensorflow.python.keras")
OPTIMIZER_MODULES = {
    "keras.optimizers",
    "tensorflow.keras.optimizers",
    f"{OLD_PACKAGE}.optimizers",
    f"{NEW_PACKAGE}.optimizers",
}
MODEL_FACTORIES = {
    "Model",
    "Sequential",
    "build_transformer_model",
    "load_model",
    "AdversarialModel",
    "adversarial_training",
}


def call_name(node):
    """The last name of a call's function: `f` for f(...), a.b.f(...)."""
    func = node.func if isinstance(node, ast.Call) else node
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def dotted(node):
    """'a.b.c' for an expression a.b.c made of names only, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def is_keras_backend_import(module, name):
    return f"{module}.{name}" in {f"{m}.backend" for m in KERAS_MODULES}


@dataclass
class Bindings:
    k_names: set = field(default_factory=set)
    tf_names: set = field(default_factory=set)
    keras_bound: bool = False
    name_keras_used: bool = False
    optimizer_classes: set = field(default_factory=set)
    optimizer_objects: set = field(default_factory=set)
    model_names: set = field(default_factory=set)
    keras_names: set = field(default_factory=set)
    old_package_bound: bool = False
    strings: dict = field(default_factory=dict)

    def is_k(self, node):
        return isinstance(node, ast.Name) and node.id in self.k_names

    def is_tf(self, node):
        return isinstance(node, ast.Name) and node.id in self.tf_names

    def is_optimizer_class(self, func):
        if isinstance(func, ast.Name):
            return func.id in self.optimizer_classes
        name = dotted(func)
        return name is not None and name.rsplit(".", 1)[0].endswith("optimizers")

    def is_optimizer(self, node):
        if isinstance(node, ast.Name):
            return node.id in self.optimizer_objects or node.id == "optimizer"
        return isinstance(node, ast.Attribute) and node.attr == "optimizer"

    def is_model(self, node):
        name = node.id if isinstance(node, ast.Name) else getattr(node, "attr", None)
        return name is not None and ("model" in name.lower() or name in self.model_names)


def _bind_import(b, node):
    for alias in node.names:
        bound = alias.asname or alias.name.split(".")[0]
        if alias.name in ("tensorflow", "tensorflow.compat.v1") and alias.asname is not None:
            b.tf_names.add(bound)
        elif alias.name == "tensorflow":
            b.tf_names.add("tensorflow")
        elif alias.name in KERAS_MODULES and alias.asname in (None, "keras"):
            b.keras_bound = True
        elif alias.name in {f"{m}.backend" for m in KERAS_MODULES} and alias.asname:
            b.k_names.add(alias.asname)
        elif alias.name.split(".")[0] == OLD_PACKAGE and alias.asname is None:
            b.old_package_bound = True


def _bind_import_from(b, node):
    module = node.module or ""
    from_keras = module.split(".")[0] == "keras" or module.startswith("tensorflow.keras")
    for alias in node.names:
        bound = alias.asname or alias.name
        if from_keras:
            b.keras_names.add(bound)
        if module in BACKENDS and alias.name == "K":
            b.k_names.add(bound)
        elif module == f"{NEW_PACKAGE}" and alias.name == "keras2_backend":
            b.k_names.add(bound)
        elif is_keras_backend_import(module, alias.name):
            b.k_names.add(bound)
        elif alias.name == "keras" and bound == "keras":
            b.keras_bound = True
        elif module in OPTIMIZER_MODULES:
            b.optimizer_classes.add(bound)


def _bind_assignment(b, node, module_level):
    targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
    value = node.value
    if isinstance(value, ast.Call):
        name = call_name(value)
        if name and name.startswith("extend_with_"):
            b.optimizer_classes.update(targets)
        elif b.is_optimizer_class(value.func):
            b.optimizer_objects.update(targets)
        elif name in MODEL_FACTORIES:
            b.model_names.update(targets)
    elif isinstance(value, ast.Constant) and isinstance(value.value, str) and module_level:
        for target in targets:
            # Only names assigned once keep a known value.
            b.strings[target] = None if target in b.strings else (value.value, node.lineno)


def find_bindings(tree, nodes):
    """The bindings of a module `tree`; `nodes`: all its nodes."""
    b = Bindings()
    module_level = set(map(id, tree.body))
    for node in nodes:
        if isinstance(node, ast.Import):
            _bind_import(b, node)
        elif isinstance(node, ast.ImportFrom):
            _bind_import_from(b, node)
        elif isinstance(node, ast.Assign):
            _bind_assignment(b, node, id(node) in module_level)
        elif isinstance(node, ast.Name) and node.id == "keras":
            b.name_keras_used = True
        elif isinstance(node, ast.arg) and node.arg == "keras":
            b.name_keras_used = True
    b.strings = {k: v for k, v in b.strings.items() if v is not None}
    return b
