"""Model configuration: Google `bert_config.json` / HF `config.json` keys to
builder arguments, and validation of user keyword arguments."""

import inspect
import json
import os

from nlp4keras import validation as check
from nlp4keras.messages import did_you_mean

# Config-file key -> builder argument.
CONFIG_ALIASES = {
    "max_position_embeddings": "max_position",
    "hidden_dropout_prob": "dropout_rate",
    "attention_probs_dropout_prob": "attention_dropout_rate",
    "type_vocab_size": "segment_vocab_size",
    "layer_norm_epsilon": "layer_norm_eps",
    "rms_norm_eps": "layer_norm_eps",
    "head_dim": "attention_head_size",
    # GPT-2 / OpenAI GPT
    "n_embd": "hidden_size",
    "n_layer": "num_hidden_layers",
    "n_head": "num_attention_heads",
    "n_inner": "intermediate_size",
    "n_positions": "max_position",
    "activation_function": "hidden_act",
    "resid_pdrop": "dropout_rate",
    "attn_pdrop": "attention_dropout_rate",
}

# Arguments of Transformer.build() rather than of the constructor.
BUILD_ARGUMENTS = (
    "layer_norm_cond",
    "layer_norm_cond_hidden_size",
    "layer_norm_cond_hidden_act",
    "additional_input_layers",
)

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
    check.instance(
        config_path,
        "config_path",
        (str, os.PathLike),
        "build_transformer_model",
        "a path (str or os.PathLike) to a config file or folder",
    )
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
            f"{path}: position_embedding_type={position_type!r} is not supported (only 'absolute')"
        )
    for flag, hint in (
        ("is_decoder", "use application='lm'"),
        ("add_cross_attention", "cross-attention is not supported"),
    ):
        if config.get(flag):
            raise NotImplementedError(f"{path}: {flag}=true is not supported; {hint}")


def check_requirements(config, model_class, path):
    """Refuse HF config options a family does not implement (they would
    silently change the maths): `config_requirements` {key: allowed value}."""
    for key, allowed in getattr(model_class, "config_requirements", {}).items():
        value = config.get(key)
        if value is not None and value != allowed:
            raise NotImplementedError(
                f"{path}: {key}={value!r} is not supported by {model_class.__name__} "
                f"(only {allowed!r} or absent)"
            )


def check_model_type(config, model_class, path):
    """Refuse an HF config of an architecture the model family cannot load."""
    model_type = config.get("model_type")
    supported = model_class.hf_model_types
    if model_type is not None and supported and model_type not in supported:
        raise ValueError(
            f"{path} describes a {model_type!r} model, which {model_class.__name__} cannot "
            f"load; it reads HF model types {', '.join(supported)}"
        )


def normalize_config(config, aliases=None):
    """Config-file keys renamed to builder arguments (`aliases`: the
    family's, default CONFIG_ALIASES); derived values added."""
    aliases = CONFIG_ALIASES if aliases is None else aliases
    normalized = {
        aliases.get(key, key): value
        for key, value in config.items()
        if value is not None or key != "pad_token_id"
    }
    if "afn" in normalized:  # OpenAI GPT: its "gelu" is the tanh approximation
        afn = normalized.pop("afn")
        normalized["hidden_act"] = {"gelu": "gelu_new"}.get(afn, afn)
    rope = normalized.pop("rope_parameters", None)
    if rope is not None:
        normalized.update(_rope_parameters(rope))
    if config.get("model_type") in _POSITION_OFFSET_TYPES and "position_offset" not in config:
        pad = config.get("pad_token_id")
        pad = 1 if pad is None else check.integer(pad, "pad_token_id", "config", minimum=0)
        normalized["position_offset"] = pad + 1
    return normalized


def _rope_parameters(rope):
    """transformers >= 5 keeps rope_theta in `rope_parameters`; only plain
    RoPE (rope_type 'default') is implemented."""
    if not isinstance(rope, dict):
        raise check.InvalidType(
            f"config key rope_parameters must be a dict, got {rope!r}", "rope_parameters"
        )
    kind = rope.get("rope_type", rope.get("type", "default"))
    if kind != "default":
        raise NotImplementedError(
            f"rope_parameters with rope_type={kind!r} is not supported (only 'default')"
        )
    return {"rope_theta": rope["rope_theta"]} if "rope_theta" in rope else {}


def check_arguments(kwargs, valid, function="build_transformer_model", aliases=None):
    """Raise TypeError naming any unknown keyword and listing the valid ones."""
    accepted = set(valid) | set(CONFIG_ALIASES if aliases is None else aliases)
    for key in kwargs:
        if key in accepted:
            continue
        hint = did_you_mean(key, accepted)
        raise TypeError(
            f"{function}() got an unexpected keyword argument {key!r}.{hint} "
            f"Valid keyword arguments: {', '.join(sorted(valid))}"
        )


def config_origins(raw_config, path, aliases=None):
    """{builder argument: "key 'k' of <file>"} for the values a config file gave."""
    aliases = CONFIG_ALIASES if aliases is None else aliases
    return {aliases.get(key, key): f"config key {key!r} of {os.fspath(path)}" for key in raw_config}


def with_origin(error, origins):
    """`error` again with where its argument's value came from, when the value
    came from a config file (validation errors name their argument)."""
    origin = origins.get(getattr(error, "argument", None))
    if origin is None:
        return error
    return type(error)(f"{error} (from {origin})", error.argument)


def family_aliases(model_class):
    """CONFIG_ALIASES with the family's own config keys (`config_aliases`)."""
    return {**CONFIG_ALIASES, **getattr(model_class, "config_aliases", {})}
