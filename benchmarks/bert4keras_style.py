"""A bert4keras-style pure-Python BERT tokenizer, the baseline of
benchmarks/tokenize.py: the algorithm bert4keras runs (one Python step per
character to normalise and split, then greedy WordPiece per word), written
from its description, not its code. Same ids as our `Tokenizer`."""

import unicodedata

from nlp4keras.tokenizers.chars import (
    is_cjk_character,
    is_control,
    is_punctuation,
    is_space,
)


class CharLoopTokenizer:
    def __init__(self, token_dict, do_lower_case=True, word_maxlen=200):
        self.token_dict = token_dict
        self.do_lower_case = do_lower_case
        self.word_maxlen = word_maxlen

    def encode(self, text, maxlen=512):
        tokens = self.tokenize(text)[: maxlen - 2]
        ids = [self.token_dict[t] for t in ["[CLS]", *tokens, "[SEP]"]]
        return ids, [0] * len(ids)

    def tokenize(self, text):
        if self.do_lower_case:
            text = unicodedata.normalize("NFD", text.replace("\u03a3", "\u03c3").lower())
            text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
        spaced = ""
        for ch in text:  # one Python step per character
            if is_cjk_character(ch) or is_punctuation(ch):
                spaced += " " + ch + " "
            elif is_space(ch):
                spaced += " "
            elif ord(ch) == 0 or ord(ch) == 0xFFFD or is_control(ch):
                continue
            else:
                spaced += ch
        tokens = []
        for word in spaced.strip().split():
            tokens.extend(self.word_piece(word))
        return tokens

    def word_piece(self, word):
        if len(word) > self.word_maxlen:
            return ["[UNK]"]
        if word in self.token_dict:
            return [word]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.token_dict:
                    break
                end -= 1
            if end == start:
                return ["[UNK]"]
            pieces.append(piece)
            start = end
        return pieces
