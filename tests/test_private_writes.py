"""Writes to local files that must stay private and must not be lost, with real files:
a symlink planted at the spool's path or at the snapshot cache's old temporary name is
not followed, and a usage record made after the recorder closed reaches the spool."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from data_plane.cache import _write_atomically
from data_plane.usage import UsageRecorder
from shared.private_files import open_private
from tests.support.processes import free_port
from tests.support.usage_records import usage_record


def _planted(tmp_path: Path, link: Path) -> Path:
    """A symlink at `link` to a file outside the folder; returns that file."""
    target = tmp_path / "elsewhere"
    target.write_bytes(b"untouched")
    link.symlink_to(target)
    return target


@pytest.mark.parametrize("append", [True, False])
def test_a_symlink_at_the_spool_path_is_not_followed(tmp_path: Path, append: bool) -> None:
    spool = tmp_path / "usage.jsonl"
    target = _planted(tmp_path, spool)
    with pytest.raises(OSError, match=os.strerror(errno.ELOOP)):  # not followed
        os.close(open_private(spool, append=append))
    assert target.read_bytes() == b"untouched"


def test_a_symlink_at_the_old_cache_temporary_name_is_not_followed(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    folder.mkdir()
    path = folder / "snapshot.msgpack"
    target = _planted(tmp_path, folder / f"{path.name}.{os.getpid()}.tmp")
    _write_atomically(path, b"state")
    assert target.read_bytes() == b"untouched"
    assert path.read_bytes() == b"state"
    assert path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [path.name, f"{path.name}.{os.getpid()}.tmp"]
    )


async def test_a_record_after_close_goes_to_the_spool(tmp_path: Path) -> None:
    spool = tmp_path / "usage.jsonl"
    nowhere = f"postgresql://sluice@127.0.0.1:{free_port()}/none"  # nothing listens there
    recorder = UsageRecorder(nowhere, str(spool), interval=0.01)
    recorder.record(usage_record("private-model"))
    await recorder.close(grace=0.1)
    assert len(spool.read_bytes().splitlines()) == 1
    late = usage_record("private-model")
    recorder.record(late)  # a request that ended after shutdown began
    lines = spool.read_bytes().splitlines()
    assert len(lines) == 2
    assert str(late.request_id).encode() in lines[1]
    assert recorder.waiting == 2
