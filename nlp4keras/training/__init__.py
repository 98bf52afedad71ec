"""Training helpers: mixed precision, adversarial training / gradient
penalty, virtual adversarial training, access to intermediate values, and
input attributions (input gradients, integrated gradients)."""

from nlp4keras.training.adversarial import AdversarialModel, adversarial_training
from nlp4keras.training.attribution import input_gradients, integrated_gradients
from nlp4keras.training.intermediates import Intermediates, get_intermediates
from nlp4keras.training.precision import mixed_precision
from nlp4keras.training.vat import VirtualAdversarialModel, virtual_adversarial_training

__all__ = [
    "AdversarialModel",
    "Intermediates",
    "VirtualAdversarialModel",
    "adversarial_training",
    "get_intermediates",
    "input_gradients",
    "integrated_gradients",
    "mixed_precision",
    "virtual_adversarial_training",
]
