"""Reading HF (PyTorch-style) checkpoints under Google TF variable names.

Model families describe their weights in Google names (as bert4keras did).
A family's `NamingRules` translate HF names such as
`encoder.layer.0.attention.self.query.weight` into
`bert/encoder/layer_0/attention/self/query/kernel`; `HFNamingView` wraps any
reader so the loader sees Google names, with HF Linear weights ([out, in])
transposed into Google kernels ([in, out]).
"""

import re

from nlp4keras.checkpoints.base import CheckpointReader

# Parameter suffix maps: HF -> Google.
DENSE = {"weight": "kernel", "bias": "bias"}
NORM = {"weight": "gamma", "gamma": "gamma", "bias": "beta", "beta": "beta"}


class NamingRules:
    """rules: [(hf_regex, google_template, param_map or None)]; the regex may
    capture `p` (a parameter name, translated with param_map) and any other
    named groups used by the template. ignored: regexes of HF names that are
    not weights (buffers, tied copies). base_prefixes: optional leading
    components of the base model (e.g. 'bert.' in BertForPreTraining)."""

    def __init__(self, rules, ignored=(), base_prefixes=()):
        self.rules = [(re.compile(pattern + r"$"), template, params)
                      for pattern, template, params in rules]
        self.ignored = [re.compile(pattern + r"$") for pattern in ignored]
        self.base_prefixes = tuple(base_prefixes)

    def strip_prefix(self, name):
        for prefix in self.base_prefixes:
            if name.startswith(prefix):
                return name[len(prefix):]
        return name

    def is_ignored(self, name):
        name = self.strip_prefix(name)
        return any(pattern.match(name) for pattern in self.ignored)

    def translate(self, name):
        """The Google name for an HF name, or None if no rule matches."""
        name = self.strip_prefix(name)
        for pattern, template, params in self.rules:
            match = pattern.match(name)
            if match is None:
                continue
            groups = match.groupdict()
            if "p" in groups:
                if groups["p"] not in params:
                    return None
                groups["p"] = params[groups["p"]]
            return template.format(**groups)
        return None


def looks_like_google_names(names):
    """Google/TF checkpoints use '/' separators, HF/PyTorch ones use '.'."""
    return any("/" in name for name in names)


class HFNamingView(CheckpointReader):
    """A reader over HF-named tensors that answers in Google names."""

    def __init__(self, reader, naming):
        self._reader = reader
        self.path = reader.path
        self._to_source = {}
        self.ignored = []
        self.unmapped = []
        for key in reader.keys():
            if naming.is_ignored(key):
                self.ignored.append(key)
                continue
            google = naming.translate(key)
            if google is None:
                self.unmapped.append(key)
            elif google in self._to_source:
                self.ignored.append(key)  # an alias, e.g. a tied decoder bias
            else:
                self._to_source[google] = key

    @staticmethod
    def _is_kernel(name):
        return name.endswith("/kernel")

    def keys(self):
        return list(self._to_source)

    def source_name(self, name):
        return self._to_source.get(name, name)

    def shape(self, name):
        if name not in self._to_source:
            raise self.missing(name)
        shape = self._reader.shape(self._to_source[name])
        return tuple(reversed(shape)) if self._is_kernel(name) else shape

    def read(self, name):
        if name not in self._to_source:
            raise self.missing(name)
        value = self._reader.read(self._to_source[name])
        return value.T.copy() if self._is_kernel(name) and value.ndim == 2 else value

    def close(self):
        self._reader.close()
