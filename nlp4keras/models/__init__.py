"""Model builders; `build_transformer_model` is the bert4keras entry point."""

import inspect

from nlp4keras import validation as check
from nlp4keras.checkpoints.sources import gguf_file
from nlp4keras.messages import did_you_mean
from nlp4keras.models.albert import ALBERT, ALBERT_Unshared
from nlp4keras.models.applications import (
    LM_Mask,
    UniLM_Mask,
    extend_with_language_model,
    extend_with_unified_language_model,
)
from nlp4keras.models.bert import BERT
from nlp4keras.models.config import (
    BUILD_ARGUMENTS,
    check_arguments,
    check_model_type,
    check_requirements,
    config_origins,
    family_aliases,
    init_arguments,
    normalize_config,
    read_config_file,
    with_origin,
)
from nlp4keras.models.decoder import LanguageModel
from nlp4keras.models.electra import ELECTRA
from nlp4keras.models.gau_alpha import GAU_alpha
from nlp4keras.models.gpt import GPT, GPT2, GPT2_ML
from nlp4keras.models.llama import LLaMA
from nlp4keras.models.nezha import NEZHA
from nlp4keras.models.roformer import RoFormer, RoFormerV2
from nlp4keras.models.t5 import T5, T5_MODELS, T5_Base, T5_Decoder, T5_Encoder
from nlp4keras.models.transformer import Transformer

#: model= names accepted by build_transformer_model.
MODELS = {
    "bert": BERT,
    "roberta": BERT,
    "albert": ALBERT,
    "albert_unshared": ALBERT_Unshared,
    "electra": ELECTRA,
    "nezha": NEZHA,
    "roformer": RoFormer,
    "roformer_v2": RoFormerV2,
    "gau_alpha": GAU_alpha,
    "gpt": GPT,
    "gpt2": GPT2,
    "gpt2_ml": GPT2_ML,
    "llama": LLaMA,
    **T5_MODELS,
}

#: application= names and the class wrapper each applies.
APPLICATIONS = {
    "encoder": None,
    "lm": extend_with_language_model,
    "unilm": extend_with_unified_language_model,
}


def _choose(kind, value, options):
    key = str(value).lower()
    if key in options:
        return options[key]
    raise ValueError(
        f"unknown {kind} {value!r}.{did_you_mean(key, options)} Valid {kind}s: {', '.join(options)}"
    )


def build_transformer_model(
    config_path=None,
    checkpoint_path=None,
    model="bert",
    application="encoder",
    return_keras_model=True,
    **kwargs,
):
    """Build a Transformer from a config (and optionally load a checkpoint).

    config_path: Google `bert_config.json`, HF `config.json`, or a folder
        holding one; keyword arguments override its values.
    checkpoint_path: HF folder / .safetensors / .bin / sharded index, a TF
        checkpoint prefix, or a dict of numpy arrays.
    model: a name from MODELS, or a Transformer subclass.
    application: 'encoder', 'lm' (causal mask) or 'unilm' (seq2seq mask).
    recompute: True recomputes each Transformer block's activations in the
        backward pass (gradient checkpointing: less memory, more time);
        defaults to the RECOMPUTE environment variable (see nlp4keras.recompute).
    Returns the keras.Model, or the Transformer object with
    return_keras_model=False.
    """
    if inspect.isclass(model) and issubclass(model, Transformer):
        model_class = model
    else:
        model_class = _choose("model", model, MODELS)
        kwargs.setdefault("name", str(model).lower())  # the Keras model's name
    wrapper = _choose("application", application, APPLICATIONS)
    if issubclass(model_class, LanguageModel):
        # Decoder-only families are causal language models already.
        if str(application).lower() == "unilm":
            raise ValueError(
                f"{model_class.__name__} is a causal language model: application='unilm' "
                "needs an encoder family (bert, roformer, ...); use 'encoder' or 'lm'"
            )
        wrapper = None
    if issubclass(model_class, T5_Base) and wrapper is not None:
        raise ValueError(
            f"{model!r} is an encoder-decoder (T5): application={application!r} is not "
            "supported (bert4keras refused it too); use 'encoder' and the model's "
            ".encoder / .decoder"
        )
    if wrapper is not None:
        model_class = wrapper(model_class)

    aliases = family_aliases(model_class)
    constructor_arguments = init_arguments(model_class)
    check_arguments(kwargs, constructor_arguments + list(BUILD_ARGUMENTS), aliases=aliases)
    check.boolean(return_keras_model, "return_keras_model", "build_transformer_model")
    configs, origins = {}, {}
    raw_config = None
    gguf = gguf_file(checkpoint_path)
    if config_path is not None and (gguf is None or gguf_file(config_path) != gguf):
        raw_config = read_config_file(config_path)
    elif gguf is not None:
        # A GGUF file carries its config in its metadata.
        checkpoint_path = config_path = gguf
        raw_config = _gguf_config(gguf)
    if raw_config is not None:
        check_model_type(raw_config, model_class, config_path)
        check_requirements(raw_config, model_class, config_path)
        origins = config_origins(raw_config, config_path, aliases)
    try:
        if raw_config is not None:
            file_config = normalize_config(raw_config, aliases)
            ignored = model_class.file_config_ignored
            configs.update(
                {
                    k: v
                    for k, v in file_config.items()
                    if k in constructor_arguments and k not in ignored
                }
            )
        given = normalize_config(kwargs, aliases)
        configs.update(given)
        origins = {k: v for k, v in origins.items() if k not in given}
        init_kwargs = {k: v for k, v in configs.items() if k in constructor_arguments}
        model_class.fill_defaults(init_kwargs)
        build_kwargs = {k: v for k, v in configs.items() if k in BUILD_ARGUMENTS}
        missing = [
            name
            for name, parameter in inspect.signature(Transformer.__init__).parameters.items()
            if parameter.default is parameter.empty and name != "self" and name not in init_kwargs
        ]
        if missing:
            raise TypeError(
                f"build_transformer_model() needs {', '.join(missing)}: give a config_path "
                "or pass them as keyword arguments"
            )
        transformer = model_class(**init_kwargs)
        # The checkpoint fills the weights: skip their random draws (most of
        # the build time of a large model); what it leaves empty is drawn after.
        transformer.defer_initialization = checkpoint_path is not None
        transformer.build(**build_kwargs)
    except check.ArgumentError as error:
        raise with_origin(error, origins) from None
    if checkpoint_path is not None:
        try:
            transformer.load_weights_from_checkpoint(checkpoint_path)
        finally:
            transformer.finish_deferred_initialization()
    return transformer.model if return_keras_model else transformer


def _gguf_config(path):
    from nlp4keras.checkpoints.sources import open_checkpoint

    with open_checkpoint(path) as reader:
        return reader.hf_config()


__all__ = [
    "ALBERT",
    "ALBERT_Unshared",
    "APPLICATIONS",
    "BERT",
    "ELECTRA",
    "GAU_alpha",
    "GPT",
    "GPT2",
    "GPT2_ML",
    "LLaMA",
    "LanguageModel",
    "NEZHA",
    "RoFormer",
    "RoFormerV2",
    "T5",
    "T5_Base",
    "T5_Decoder",
    "T5_Encoder",
    "LM_Mask",
    "MODELS",
    "Transformer",
    "UniLM_Mask",
    "build_transformer_model",
    "extend_with_language_model",
    "extend_with_unified_language_model",
]
