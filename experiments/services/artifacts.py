"""Artifacts of a run: names validated before a byte is read, bytes in the content-addressed
store (experiments.storage), a row naming the blob's sha256."""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO

from django.conf import settings

from experiments import validation
from experiments.errors import InvalidParameterError, ResourceDoesNotExistError
from experiments.models import Artifact, Run
from experiments.services.common import require_active
from experiments.storage import blob_write, stream_chunks


def _artifact_path_free(run: Run, path: str) -> None:
    """A file cannot sit where a folder is, nor under a file: `a` and `a/b` exclude each other."""
    parts = path.split("/")
    ancestors = ["/".join(parts[:i]) for i in range(1, len(parts))]
    clash = (
        Artifact.objects.filter(run=run, path__in=ancestors).values_list("path", flat=True).first()
    )
    if clash is not None:
        raise InvalidParameterError(f"path: {clash!r} is a file, so {path!r} cannot be under it")
    if Artifact.objects.filter(run=run, path__startswith=path + "/").exists():
        raise InvalidParameterError(f"path: {path!r} is a folder of artifacts")


def run_artifact_store(
    *,
    run: Run,
    name: str,
    data: bytes | IO[bytes] | Iterable[bytes],
    content_type: str = "",
) -> Artifact:
    """Store `data` as the run's artifact `name` (e.g. "model/model.json").

    The bytes go to the content-addressed store (sha256 computed here, on the server); the row
    maps the name to that hash. The name is validated before a byte is read: a bad name writes
    nothing. Storing a name again points it at the new content; blobs never change.
    """
    name = validation.artifact_path(name)
    require_active(run)
    _artifact_path_free(run, name)
    content_type = (content_type or "").split(";")[0].strip()[:127]
    if isinstance(data, bytes | bytearray):
        chunks: Iterable[bytes] = [bytes(data)]
    elif hasattr(data, "read"):
        chunks = stream_chunks(data)  # type: ignore[arg-type]
    else:
        chunks = data
    max_bytes = settings.ARTIFACT_MAX_UPLOAD_MB * 1024 * 1024
    sha256, size = blob_write(chunks, max_bytes=max_bytes)
    artifact, _ = Artifact.objects.update_or_create(
        run=run,
        path=name,
        defaults={"sha256": sha256, "size_bytes": size, "content_type": content_type},
    )
    return artifact


def run_artifact_delete(*, run: Run, name: str) -> None:
    """Forget the run's artifact `name` (its blob stays: other names may share it)."""
    name = validation.artifact_path(name)
    deleted, _ = Artifact.objects.filter(run=run, path=name).delete()
    if not deleted:
        raise ResourceDoesNotExistError(f"run {run.run_uuid} has no artifact {name!r}")
