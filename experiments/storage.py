"""Content-addressed blob storage for artifacts under settings.ARTIFACT_ROOT.

A blob lives at `<root>/sha256/<first two hex>/<sha256>`: the server chooses every file name
from the hash it computed, so no user text is ever joined into a path (reliability.md, T14).
Uploads stream into `<root>/tmp/` while they are hashed and counted, and are renamed into
place only when complete and within the size limit. Blobs are immutable; equal content is
stored once.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

from experiments.errors import PayloadTooLargeError

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
CHUNK_BYTES = 1024 * 1024


def artifact_root() -> Path:
    return Path(settings.ARTIFACT_ROOT)


def blob_path(sha256: str) -> Path:
    if not _SHA256_HEX.match(sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return artifact_root() / "sha256" / sha256[:2] / sha256


def blob_write(chunks: Iterable[bytes], *, max_bytes: int) -> tuple[str, int]:
    """Store the bytes of `chunks`; returns (sha256, size). Over `max_bytes`: nothing is kept."""
    tmp_dir = artifact_root() / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, prefix="upload-")
    try:
        with os.fdopen(fd, "wb") as tmp:
            for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise PayloadTooLargeError(
                        f"artifact is larger than the limit of {max_bytes} bytes"
                    )
                digest.update(chunk)
                tmp.write(chunk)
            tmp.flush()
            os.fsync(tmp.fileno())
        sha256 = digest.hexdigest()
        final = blob_path(sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            os.unlink(tmp_name)  # the same content is stored already
        else:
            os.chmod(tmp_name, 0o444)
            os.replace(tmp_name, final)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise
    return sha256, size


def blob_open(sha256: str) -> BinaryIO:
    return blob_path(sha256).open("rb")


def blob_verify(sha256: str) -> bool:
    """Whether the stored blob still hashes to `sha256` (registry promotion and model loading)."""
    digest = hashlib.sha256()
    try:
        with blob_open(sha256) as blob:
            while chunk := blob.read(CHUNK_BYTES):
                digest.update(chunk)
    except FileNotFoundError:
        return False
    return digest.hexdigest() == sha256


def stream_chunks(stream: BinaryIO, chunk_bytes: int = CHUNK_BYTES) -> Iterable[bytes]:
    while chunk := stream.read(chunk_bytes):
        yield chunk
