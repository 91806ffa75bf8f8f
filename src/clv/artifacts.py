"""Model artifacts on disk: ``clv_model_<version>.onnx`` plus ``clv_model_<version>.json``.

The version is ``<UTC timestamp>_<first 10 hex of the ONNX sha256>``. Files are written
atomically (temporary file in the same directory, fsync, rename), the ONNX file first and the
metadata last, so a metadata file only ever describes a complete ONNX file. Nothing is pickled.

A build that trains, reuses or deletes models holds the directory's lock (:func:`locked`), so
two builds that share a model directory take turns instead of racing. A process killed while
writing leaves at most a hidden temporary file or an ONNX file without metadata, which no
reader lists; :func:`remove_leftovers` deletes them once they are old enough.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import re
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

# True where locked() really excludes other processes (POSIX).
LOCKS = fcntl is not None

PREFIX = "clv_model_"
METADATA_FORMAT = 1
# The scoring runs of each model (clv.pipeline.scoring.run_path):
# runs/clv_run_<as-of date>_<version>.<build key>.json, and .<build key>.<dialect>.sql with the
# SQL scoring engine.
RUNS_DIR = "runs"
LOCK_FILE = ".clv_model_dir.lock"
# How long a build waits for another build that holds the model directory's lock.
LOCK_TIMEOUT_SECONDS = 3600.0
# A temporary file or an ONNX file without metadata older than this was left by a process that
# died while writing (a write takes seconds); younger ones may still be being written.
LEFTOVER_SECONDS = 600.0
# errno values that mean "the disk (or a quota, or a file size limit) is full".
_FULL = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}
# The same, as libraries that report them without an errno (pyarrow) word them.
_FULL_TEXT = ("No space left", "File too large", "Disk quota exceeded")


class ModelDirBusyError(RuntimeError):
    """Another build has held the model directory's lock for longer than the wait allows."""


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


# temporary_path's names: .<name>.<16 hex digits>.tmp
_TEMPORARY = re.compile(r"\..+\.[0-9a-f]{16}\.tmp")


def temporary_path(path: Path) -> Path:
    """A new hidden name next to ``path`` (``.<name>.<random>.tmp``) to write to and then rename
    over ``path``; for writers that must create the file themselves (a DuckDB database)."""
    return path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"


def new_temporary_file(path: Path) -> tuple[int, Path]:
    """A new hidden file next to ``path`` (open file descriptor, name) for an atomic replace.

    Created like any new file, so its permissions come from the process's umask (unlike
    ``tempfile.mkstemp``'s owner-only ones): a BI or scoring account can read the result.
    """
    tmp = temporary_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    return fd, tmp


def write_failed(path: Path, error: OSError) -> OSError:
    """``error`` (raised while writing ``path``) with a message that names the file and, for a
    full disk, quota or file size limit, says so; the same errno, so callers can tell."""
    reason = error.strerror or str(error)
    if error.errno in _FULL or any(sign in reason for sign in _FULL_TEXT):
        message = (f"cannot write {path}: {reason} (the disk, a quota or the file size limit is "
                   "full); the previous file is unchanged: free space and run again")
    else:
        message = f"cannot write {path}: {reason}; the previous file is unchanged"
    return OSError(message) if error.errno is None else OSError(error.errno, message)


def link_target(path: Path) -> Path:
    """``path``, or where it points when it is a symbolic link: a file replaced by a rename is
    written where the link points (a share a BI tool reads, say), not over the link, which
    would leave the target unchanged and a plain file in the link's place. (A link among the
    folders needs nothing: the rename happens in the folder it leads to.)"""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see either the old file or the complete new one.
    A symbolic link is followed (:func:`link_target`).

    On failure (a full disk included) the temporary file is removed, ``path`` is unchanged and
    the OSError names the file (:func:`write_failed`)."""
    path = link_target(Path(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = new_temporary_file(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(error, OSError):
            raise write_failed(path, error) from error
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


def touch(artifact: ModelArtifact) -> None:
    """Mark ``artifact`` as used now (its metadata file's modification time), which
    :func:`clv.pipeline.registry.retention` ranks models by."""
    with contextlib.suppress(OSError):
        os.utime(artifact.metadata_path)


def last_used(artifact: ModelArtifact) -> float:
    """When ``artifact`` was last trained, reused or scored with (see :func:`touch`)."""
    try:
        return artifact.metadata_path.stat().st_mtime
    except OSError:
        return 0.0


def run_files(model_dir: Path, version: str) -> list[Path]:
    """The scoring runs of ``version`` under ``runs/`` (JSON, and SQL with the SQL engine)."""
    runs = Path(model_dir) / RUNS_DIR
    if not runs.is_dir():
        return []
    return sorted(p for p in runs.glob(f"clv_run_*_{version}.*")
                  if p.name.endswith((".json", ".sql")))


def remove_artifact(model_dir: Path, version: str) -> list[str]:
    """Delete model ``version``: its metadata first (no reader trusts the rest once it is
    gone), then the ONNX file and any other file of the version, then its scoring runs.
    Returns the names deleted."""
    model_dir = Path(model_dir)
    first = metadata_path(model_dir, version)
    files = [first, *(p for p in sorted(model_dir.glob(f"{PREFIX}{version}.*")) if p != first),
             *run_files(model_dir, version)]
    removed = []
    for path in files:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path.name)
    return removed


def remove_leftovers(model_dir: Path, older_than: float = LEFTOVER_SECONDS,
                     interrupted_at: float | None = None) -> list[str]:
    """Delete what a process killed while writing left behind: hidden temporary files (of
    models, metadata and scoring runs, and of any other file written atomically in the
    directory or a folder of it: the training step's journal, the builds' pins), ONNX files
    whose metadata was never written, and scoring runs of models that no longer exist. None of
    them is ever read.

    A file goes once it is older than ``older_than`` seconds (a younger one may be another
    process's write in progress). A model file written since ``interrupted_at`` (the start of a
    training step that died, as the step's journal says; models are written only under the
    directory's lock) goes whatever its age. Returns the names deleted."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    runs = model_dir / RUNS_DIR
    now = time.time()

    def modified(path: Path) -> float | None:
        try:
            return path.stat().st_mtime
        except OSError:
            return None

    def stale(path: Path, since: float | None) -> bool:
        stamp = modified(path)
        return stamp is not None and (now - stamp > older_than
                                      or (since is not None and stamp >= since))

    model_files = [*model_dir.glob(f".{PREFIX}*.tmp"),
                   *(p for p in model_dir.glob(f"{PREFIX}*.onnx")
                     if not p.with_suffix(".json").exists())]
    models = {p.name.removeprefix(PREFIX).removesuffix(".json")
              for p in model_dir.glob(f"{PREFIX}*.json")}
    # clv_run_<as-of date>_<version>.<build key>.json: the version is what follows the date
    run_files_ = [*runs.glob(".clv_run_*.tmp"),
                  *(path for path in runs.glob("clv_run_*")
                    if path.name.endswith((".json", ".sql"))
                    and "_".join(path.name.split(".")[0].split("_")[3:]) not in models)]
    # every other atomic writer's temporary files (temporary_path's names), here and one
    # folder down
    folders = [model_dir, *(p for p in model_dir.iterdir() if p.is_dir())]
    other_files = [p for folder in folders for p in folder.glob(".*.tmp")
                   if _TEMPORARY.fullmatch(p.name) and not p.name.startswith(f".{PREFIX}")]
    doomed = ([p for p in model_files if stale(p, interrupted_at)]
              + [p for p in [*run_files_, *other_files] if stale(p, None)])
    removed = []
    for path in sorted(set(doomed)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path.name)
    return removed


def _holder(path: Path) -> str:
    """Who holds the lock, as the holder wrote it into the lock file."""
    try:
        holder = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return "another build"
    if not holder:
        return "another build"
    return (f"another build (process {holder.get('pid')} on {holder.get('host')}, since "
            f"{holder.get('since')})")


@contextlib.contextmanager
def locked(model_dir: Path, timeout: float | None = None,
           log: Callable[[str], None] = print, poll: float = 0.5) -> Iterator[None]:
    """Hold ``model_dir``'s lock (an exclusive ``flock`` on :data:`LOCK_FILE`) for the block.

    A build that finds the lock held waits, logging once who holds it, and stops with
    :class:`ModelDirBusyError` after ``timeout`` seconds (default
    :data:`LOCK_TIMEOUT_SECONDS`). The operating system releases the lock of a process that
    dies, so a killed build never blocks the next one. Without ``fcntl`` (Windows) the block
    runs unlocked.
    """
    timeout = LOCK_TIMEOUT_SECONDS if timeout is None else timeout
    model_dir = Path(model_dir)
    path = model_dir / LOCK_FILE
    try:
        model_dir.mkdir(parents=True, exist_ok=True)
        # not through a link: the lock's content is rewritten and truncated, and whoever can
        # write the directory could point a link at any file the build may write
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(path, flags, 0o666) if fcntl is not None else -1
    except PermissionError as error:
        raise PermissionError(
            f"clv_model_dir {model_dir} is not writable ({error.strerror}: "
            f"{error.filename}): every build writes its lock, the pins of the models behind "
            "the predictions and the scoring runs there, clv_retrain 'never' included; point "
            "clv_model_dir at a writable directory (a copy of this one)") from error
    except (FileExistsError, NotADirectoryError) as error:  # the path, or a folder of it, a file
        if model_dir.is_symlink() and not model_dir.exists():
            why = f"it is a link to {os.readlink(model_dir)}, which does not exist"
        else:
            file = next((p for p in (model_dir, *model_dir.parents)
                         if p.exists() and not p.is_dir()), None)
            why = f"{file} is a file" if file is not None else str(error)
        raise NotADirectoryError(
            f"Invalid value for var 'clv_model_dir': {str(model_dir)!r} is not a directory "
            f"({why}): point clv_model_dir at a directory") from error
    except OSError as error:
        # a link refused by O_NOFOLLOW: ELOOP on Linux, EMLINK on FreeBSD
        if error.errno not in (errno.ELOOP, errno.EMLINK):
            raise
        raise OSError(error.errno, f"clv_model_dir {model_dir}: its lock file {LOCK_FILE} is a "
                      "symbolic link, which a build does not follow (it rewrites the lock's "
                      "content): remove the link") from error
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    try:
        started = time.monotonic()
        waiting = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waiting:
                    log(f"waiting for {model_dir}: {_holder(path)} is training or reusing a "
                        "model there")
                    waiting = True
                if time.monotonic() - started > timeout:
                    raise ModelDirBusyError(
                        f"clv_model_dir {model_dir} has been in use by {_holder(path)} for more "
                        f"than {timeout:.0f} s; two builds that share a model directory take "
                        "turns. Wait for it to finish (or stop it), then run again") from None
                time.sleep(poll)
        if waiting:
            log(f"{model_dir} is free after {time.monotonic() - started:.1f} s of waiting")
        holder = {"pid": os.getpid(), "host": socket.gethostname(),
                  "since": datetime.now(UTC).isoformat(timespec="seconds")}
        with contextlib.suppress(OSError):  # who holds it is for messages only
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(holder).encode("utf-8"), 0)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
