"""`tifa fetch-pkuseg`: the pkuseg default model, for `--tokenizer pkuseg`, into models/pkuseg/.

spacy-pkuseg ships no model. The pkuseg 0.0.25 sdist on PyPI carries the default model
(`pkuseg/models/default/`: features.pkl, weights.npz; 48.8 MB packed, 183 MB unpacked), and
spacy-pkuseg reads that model. pip downloads the sdist: `pip download` prepares an sdist's
metadata, and pkuseg's setup.py imports numpy and Cython and needs `bdist_wheel`, which pip's
isolated build environment lacks (its sdist declares no build requirements). So a throwaway
virtual environment gets numpy, Cython, setuptools and wheel, and its pip downloads the sdist
with `--no-build-isolation`, checked against the sdist's sha256. Only the model files are
extracted (nothing of pkuseg is built or installed), and features.pkl is rewritten as
features.msgpack, the format spacy-pkuseg reads first, so tifa never unpickles at run time.

The model is not committed (models/pkuseg/ is git-ignored); `--sdist FILE` uses a copy of the
sdist that is already on disk instead of the network.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import venv
from collections.abc import Callable
from pathlib import Path

PKUSEG_VERSION = "0.0.25"
PKUSEG_SDIST = f"pkuseg-{PKUSEG_VERSION}.tar.gz"
PKUSEG_SHA256 = "dd012bf93689721c9574bc2b2ba98fb4ac22790cec0af354a78e217828b81e91"
MODEL_MEMBER_DIR = f"pkuseg-{PKUSEG_VERSION}/pkuseg/models/default/"
MODEL_FILES = ("features.pkl", "weights.npz")
# What the throwaway environment needs to prepare the sdist's metadata.
BUILD_REQUIREMENTS = ("numpy", "cython", "setuptools", "wheel")


def default_dest() -> Path:
    from pipeline.nlp.config import DEFAULT_PKUSEG_MODEL

    return DEFAULT_PKUSEG_MODEL


def model_present(dest: Path) -> bool:
    return (dest / "weights.npz").exists() and (dest / "features.msgpack").exists()


def fetch_pkuseg(
    dest: Path | None = None,
    sdist: Path | None = None,
    force: bool = False,
    on_step: Callable[[str], None] | None = None,
) -> Path:
    """Put the pkuseg default model in `dest` (default models/pkuseg) and return the folder."""
    dest = Path(dest) if dest else default_dest()
    say = on_step or (lambda _msg: None)
    if model_present(dest) and not force:
        say(f"pkuseg model already in {dest}")
        return dest
    with tempfile.TemporaryDirectory(prefix="tifa-pkuseg-") as tmp:
        tmp_path = Path(tmp)
        if sdist is None:
            sdist = download_sdist(tmp_path, say)
        check_sha256(Path(sdist))
        say(f"extracting the default model from {Path(sdist).name}")
        staging = tmp_path / "model"
        extract_model(Path(sdist), staging)
        say("converting features.pkl to features.msgpack")
        convert_features(staging)
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(dest.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(staging, partial)
        shutil.rmtree(dest, ignore_errors=True)
        partial.rename(dest)  # a complete folder or none: an interrupted fetch leaves no half model
    say(f"pkuseg model in {dest}")
    return dest


def download_sdist(workdir: Path, say: Callable[[str], None]) -> Path:
    env_dir = workdir / "buildenv"
    say("creating a throwaway environment with numpy, Cython, setuptools and wheel")
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    _pip(python, "install", "--quiet", *BUILD_REQUIREMENTS)
    requirement = workdir / "requirements.txt"
    requirement.write_text(f"pkuseg=={PKUSEG_VERSION} --hash=sha256:{PKUSEG_SHA256}\n")
    downloads = workdir / "downloads"
    say(f"downloading {PKUSEG_SDIST} (48.8 MB) with pip")
    _pip(
        python,
        "download",
        "--quiet",
        "--no-deps",
        "--no-binary",
        ":all:",
        "--no-build-isolation",
        "--require-hashes",
        "-r",
        str(requirement),
        "-d",
        str(downloads),
    )
    path = downloads / PKUSEG_SDIST
    if not path.exists():
        raise RuntimeError(f"pip reported success but {path} is missing")
    return path


def _pip(python: Path, *args: str) -> None:
    cmd = [str(python), "-m", "pip", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"`pip {' '.join(args[:2])} …` failed ({proc.returncode}):\n{tail}")


def check_sha256(path: Path) -> None:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != PKUSEG_SHA256:
        raise ValueError(
            f"{path} is not the pkuseg {PKUSEG_VERSION} sdist (sha256 {digest.hexdigest()}, "
            f"expected {PKUSEG_SHA256})"
        )


def extract_model(sdist: Path, dest: Path) -> None:
    """Only the default model's files, by exact name (no other member is written)."""
    dest.mkdir(parents=True, exist_ok=True)
    wanted = {MODEL_MEMBER_DIR + name: name for name in MODEL_FILES}
    found = set()
    with tarfile.open(sdist, "r:gz") as tar:
        for member in tar:
            name = wanted.get(member.name)
            if name is None or not member.isfile():
                continue
            source = tar.extractfile(member)
            assert source is not None
            with source, open(dest / name, "wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
            found.add(name)
    missing = set(MODEL_FILES) - found
    if missing:
        raise ValueError(f"{sdist} has no {', '.join(sorted(missing))} under {MODEL_MEMBER_DIR}")


def convert_features(model_dir: Path) -> None:
    """features.pkl → features.msgpack with spacy-pkuseg's own reader and writer."""
    from spacy_pkuseg.feature_extractor import FeatureExtractor

    pkl = model_dir / "features.pkl"
    # spacy-pkuseg prints a notice on stderr when it falls back to the pickle; it is expected.
    stderr, sys.stderr = sys.stderr, open(os.devnull, "w")  # noqa: SIM115
    try:
        extractor = FeatureExtractor.load(str(model_dir))
    finally:
        sys.stderr.close()
        sys.stderr = stderr
    extractor.save(str(model_dir))
    if not (model_dir / "features.msgpack").exists():
        raise RuntimeError("spacy-pkuseg did not write features.msgpack")
    pkl.unlink()
