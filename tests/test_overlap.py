"""Overlapping runs: two builds started at once never corrupt each other.

Against one DuckDB file, DuckDB's own file lock lets one build in and stops the other at once
with "Could not set lock on file ... Conflicting lock is held in ..."; nothing of it runs.
Against one model directory (two warehouses, or two targets of one project), the training
step holds the directory's lock (``clv.artifacts.locked``): the second build waits, then
reuses the model the first one trained instead of training its own. Either way the outcome
equals a single run's, compared with one.

The lock itself is checked with a second process that holds it: the waiter proceeds when it is
released (or when the holder is killed), and stops with a message naming the holder when the
wait is longer than allowed.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from production import Build, query, snapshot, transactions, write_transactions

from clv import artifacts

HOLD = """
import sys, time
from clv.artifacts import locked
with locked(sys.argv[1], log=lambda _: None):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _holder(model_dir, seconds: float) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(model_dir), str(seconds)],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


@pytest.mark.slow  # waits on a real lock held by another process for about 2 s
def test_a_second_build_waits_for_the_lock_and_then_proceeds(tmp_path):
    holder = _holder(tmp_path, 2.0)
    said = []
    started = time.monotonic()
    with artifacts.locked(tmp_path, timeout=60, log=said.append, poll=0.05):
        waited = time.monotonic() - started
    holder.wait()
    assert waited > 1.0
    assert f"process {holder.pid}" in said[0] and said[0].startswith(f"waiting for {tmp_path}")
    assert said[1].startswith(f"{tmp_path} is free after")


def test_a_killed_holder_does_not_block_the_next_build(tmp_path):
    holder = _holder(tmp_path, 600)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    started = time.monotonic()
    with artifacts.locked(tmp_path, timeout=5, log=lambda _: None):
        assert time.monotonic() - started < 2


def test_a_wait_longer_than_allowed_stops_with_a_message_naming_the_holder(tmp_path):
    holder = _holder(tmp_path, 600)
    try:
        with pytest.raises(artifacts.ModelDirBusyError) as error, \
                artifacts.locked(tmp_path, timeout=0.5, log=lambda _: None, poll=0.05):
            pass
    finally:
        holder.kill()
        holder.wait()
    message = str(error.value)
    assert f"clv_model_dir {tmp_path} has been in use by another build (process {holder.pid}" \
        in message
    assert "take turns" in message and "run again" in message


def test_a_model_dir_that_cannot_be_written_names_the_var(tmp_path, monkeypatch):
    """A read-only clv_model_dir (a mounted volume) stops with a line naming the var and why
    it must be writable, not an operating-system error about a lock file."""
    def refused(path, *_):
        raise PermissionError(1, "Operation not permitted", str(path))

    monkeypatch.setattr(artifacts.os, "open", refused)
    with pytest.raises(PermissionError, match=f"clv_model_dir {tmp_path} is not writable "
                                              r"\(Operation not permitted: .*\.lock\)"), \
            artifacts.locked(tmp_path, log=lambda _: None):
        pass



@pytest.mark.parametrize("under", ["", "onnx"])
def test_a_model_dir_that_is_a_file_names_the_var(tmp_path, under):
    """clv_model_dir naming a file, or a folder under one, stops with a line naming the var,
    not the operating system's NotADirectoryError about a path."""
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    model_dir = blocker / under if under else blocker
    with pytest.raises(NotADirectoryError, match=r"Invalid value for var 'clv_model_dir': "
                                                 rf"'{model_dir}' is not a directory \(.*blocker "
                                                 r"is a file\)"), \
            artifacts.locked(model_dir, log=lambda _: None):
        pass
    # a link to a folder that is not there (a share not mounted)
    link = tmp_path / "share"
    link.symlink_to(tmp_path / "unmounted")
    with pytest.raises(NotADirectoryError, match=r"'.*share' is not a directory \(it is a link "
                                                 r"to .*unmounted, which does not exist\)"), \
            artifacts.locked(link, log=lambda _: None):
        pass


def test_the_lock_file_is_never_followed_through_a_link(tmp_path):
    """A link in place of the lock file (whoever can write the model directory could point it
    at any file the build may write) stops the build, and the file it points at is intact."""
    victim = tmp_path / "victim.conf"
    victim.write_text("keep me")
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    (model_dir / artifacts.LOCK_FILE).symlink_to(victim)
    with pytest.raises(OSError, match=r"lock file .* is a symbolic link"), \
            artifacts.locked(model_dir, log=lambda _: None):
        pass
    assert victim.read_text() == "keep me"

# ---------------------------------------------------------------------------------------------
# Two real builds at once


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One build alone: what the overlapping ones must equal."""
    workdir = tmp_path_factory.mktemp("overlap")
    data = transactions()
    alone = workdir / "alone"
    alone.mkdir()
    write_transactions(alone, data)
    Build(alone, workdir / "target_alone", vars=VARS).run()
    return workdir, data, snapshot(alone / "clv.duckdb", TABLES)


VARS = {"clv_as_of_date": "2023-06-30"}
TABLES = ("clv_predictions", "clv_predictions_history", "clv_model_registry")


def _trained(build: Build) -> bool:
    return build.said("exported clv_model_")


@pytest.mark.slow
def test_two_builds_against_one_database_and_model_directory(reference):
    workdir, data, expected = reference
    shared = workdir / "one_database"
    shared.mkdir()
    write_transactions(shared, data)
    builds = [Build(shared, workdir / f"target_db_{i}", vars=VARS).start() for i in (1, 2)]
    codes = [build.wait() for build in builds]
    for code, build in zip(codes, builds, strict=True):
        assert code == 0 or "Could not set lock on file" in build.output, build.output[-3000:]
    assert 0 in codes, "one of them builds"
    # one model, one history run, every table as a single build leaves it
    assert len(list((shared / "models").glob("clv_model_*.onnx"))) == 1
    assert _equal(snapshot(shared / "clv.duckdb", TABLES), expected)
    assert list((shared / "models").glob("**/.*.tmp")) == []


@pytest.mark.slow
def test_two_builds_against_one_model_directory_train_once(reference):
    workdir, data, expected = reference
    models = workdir / "shared_models"
    builds = []
    for i in (1, 2):
        own = workdir / f"warehouse_{i}"
        own.mkdir()
        write_transactions(own, data)
        builds.append(Build(own, workdir / f"target_dir_{i}",
                            vars={**VARS, "clv_model_dir": str(models)}))
    for build in builds:
        build.start()
    for build in builds:
        assert build.wait() == 0, build.output[-3000:]
    # exactly one trained; the other waited for it (or came later) and reused its model
    assert sorted(_trained(build) for build in builds) == [False, True]
    other = next(build for build in builds if not _trained(build))
    assert other.said("reusing saved model"), other.output[-3000:]
    trained = next(build for build in builds if _trained(build))  # and it says why it trained
    assert trained.said("clv_retrain is 'auto' and no saved model was trained on these"), (
        trained.output[-3000:])
    assert len(list(models.glob("clv_model_*.onnx"))) == 1
    for build in builds:
        assert _equal(snapshot(build.workdir / "clv.duckdb", TABLES), expected)
    versions = {query(build.workdir / "clv.duckdb",
                      "select distinct model_version from clv_predictions").model_version[0]
                for build in builds}
    assert len(versions) == 1


def _equal(left: dict, right: dict) -> bool:
    assert left.keys() == right.keys()
    for name in left:
        assert left[name].equals(right[name]), name
    return True
