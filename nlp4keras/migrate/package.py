"""What the installed nlp4keras provides, read from its source files (nothing
is imported): the names each module defines or re-exports, the functions of
the Keras 2 style `K` namespace, and which of those only raise
NotImplementedError."""

import ast
import functools
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]
PACKAGE = PACKAGE_DIR.name

# Returned when a module's names cannot be listed statically (a module-level
# __getattr__, a star import from elsewhere): every name counts as present.
ANY_NAME = object()

# Modules a user would import from; searched when a name is not where a
# bert4keras script looks for it.
PUBLIC_MODULES = (
    "backend",
    "layers",
    "losses",
    "models",
    "optimizers",
    "snippets",
    "tokenizers",
    "training",
    "callbacks",
)

K_MODULE = "keras2_backend"
# Names a module gives by design from another module: nlp4keras.backend
# exports K, the keras2_backend module (as bert4keras.backend exported K).
EXPORTED_MODULES = {("backend", "K"): K_MODULE}
_STUB_FACTORY = "_not_in_keras3"


def _module_file(module):
    """The file of `nlp4keras.<module>` (dots allowed), or None."""
    path = PACKAGE_DIR.joinpath(*module.split(".")) if module else PACKAGE_DIR
    if path.is_dir() and (path / "__init__.py").is_file():
        return path / "__init__.py"
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    return None


def _parse(module):
    path = _module_file(module)
    return None if path is None else (path, ast.parse(path.read_text(encoding="utf-8")))


def _module_statements(body):
    """Top-level statements, including those inside if / try / with blocks."""
    for node in body:
        yield node
        for field in ("body", "orelse", "finalbody", "handlers"):
            inner = getattr(node, field, None)
            if isinstance(inner, list) and not isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                yield from _module_statements(inner)


def _assigned_names(target):
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, (ast.Tuple, ast.List)):
        for item in target.elts:
            yield from _assigned_names(item)


def _relative_target(module, node, is_package):
    """`nlp4keras`-relative module named by a `from ... import *`, or None."""
    if node.level == 0:
        if node.module == PACKAGE or (node.module or "").startswith(PACKAGE + "."):
            return node.module[len(PACKAGE) + 1 :]
        return None
    parts = module.split(".") if module else []
    parts = parts if is_package else parts[:-1]
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def _names_of_statement(module, node, is_package, defined, imported):
    """Adds the names `node` binds; False when the module's names are dynamic."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        defined.add(node.name)
        return node.name != "__getattr__"
    if isinstance(node, ast.Import):
        imported.update((a.asname or a.name).split(".")[0] for a in node.names)
    elif isinstance(node, ast.ImportFrom):
        for alias in node.names:
            if alias.name != "*":
                defined.add(alias.asname or alias.name)
                continue
            target = _relative_target(module, node, is_package)
            names = ANY_NAME if target is None else public_names(target)
            if names is None or names is ANY_NAME:
                return False
            defined.update(names)
    elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            defined.update(_assigned_names(target))
    return True


@functools.cache
def _scan(module):
    """(defined names, names bound by plain imports) of `nlp4keras.<module>`;
    None when there is no such module, ANY_NAME when it cannot be listed."""
    parsed = _parse(module)
    if parsed is None:
        return None
    path, tree = parsed
    is_package = path.name == "__init__.py"
    defined, imported = set(), set()
    for node in _module_statements(tree.body):
        if not _names_of_statement(module, node, is_package, defined, imported):
            return ANY_NAME
    if is_package:
        defined.update(p.stem for p in path.parent.iterdir() if p.suffix == ".py" or p.is_dir())
    return frozenset(defined), frozenset(imported)


def public_names(module):
    """Names `from nlp4keras.<module> import NAME` can import, not counting
    modules it imports for itself (`keras`, `np`); None / ANY_NAME as _scan."""
    scanned = _scan(module)
    return scanned if scanned is None or scanned is ANY_NAME else scanned[0]


def importable_names(module):
    scanned = _scan(module)
    return scanned if scanned is None or scanned is ANY_NAME else scanned[0] | scanned[1]


def has_module(module):
    return _module_file(module) is not None


def has_name(module, name):
    if (module, name) in EXPORTED_MODULES:
        return has_module(EXPORTED_MODULES[module, name])
    names = importable_names(module)
    return names is ANY_NAME or (names is not None and name in names)


def modules_defining(name):
    """The public nlp4keras modules from which `name` can be imported."""
    found = []
    for module in PUBLIC_MODULES:
        names = public_names(module)
        if names is not None and names is not ANY_NAME and name in names:
            found.append(f"{PACKAGE}.{module}")
    return found


@functools.cache
def k_functions():
    """The names nlp4keras' K provides (ANY_NAME when they cannot be listed)."""
    return importable_names(K_MODULE) or frozenset()


@functools.cache
def k_unsupported():
    """{name: message} for the K functions that only raise NotImplementedError."""
    parsed = _parse(K_MODULE)
    if parsed is None:
        return {}
    stubs = {}
    for node in parsed[1].body:
        call = getattr(node, "value", None)
        if not (isinstance(node, ast.Assign) and isinstance(call, ast.Call)):
            continue
        if not (isinstance(call.func, ast.Name) and call.func.id == _STUB_FACTORY):
            continue
        message = call.args[1] if len(call.args) > 1 else None
        text = message.value if isinstance(message, ast.Constant) else ""
        for target in node.targets:
            for name in _assigned_names(target):
                stubs[name] = str(text)
    return stubs
