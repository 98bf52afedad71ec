"""Reading and writing a built model's weights, through its family's
`CheckpointLayout`: Google/bert4keras TF checkpoints, HF folders, dicts."""

import json
import os

import keras
import numpy as np

from nlp4keras.checkpoints.loading import assign_from_checkpoint, open_for_model


class CheckpointIO:
    """Mixin of Transformer: load/save weights by the family's layout."""

    #: The family's CheckpointLayout (Google and HF names, written once).
    layout = None
    #: Google-name prefixes of the encoder's own weights (not heads): a
    #: checkpoint tensor there that the model does not use gets a warning.
    core_scopes = ()
    #: HF config `model_type`s this family can load (empty: not checked);
    #: the first is written by `save_weights_as_hf`.
    hf_model_types = ()

    @property
    def hf_naming(self):
        """HF -> Google name rules (None: the family has no HF layout)."""
        return None if self.layout is None else self.layout.naming

    def variable_mapping(self):
        """{layer name: [checkpoint variable names, in layer.weights order]}."""
        return {} if self.layout is None else self.layout.variable_mapping(self.num_hidden_layers)

    def _weight_info(self, name):
        if self.layout is None:
            return None
        if getattr(self, "_weights_by_google", None) is None:
            self._weights_by_google = self.layout.weights_by_google(self.num_hidden_layers)
        return self._weights_by_google.get(name)

    def _weight_pairs(self, mapping=None):
        """(variable, checkpoint name) for every mapped weight of the built
        layers (a layer's weights zipped in order with its mapped names)."""
        mapping = self.variable_mapping() if mapping is None else mapping
        pairs = []
        for layer_name, variable_names in mapping.items():
            layer = self.layers.get(self.prefixed(layer_name))
            if layer is not None:
                pairs.extend(zip(layer.weights, variable_names))
        return pairs

    def load_embeddings(self, embeddings):
        """Apply keep_tokens (row subset) and compound_tokens (appended rows,
        each a weighted mean of existing rows) to an embedding-like tensor."""
        rows = embeddings.shape[0]
        if self.keep_tokens is not None:
            _check_token_ids("keep_tokens", self.keep_tokens, rows)
            embeddings = embeddings[np.asarray(self.keep_tokens)]
        if self.compound_tokens is not None:
            extra = []
            for ids, weights in self.compound_tokens:
                _check_token_ids("compound_tokens", ids, embeddings.shape[0])
                extra.append(np.average(embeddings[ids], axis=0, weights=weights))
            embeddings = np.concatenate([embeddings, np.stack(extra).astype(embeddings.dtype)], 0)
        return embeddings

    def load_variable(self, checkpoint, name):
        """Read one variable (Google name) from an open checkpoint, in the
        Keras weight's layout (vocab rows selected, transposes undone)."""
        value = checkpoint.read(name)
        info = self._weight_info(name)
        if info is not None and info.vocab:
            columns = info.vocab_axis == 1
            value = self.load_embeddings(value.T if columns else value)
            value = value.T if columns else value
        if info is not None and info.transposed:
            value = value.T
        return value

    def save_variable(self, name, value):
        """Inverse of load_variable's layout changes, for saving (keep_tokens
        and compound_tokens are not undone: the saved vocab is the model's)."""
        info = self._weight_info(name)
        return value.T if info is not None and info.transposed else value

    def _named_values(self, mapping=None, dtype=None):
        """{Google name: numpy value in checkpoint layout}."""
        tensors = {}
        for variable, name in self._weight_pairs(mapping):
            value = self.save_variable(name, keras.ops.convert_to_numpy(variable))
            tensors[name] = value.astype(dtype) if dtype is not None else value
        return tensors

    def save_weights_as_checkpoint(self, filename, mapping=None, dtype=None):
        """Write the weights as a Google-layout TF checkpoint (`filename` is the
        prefix, e.g. '.../bert_model.ckpt'), readable by TensorFlow, bert4keras
        and load_weights_from_checkpoint. No TensorFlow needed."""
        from nlp4keras.checkpoints.tf_bundle import write_tf_checkpoint

        write_tf_checkpoint(filename, self._named_values(mapping, dtype))

    def save_weights_as_hf(self, folder, dtype=None):
        """Write an HF folder (config.json + model.safetensors) that
        `transformers` loads with its class for this family (and that
        load_weights_from_checkpoint reads back bit-exactly)."""
        if self.layout is None or not self.hf_model_types:
            raise NotImplementedError(
                f"{type(self).__name__}: HF transformers has no model for this family; "
                "use save_weights_as_checkpoint (Google TF layout)"
            )
        from safetensors.numpy import save_file

        tensors = {}
        heads = self.layout.head_names(self.num_hidden_layers)
        prefix = self.layout.base_prefixes[0] if self.layout.base_prefixes else ""
        for google, value in self._named_values(dtype=dtype).items():
            info = self._weight_info(google)
            if not info.hf:
                continue
            name = info.hf[0] if google in heads else prefix + info.hf[0]
            if info.hf_transpose and value.ndim == 2:
                value = value.T
            tensors[name] = np.ascontiguousarray(value)
        if self.layout.adapter is not None:
            tensors = self.layout.adapter.pack(tensors)
        os.makedirs(folder, exist_ok=True)
        save_file(tensors, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
        with open(os.path.join(folder, "config.json"), "w", encoding="utf-8") as f:
            json.dump(self.hf_config(), f, indent=2, sort_keys=True)

    def hf_config(self):
        """The HF config.json of this model (families extend it)."""
        raise NotImplementedError

    def load_weights_from_checkpoint(self, checkpoint, mapping=None):
        """Load weights from a checkpoint path (HF folder, safetensors, .bin, TF
        checkpoint) or a dict of numpy arrays. Strict unless the model was built
        with ignore_invalid_weights=True. Returns a LoadReport."""
        pairs = self._weight_pairs(mapping)
        with open_for_model(checkpoint, self.hf_naming) as reader:
            report = assign_from_checkpoint(
                pairs,
                reader,
                lambda name: self.load_variable(reader, name),
                strict=not self.ignore_invalid_weights,
                core_scopes=self.core_scopes,
            )
        self.load_report = report
        if self.defer_initialization:
            names = set(report.loaded)
            self.finish_deferred_initialization(v for v, name in pairs if name in names)
        return report


def _check_token_ids(name, ids, rows):
    bad = [i for i in ids if not 0 <= int(i) < rows]
    if bad:
        raise ValueError(
            f"{name} holds ids outside the checkpoint's {rows}-token vocab: {bad[:10]}"
        )
