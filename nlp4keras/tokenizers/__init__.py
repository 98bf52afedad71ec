"""Tokenizers with the bert4keras API: vocab files, BERT's WordPiece (`Tokenizer`),
SentencePiece (`SpTokenizer`) and byte-level BPE (`BpeTokenizer`)."""

from nlp4keras.tokenizers.base import TokenizerBase
from nlp4keras.tokenizers.bpe import BpeTokenizer
from nlp4keras.tokenizers.checks import TextError, TokenIdError
from nlp4keras.tokenizers.sentencepiece import SpTokenizer
from nlp4keras.tokenizers.vocab import load_vocab, save_vocab
from nlp4keras.tokenizers.wordpiece import Tokenizer

__all__ = [
    "BpeTokenizer",
    "load_vocab",
    "save_vocab",
    "SpTokenizer",
    "TextError",
    "Tokenizer",
    "TokenizerBase",
    "TokenIdError",
]
