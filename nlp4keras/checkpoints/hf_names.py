"""Reading HF (PyTorch-style) checkpoints under Google TF variable names.

Model families describe their weights in Google names (as bert4keras did).
A family's `NamingRules` (derived from its `CheckpointLayout`) pair HF name
templates such as `encoder.layer.{i}.attention.self.query.weight` with
Google ones such as `bert/encoder/layer_{i}/attention/self/query/kernel`;
`HFNamingView` wraps any
reader so the loader sees Google names, with HF Linear weights ([out, in])
transposed into Google kernels ([in, out]) (and any name the rules say).
"""

import re

from nlp4keras.checkpoints.base import CheckpointReader

_FIELD = re.compile(r"\{(\w+)(?::([\w|]+))?\}")


_PADDED = re.compile(r"0[0-9]+d")  # a zero-padded number: '{i:03d}' (block_000)


def _is_number(choices):
    return choices == "int" or bool(choices and _PADDED.fullmatch(choices))


def _template_regex(template):
    """'a.{i:int}.{m:query|key}' -> a regex with a named group per field; a
    field matches one name component, a number (int, or zero-padded: 03d) or
    one of the listed alternatives."""
    pattern, position = "", 0
    for match in _FIELD.finditer(template):
        name, choices = match.groups()
        choices = "[0-9]+" if _is_number(choices) else {None: "[^./]+"}.get(choices, choices)
        pattern += re.escape(template[position : match.start()])
        pattern += rf"(?P<{name}>{choices})"
        position = match.end()
    return re.compile(pattern + re.escape(template[position:]) + "$")


def _format_template(template):
    """The template with field constraints dropped ('{m:query|key}' -> '{m}'),
    zero-padding kept ('{i:03d}')."""

    def field(match):
        name, choices = match.groups()
        return (
            "{%s:%s}" % (name, choices) if choices and _PADDED.fullmatch(choices) else "{%s}" % name
        )

    return _FIELD.sub(field, template)


def _numbers(template):
    """Names of the template's number fields."""
    return {m.group(1) for m in _FIELD.finditer(template) if _is_number(m.group(2))}


class _Rule:
    def __init__(self, hf, google):
        self.hf, self.google = _format_template(hf), _format_template(google)
        self.hf_regex = _template_regex(hf)
        self.google_regex = _template_regex(google)
        self.numbers = _numbers(hf) | _numbers(google)

    def _fields(self, match):
        fields = match.groupdict()
        return {k: int(v) if k in self.numbers else v for k, v in fields.items()}

    def to_google(self, name):
        match = self.hf_regex.match(name)
        return None if match is None else self.google.format(**self._fields(match))

    def to_hf(self, name):
        match = self.google_regex.match(name)
        return None if match is None else self.hf.format(**self._fields(match))


class NamingRules:
    """base: (hf_template, google_template) pairs for the base model, whose
    HF names may carry one of `base_prefixes` (e.g. 'bert.' in
    BertForPreTraining). heads: the same for task heads (never prefixed).
    Fields are copied (`{i:int}` restricts a field to numbers,
    `{m:query|key}` to those values). ignored: HF templates of non-weights (buffers, tied copies).
    Earlier rules win, so list the canonical spelling of an alias first."""

    def __init__(
        self, base, heads=(), ignored=(), base_prefixes=(), adapter=None, hf_transposed=()
    ):
        self.base = [_Rule(*rule) for rule in base]
        self.heads = [_Rule(*rule) for rule in heads]
        self.ignored = [_template_regex(template) for template in ignored]
        self.base_prefixes = tuple(base_prefixes)
        #: reshapes the file's tensors first (FusedProjections: GPT-2's Conv1D)
        self.adapter = adapter
        #: (Google template, bool): whether its 2-D HF tensor is transposed,
        #: where the default (only `.../kernel` names are) does not hold
        self.hf_transposed = [(_template_regex(t), flag) for t, flag in hf_transposed]

    def is_transposed(self, google):
        """Whether the 2-D HF tensor of a Google name is its transpose."""
        for pattern, flag in self.hf_transposed:
            if pattern.match(google):
                return flag
        return google.endswith("/kernel")

    def _candidates(self, name):
        """(rules, name) pairs to try: heads on the raw name, base rules on
        the name without its base prefix."""
        yield self.heads, name
        for prefix in self.base_prefixes:
            if name.startswith(prefix):
                yield self.base, name[len(prefix) :]
                return
        yield self.base, name

    def is_ignored(self, name):
        return any(pattern.match(n) for _, n in self._candidates(name) for pattern in self.ignored)

    def translate(self, name):
        """The Google name for an HF name, or None if no rule matches."""
        for rules, candidate in self._candidates(name):
            for rule in rules:
                google = rule.to_google(candidate)
                if google is not None:
                    return google
        return None

    def hf_name(self, google, base_prefix=""):
        """The canonical HF name of a Google name (for messages), or None."""
        for rules, prefix in ((self.heads, ""), (self.base, base_prefix)):
            for rule in rules:
                hf = rule.to_hf(google)
                if hf is not None:
                    return prefix + hf
        return None


def looks_like_google_names(names):
    """Google/TF checkpoints use '/' separators, HF/PyTorch ones use '.'."""
    return any("/" in name for name in names)


class HFNamingView(CheckpointReader):
    """A reader over HF-named tensors that answers in Google names."""

    def __init__(self, reader, naming):
        if naming.adapter is not None:
            reader = naming.adapter.wrap(reader)
        self._reader = reader
        self._naming = naming
        self.path = reader.path
        self._to_source = {}
        self.ignored = []
        self.unmapped = []
        keys = reader.keys()
        self._base_prefix = next(
            (p for p in naming.base_prefixes if any(k.startswith(p) for k in keys)), ""
        )
        for key in keys:
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

    def _is_kernel(self, name):
        return self._naming.is_transposed(name)

    def keys(self):
        return list(self._to_source)

    def source_name(self, name):
        """The HF name a Google name is (or would be) stored under."""
        if name in self._to_source:
            return self._to_source[name]
        return self._naming.hf_name(name, self._base_prefix) or name

    def shape(self, name):
        if name not in self._to_source:
            raise self.missing(name)
        shape = tuple(self._reader.shape(self._to_source[name]))
        return shape[::-1] if self._is_kernel(name) and len(shape) == 2 else shape

    def dtype(self, name):
        if name not in self._to_source:
            raise self.missing(name)
        return self._reader.dtype(self._to_source[name])

    def read(self, name):
        if name not in self._to_source:
            raise self.missing(name)
        value = self._reader.read(self._to_source[name])
        return value.T.copy() if self._is_kernel(name) and value.ndim == 2 else value

    def close(self):
        self._reader.close()
