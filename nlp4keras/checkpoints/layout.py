"""A family's checkpoint layout, written once: for each Keras layer, its
weights in order, each with its Google/bert4keras TF name and its HF names.

`variable_mapping()` (layer -> Google names), the HF -> Google translation
(`NamingRules`) and the export to either format all read the same table.
Templates may hold `{i}`, the block index. HF names are `.`-separated and
PyTorch-shaped: a 2-D Google `.../kernel` is the transpose of its HF weight
(other names say so with `hf_transposed`, e.g. mesh-TF T5's `.../SelfAttention/q`).
"""

from dataclasses import dataclass, replace

from nlp4keras.checkpoints.hf_names import NamingRules


@dataclass(frozen=True)
class Weight:
    #: Google/bert4keras TF name (template)
    google: str
    #: HF names (templates), the canonical one first; () if HF has none
    hf: tuple = ()
    #: rows are the vocab: keep_tokens / compound_tokens apply
    vocab: bool = False
    #: stored transposed relative to the Keras weight (both formats)
    transposed: bool = False
    #: the vocab axis when `vocab` (1: columns, T5's `decoder/logits/kernel`)
    vocab_axis: int = 0
    #: the HF tensor is the transpose of the Google one (None: for 2-D
    #: `.../kernel` names only, the Linear weights)
    hf_transposed: bool = None

    @property
    def hf_transpose(self):
        """Whether a 2-D HF tensor is the transpose of the Google one."""
        if self.hf_transposed is None:
            return self.google.endswith("/kernel")
        return self.hf_transposed


def dense(google, hf=None, bias=True, vocab_axis=None):
    """Kernel and bias of a Dense-like projection (vocab_axis: the kernel's
    axis of the vocab, for keep_tokens on an output projection)."""
    vocab = {} if vocab_axis is None else {"vocab": True, "vocab_axis": vocab_axis}
    weights = [Weight(google + "/kernel", _aliases(hf, ".weight"), **vocab)]
    if bias:
        weights.append(Weight(google + "/bias", _aliases(hf, ".bias")))
    return weights


def norm(google, hf=None, offset=True, scale=True):
    """beta then gamma, as LayerNormalization creates them."""
    weights = []
    if offset:
        weights.append(Weight(google + "/beta", _aliases(hf, ".bias", ".beta")))
    if scale:
        weights.append(Weight(google + "/gamma", _aliases(hf, ".weight", ".gamma")))
    return weights


def tensor(google, hf=None, vocab=False, transposed=False, hf_transposed=None):
    """One named tensor (an embedding table, a bias)."""
    return [Weight(google, _aliases(hf, ""), vocab, transposed, hf_transposed=hf_transposed)]


def _aliases(hf, *suffixes):
    if hf is None:
        return ()
    names = (hf,) if isinstance(hf, str) else tuple(hf)
    return tuple(name + suffix for suffix in suffixes for name in names)


def _int_fields(template):
    return template.replace("{i}", "{i:int}")


class CheckpointLayout:
    """layers / heads: {Keras layer name template: [Weight, ...]} for the
    encoder and for its task heads (HF names of heads never carry the base
    model prefix). ignored: HF templates of buffers and tied copies.
    base_prefixes: prefixes HF task models put before base weights ('bert.').
    adapter: how HF files store projections unlike Linear layers
    (hf_fused.FusedProjections), applied when reading and exporting."""

    def __init__(self, layers, heads=None, ignored=(), base_prefixes=(), adapter=None):
        self.layers = dict(layers)
        self.heads = dict(heads or {})
        self.ignored = tuple(ignored)
        self.base_prefixes = tuple(base_prefixes)
        self.adapter = adapter
        self.naming = NamingRules(
            base=self._rules(self.layers),
            heads=self._rules(self.heads),
            ignored=self.ignored,
            base_prefixes=self.base_prefixes,
            adapter=adapter,
            hf_transposed=self._hf_transposed(),
        )

    def _hf_transposed(self):
        """(Google template, transposed) for the weights that say (hf_transposed)."""
        return [
            (_int_fields(weight.google), weight.hf_transposed)
            for weights in {**self.layers, **self.heads}.values()
            for weight in weights
            if weight.hf_transposed is not None
        ]

    @staticmethod
    def _rules(table):
        rules = []
        for weights in table.values():
            for weight in weights:
                for hf in weight.hf:
                    rules.append((_int_fields(hf), _int_fields(weight.google)))
        return rules

    def entries(self, num_layers, table=None):
        """(layer name, [Weight with {i} filled]) for every layer of `table`
        (default: encoder and heads), blocks 0..n-1."""
        table = {**self.layers, **self.heads} if table is None else table
        for template, weights in table.items():
            indices = range(num_layers) if "{i}" in template else [None]
            for i in indices:
                yield template.format(i=i), [_filled(w, i) for w in weights]

    def variable_mapping(self, num_layers):
        """{layer name: [Google names, in the layer's weight order]}."""
        return {name: [w.google for w in weights] for name, weights in self.entries(num_layers)}

    def weights_by_google(self, num_layers):
        return {w.google: w for _, weights in self.entries(num_layers) for w in weights}

    def head_names(self, num_layers):
        """Google names of the heads' weights (HF names without base prefix)."""
        return {w.google for _, weights in self.entries(num_layers, self.heads) for w in weights}


def _filled(weight, i):
    if i is None:
        return weight
    return replace(
        weight, google=weight.google.format(i=i), hf=tuple(h.format(i=i) for h in weight.hf)
    )
