"""Model configuration: Google `bert_config.json` / HF `config.json` keys to
builder arguments, and validation of user keyword arguments."""

import difflib
import inspect
import json
import os

# Config-file key -> builder argument.
CONFIG_ALIASES = {
    "max_position_embeddings": "max_position",
    "hidden_dropout_prob": "dropout_rate",
    "attention_probs_dropout_prob": "attention_dropout_rate",
    "type_vocab_size": "segment_vocab_size",
    "layer_norm_epsilon": "layer_norm_eps",
}

# Arguments of Transformer.build() rather than of the constructor.
BUILD_ARGUMENTS = ("layer_norm_cond", "layer_norm_cond_hidden_size",
                   "layer_norm_cond_hidden_act", "additional_input_layers")

# HF model types whose position ids start after the padding id.
_POSITION_OFFSET_TYPES = ("roberta", "xlm-roberta", "camembert")


def init_arguments(model_class):
    """Named constructor arguments of model_class and its bases."""
    names = []
    for cls in model_class.__mro__:
        init = cls.__dict__.get("__init__")
        if init is None:
            continue
        for parameter in inspect.signature(init).parameters.values():
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                continue
            if parameter.name != "self" and parameter.name not in names:
                names.append(parameter.name)
    return names


def read_config_file(config_path):
    """The JSON dict of a config file (or of config.json / bert_config.json in a folder)."""
    path = os.fspath(config_path)
    if os.path.isdir(path):
        for name in ("config.json", "bert_config.json"):
            if os.path.isfile(os.path.join(path, name)):
                path = os.path.join(path, name)
                break
        else:
            raise FileNotFoundError(f"no config.json or bert_config.json in folder {path}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except ValueError as error:
        raise ValueError(f"config file {path} is not valid JSON: {error}") from error
    if not isinstance(config, dict):
        raise ValueError(f"config file {path} must hold a JSON object")
    _reject_unsupported(config, path)
    return config


def _reject_unsupported(config, path):
    """Options that would silently change the maths if ignored."""
    position_type = config.get("position_embedding_type", "absolute")
    if position_type != "absolute":
        raise NotImplementedError(
            f"{path}: position_embedding_type={position_type!r} is not supported "
            "(only 'absolute')")
    for flag, hint in (("is_decoder", "use application='lm'"),
                       ("add_cross_attention", "cross-attention is not supported")):
        if config.get(flag):
            raise NotImplementedError(f"{path}: {flag}=true is not supported; {hint}")


def normalize_config(config):
    """Config-file keys renamed to builder arguments; derived values added."""
    normalized = {CONFIG_ALIASES.get(key, key): value for key, value in config.items()}
    if config.get("model_type") in _POSITION_OFFSET_TYPES and "position_offset" not in config:
        normalized["position_offset"] = int(config.get("pad_token_id", 1)) + 1
    return normalized


def check_arguments(kwargs, valid, function="build_transformer_model"):
    """Raise TypeError naming any unknown keyword and listing the valid ones."""
    accepted = set(valid) | set(CONFIG_ALIASES)
    for key in kwargs:
        if key in accepted:
            continue
        close = difflib.get_close_matches(key, sorted(accepted), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise TypeError(
            f"{function}() got an unexpected keyword argument {key!r}.{hint} "
            f"Valid keyword arguments: {', '.join(sorted(valid))}")
