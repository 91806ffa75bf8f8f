"""Model artifacts on disk: ``clv_model_<version>.onnx`` plus ``clv_model_<version>.json``.

The version is ``<UTC timestamp>_<first 10 hex of the ONNX sha256>``. Files are written
atomically (temporary file in the same directory, fsync, rename), the ONNX file first and the
metadata last, so a metadata file only ever describes a complete ONNX file. Nothing is pickled.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PREFIX = "clv_model_"
METADATA_FORMAT = 1


@dataclass(frozen=True)
class ModelArtifact:
    version: str
    onnx_path: Path
    metadata_path: Path
    metadata: dict[str, Any]

    @property
    def sha256(self) -> str:
        return self.metadata["sha256"]

    @property
    def fingerprint(self) -> str | None:
        return self.metadata.get("fingerprint")


def onnx_path(model_dir: Path, version: str) -> Path:
    return Path(model_dir) / f"{PREFIX}{version}.onnx"


def metadata_path(model_dir: Path, version: str) -> Path:
    return Path(model_dir) / f"{PREFIX}{version}.json"


def new_version(sha256: str, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}_{sha256[:10]}"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def new_temporary_file(path: Path) -> tuple[int, Path]:
    """A new hidden file next to ``path`` (open file descriptor, name) for an atomic replace.

    Created like any new file, so its permissions come from the process's umask (unlike
    ``tempfile.mkstemp``'s owner-only ones): a BI or scoring account can read the result.
    """
    tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    return fd, tmp


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see either the old file or the complete new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = new_temporary_file(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # persist the rename itself where directories fsync
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _json_default(value: Any) -> Any:
    """numpy scalars as numbers, anything else (dates, paths) as its string form."""
    return value.item() if hasattr(value, "item") else str(value)


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as None, numpy scalars as Python numbers."""
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def atomic_write_json(path: Path, payload: dict[str, Any]) -> None:
    text = json.dumps(payload, indent=2, allow_nan=False, default=_json_default) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))


def read_metadata(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _artifact(path: Path) -> ModelArtifact | None:
    try:
        meta = read_metadata(path)
    except (OSError, ValueError):
        return None
    version = meta.get("model_version")
    if not isinstance(version, str) or path.name != f"{PREFIX}{version}.json":
        return None
    return ModelArtifact(version=version, onnx_path=onnx_path(path.parent, version),
                         metadata_path=path, metadata=meta)


def list_artifacts(model_dir: Path) -> list[ModelArtifact]:
    """Artifacts with readable metadata and an existing ONNX file, oldest first."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    found = [_artifact(p) for p in model_dir.glob(f"{PREFIX}*.json")]
    usable = [a for a in found if a is not None and a.onnx_path.is_file()]
    return sorted(usable, key=lambda a: (str(a.metadata.get("created_at", "")), a.version))


def latest_artifact(model_dir: Path) -> ModelArtifact | None:
    """The most recently created artifact in ``model_dir``, or None."""
    artifacts = list_artifacts(model_dir)
    return artifacts[-1] if artifacts else None


def find_artifact(model_dir: Path, fingerprint: str) -> ModelArtifact | None:
    """The most recent artifact whose metadata carries ``fingerprint``, or None.

    The ONNX content is not verified here; :func:`clv.score.load_verified` does that, so a
    tampered file that matches the fingerprint fails loudly at load time.
    """
    matching = [a for a in list_artifacts(model_dir) if a.fingerprint == fingerprint]
    return matching[-1] if matching else None


def load_artifact(model_dir: Path, version: str | None = None) -> ModelArtifact:
    """The artifact of ``version`` (latest when None); FileNotFoundError when absent."""
    if version is None:
        artifact = latest_artifact(model_dir)
        if artifact is None:
            raise FileNotFoundError(f"no model artifact ({PREFIX}<version>.json with its .onnx) "
                                    f"in {model_dir}")
        return artifact
    path = metadata_path(model_dir, version)
    if not path.is_file():
        raise FileNotFoundError(f"no metadata file {path.name} in {model_dir}")
    return ModelArtifact(version=version, onnx_path=onnx_path(model_dir, version),
                         metadata_path=path, metadata=read_metadata(path))
