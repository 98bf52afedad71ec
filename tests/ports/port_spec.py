"""How the port check's table describes one bert4keras example."""

import dataclasses

IMPORT = "import"  # runs with only its imports changed
MIGRATE = "migrate"  # runs after `nlp4keras migrate --write`
BY_HAND = "by_hand"  # runs after migrate plus the edits a person makes (`by_hand`)


@dataclasses.dataclass(frozen=True)
class Waits:
    """The example needs something nlp4keras does not have (yet)."""

    feature: str  # what is missing
    issue: str  # where it is tracked
    error: str = ""  # text the failing run shows today (checked, so the reason stays true)

    def reason(self):
        return f"waits for {self.feature} ({self.issue})"


def waits(feature, issue, error=""):
    return Waits(feature, issue, error)


@dataclasses.dataclass(frozen=True)
class Skip:
    """Not run on a backend, for a reason that is not nlp4keras' (say, TensorFlow-only APIs)."""

    reason: str


def skip(reason):
    return Skip(reason)


@dataclasses.dataclass(frozen=True)
class Data:
    """Write the data of `writer` (an example_data function) at `path` in the workspace."""

    writer: object
    path: str


@dataclasses.dataclass(frozen=True)
class TinyModel:
    """A tiny checkpoint folder at `folder` in the workspace: `family` is the model= name;
    bert's is written once per session and linked, the others are written per test."""

    folder: str = "tiny_bert"
    family: str = "bert"
    config_name: str = "bert_config.json"
    checkpoint_name: str = "bert_model.ckpt"
    sizes: tuple = ()  # (config key, value) pairs that differ from tiny_model.TINY_CONFIG


@dataclasses.dataclass(frozen=True)
class Example:
    status: object  # IMPORT, MIGRATE or a Waits
    on: tuple = ()  # (backend, status) pairs where the status differs: Waits, Skip, ...
    replacements: tuple = ()  # (old, new) exact string replacements: paths, epochs, sizes
    by_hand: tuple = ()  # BY_HAND: (old, new) edits a person makes after migrate
    data: tuple = ()  # Data items
    prints: tuple = ()  # regexes the output must match (the scores/losses the script prints)
    model: TinyModel = TinyModel()
    companions: tuple = ()  # other examples it imports (ported the same way, same folder)

    def status_on(self, backend):
        return dict(self.on).get(backend, self.status)

    def variants(self, backend):
        """The variants the check runs on `backend`: IMPORT for an IMPORT example, MIGRATE
        for the others; a MIGRATE example's IMPORT variant shows that migrate is needed."""
        status = self.status_on(backend)
        if status in (IMPORT, BY_HAND):
            return [status]
        if status == MIGRATE:
            return [IMPORT, MIGRATE]
        return [MIGRATE]
