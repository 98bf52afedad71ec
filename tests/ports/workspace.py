"""Assemble one example's folder: its ported script(s), the tiny model and the tiny data."""

import os
import shutil
from pathlib import Path

from ports.port_spec import BY_HAND, MIGRATE, TinyModel
from ports.script_edits import change_imports, migrate, replace_exactly
from ports.tiny_model import write_tiny_model

VENDORED = Path(__file__).resolve().parent / "bert4keras_examples"
EXAMPLE_NAMES = sorted(path.stem for path in VENDORED.glob("*.py"))


def vendored_text(name):
    return (VENDORED / f"{name}.py").read_text(encoding="utf-8")


def prepare_workspace(workspace, name, variant, table, tiny_bert, corpora):
    """Fill `workspace` for example `name` (a key of `table`) and `variant` (IMPORT,
    MIGRATE or BY_HAND); returns the migrate reports (empty for IMPORT)."""
    workspace = Path(workspace)
    example = table[name]
    _place_model(workspace, example.model, tiny_bert, corpora)
    for item in example.data:
        item.writer(workspace / item.path, corpora)
    reports = []
    for script in (name, *example.companions):
        path = workspace / f"{script}.py"
        path.write_text(change_imports(vendored_text(script)), encoding="utf-8")
        if variant in (MIGRATE, BY_HAND):
            reports.append(migrate(path)[1])
        text = path.read_text(encoding="utf-8")
        if variant == BY_HAND:
            text = replace_exactly(text, table[script].by_hand, path.name)
        text = replace_exactly(text, table[script].replacements, path.name)
        path.write_text(text, encoding="utf-8")
    return reports


def _place_model(workspace, model, tiny_bert, corpora):
    target = workspace / model.folder
    if model == TinyModel(folder=model.folder):  # the session's BERT, linked
        try:
            os.symlink(tiny_bert, target, target_is_directory=True)
        except OSError:
            shutil.copytree(tiny_bert, target)
        return
    vocab = corpora.assets / "bert_chinese" / "vocab.txt"
    write_tiny_model(
        target, vocab, model.family, model.config_name, model.checkpoint_name, model.sizes
    )
