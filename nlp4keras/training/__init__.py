"""Training helpers: mixed precision, adversarial training / gradient
penalty, access to intermediate values."""

from nlp4keras.training.adversarial import AdversarialModel, adversarial_training
from nlp4keras.training.intermediates import Intermediates, get_intermediates
from nlp4keras.training.precision import mixed_precision

__all__ = [
    "AdversarialModel",
    "Intermediates",
    "adversarial_training",
    "get_intermediates",
    "mixed_precision",
]
