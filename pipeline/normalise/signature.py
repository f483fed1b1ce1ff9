"""A document's story signature: MinHash over character shingles of its cleaned text.

Syndicated copies of one story differ in page chrome, headline, dateline, editor line and light
edits. The signature is taken from the text `normalise` keeps (chrome, metadata and credit lines
gone), reduced to Han characters, ASCII letters and digits (punctuation, spaces and full-width
forms differ between sites), cut into overlapping shingles of `SHINGLE` characters and hashed
by `datasketch`'s MinHash with `NUM_PERM` permutations and a fixed seed. The share of equal
slots of two signatures estimates the Jaccard similarity of their shingle sets.

`NUM_PERM`, `SHINGLE`, `SEED` and `SCHEME` are part of the archive's story index (the
`signatures` table): signatures made with other values cannot be compared, so they are
constants, not settings.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

NUM_PERM = 128
SHINGLE = 5
SEED = 1
# datasketch's permutation scheme (2.0's default: 32-bit values, no collisions from folding).
SCHEME = "affine32"
# A text with fewer significant characters than this has no signature (nothing to match on:
# a caption or a one-line notice is its own story).
MIN_CHARS = 20

_KEEP = re.compile(r"[0-9A-Za-z\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")

_HASHER: object | None = None


def signature_text(text: str) -> str:
    """The characters a signature is made of: Han, ASCII letters (lower-cased) and digits."""
    return "".join(_KEEP.findall(text)).lower()


def _minhash_template() -> object:
    global _HASHER
    if _HASHER is None:
        from datasketch import MinHash

        _HASHER = MinHash(num_perm=NUM_PERM, seed=SEED, scheme=SCHEME)
    return _HASHER


def minhash(text: str) -> bytes | None:
    """The signature of a cleaned text (NUM_PERM little-endian uint32), or None when it is too
    short to say anything."""
    chars = signature_text(text)
    if len(chars) < MIN_CHARS:
        return None
    shingles = {chars[i : i + SHINGLE].encode("utf-8") for i in range(len(chars) - SHINGLE + 1)}
    m = _minhash_template().copy()  # type: ignore[attr-defined]
    m.update_batch(sorted(shingles))
    return np.asarray(m.hashvalues, dtype=np.uint32).tobytes()


def text_hash(text: str) -> str:
    """Exact-copy key: the hash of the signature characters (same text, whatever the chrome,
    punctuation or spacing)."""
    return hashlib.blake2b(signature_text(text).encode("utf-8"), digest_size=12).hexdigest()


def similarity(a: bytes, b: bytes) -> float:
    """Estimated Jaccard similarity of two signatures (share of equal slots)."""
    x = np.frombuffer(a, dtype=np.uint32)
    y = np.frombuffer(b, dtype=np.uint32)
    return float(np.count_nonzero(x == y)) / len(x)


def story_signature(raw_text: str, title: str | None = None) -> tuple[bytes | None, str, int]:
    """(MinHash signature, exact-copy hash, length of the signature text) of a raw document,
    from the text `normalise` keeps of it (no run-wide boilerplate counts: the signature of a
    page does not depend on the other pages of its night)."""
    from pipeline.normalise import normalise

    text = normalise(raw_text, title_hint=title).text
    return minhash(text), text_hash(text), len(signature_text(text))
