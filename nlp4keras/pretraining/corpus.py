"""Documents streamed from text files larger than memory (one line in
memory at a time, one paragraph in "paragraph" mode), a held-out split by a
stable hash of each document, and the default word segmenter (jieba)."""

import hashlib
import os

from nlp4keras import validation

DOCUMENT_UNITS = ("line", "paragraph")
SPLITS = ("train", "heldout", "all")


def heldout_score(text):
    """A number in [0, 1) fixed by the text alone (the same on every machine,
    run and Python version, unlike `hash`): a document is held out when its
    score is below the held-out fraction, so held-out text never trains."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def in_split(text, split, heldout_fraction):
    if split == "all":
        return True
    heldout = heldout_score(text) < heldout_fraction
    return heldout if split == "heldout" else not heldout


def checked_paths(paths, who):
    """`paths` (one path or a list of them) as a list of existing files."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if isinstance(paths, (bytes, dict)) or not hasattr(paths, "__iter__"):
        validation.instance(paths, "paths", (), who, what="a path or a list of text file paths")
    paths = list(paths)
    if not paths:
        raise ValueError(f"{who}: `paths` is empty: give at least one text file")
    for path in paths:
        validation.instance(path, "paths[...]", (str, os.PathLike), who, what="a file path")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{who}: text file not found: {os.fspath(path)}")
    return [os.fspath(path) for path in paths]


def read_documents(
    paths, document="line", clean=None, split="all", heldout_fraction=0.0, who="read_documents"
):
    """Yield the documents of the text files (UTF-8), in order.

    document: "line" (each non-empty line is a document) or "paragraph"
    (runs of non-empty lines, split by blank lines, joined with newlines).
    clean: an optional callable applied to each line first (e.g. to strip
    annotations); lines empty after it and stripping are blank.
    split: "all", "train" or "heldout", by `heldout_score(document) <
    heldout_fraction`.
    """
    paths = checked_paths(paths, who)
    validation.one_of(document, "document", DOCUMENT_UNITS, who)
    validation.callable_or_none(clean, "clean", who)
    validation.one_of(split, "split", SPLITS, who)
    heldout_fraction = validation.real(heldout_fraction, "heldout_fraction", who, 0, 1)
    documents = _documents(paths, document == "paragraph", clean)
    return (text for text in documents if in_split(text, split, heldout_fraction))


def _documents(paths, paragraphs, clean):
    for path in paths:
        pending = []
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                text = (clean(line) if clean else line).strip()
                if not paragraphs:
                    if text:
                        yield text
                elif text:
                    pending.append(text)
                elif pending:
                    yield "\n".join(pending)
                    pending = []
        if pending:  # a paragraph never spans two files
            yield "\n".join(pending)


def jieba_words(text):
    """jieba's words of `text` (precise mode; imported on first use)."""
    import jieba

    if not jieba.dt.initialized:
        jieba.setLogLevel(60)  # quiet the "Building prefix dict" lines
        jieba.initialize()
    return jieba.lcut(text)
