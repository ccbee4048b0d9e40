"""The machine's journal of results reported to other peers: found only by key, owner and
coordinator (and id when given), bounded in age and size, shared by several writers."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarm_lsp.dispatch import result_journal
from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.dispatch.result_journal import ResultJournal, find, success


def _lease(task_id: str, key: str = "k", owner: str = "cert:editor") -> pb.LeaseTask:
    return pb.LeaseTask(task=pb.Task(id=task_id, idempotency_key=key), attempt=1, owner=owner)


def _keep(journal: ResultJournal, lease: pb.LeaseTask, text: str = "done") -> bool:
    return journal.record(lease, "10.0.0.1:7000", success(lease, "w", text, b"{}", {}))


def test_found_by_key_owner_coordinator_and_id(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal = ResultJournal(path)
    assert _keep(journal, _lease("t1"))
    assert not _keep(journal, _lease("t2", key=""))  # nothing could resubmit it
    assert not _keep(journal, _lease("t3", owner=""))
    other = ResultJournal(path)  # another worker of the machine, same file
    assert _keep(other, _lease("t4", key="k4"), "four")
    where = {"owner": "cert:editor", "coordinator": "10.0.0.1:7000"}
    found = find(path, idempotency_key="k", task_id="t1", **where)
    assert found is not None and found.text == "done" and found.state == pb.SUCCEEDED
    assert find(path, idempotency_key="k", **where) is not None  # the id may be unknown
    found = find(path, idempotency_key="k4", **where)
    assert found is not None and found.text == "four"
    assert find(path, idempotency_key="k", task_id="t9", **where) is None
    assert (
        find(path, idempotency_key="k", owner="cert:mallory", coordinator="10.0.0.1:7000") is None
    )
    assert find(path, idempotency_key="k", owner="cert:editor", coordinator="10.0.0.2:7000") is None
    assert find(tmp_path / "none.sqlite3", idempotency_key="k", **where) is None
    journal.close()
    other.close()


def test_bounded_in_age_and_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "j.sqlite3"
    journal = ResultJournal(path)
    where = {"owner": "cert:editor", "coordinator": "10.0.0.1:7000"}
    clock = [1_000_000_000]
    monkeypatch.setattr(result_journal, "_now_ms", lambda: clock[0])
    _keep(journal, _lease("old", key="old"))
    clock[0] += int(result_journal.MAX_AGE_S * 1000) + 1
    assert find(path, idempotency_key="old", **where) is None  # too old to be asked for
    monkeypatch.setattr(result_journal, "MAX_BYTES", 2000)
    for i in range(5):
        _keep(journal, _lease(f"t{i}", key=f"k{i}"), "x" * 600)
    with journal._open() as db:
        assert db.execute("SELECT COUNT(*) FROM results WHERE task_id = 'old'").fetchone() == (0,)
        total = db.execute("SELECT SUM(size) FROM results").fetchone()[0]
    assert total <= 2000
    assert find(path, idempotency_key="k4", **where) is not None  # the newest stay
    assert find(path, idempotency_key="k0", **where) is None
    monkeypatch.setattr(result_journal, "MAX_ENTRY_BYTES", 100)
    assert not _keep(journal, _lease("big", key="big"), "y" * 200)
    journal.close()
