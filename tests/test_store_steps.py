"""Transactions written as steps (store.base.Steps): committed, rolled back or committed despite
the error exactly as db.transaction() would, on PostgreSQL, on SQLite in one trip to its writer
thread, and on SQLite statement by statement (the fallback)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from gotrue_lite.errors import APIError
from gotrue_lite.store import UniqueViolation
from gotrue_lite.store import sqlite as sqlite_backend
from gotrue_lite.store.base import Statement
from helpers import db_of

INSERT = "INSERT INTO flow_state (id, auth_code, code_challenge_method, code_challenge, provider_type, authentication_method, created_at, updated_at) VALUES ($1, $2, 's256', 'c', 'email', 'email', $3, $3)"


@pytest.fixture(params=["one trip", "by statement"])
def db(request, server, backend, monkeypatch):
    if backend == "postgres" and request.param == "by statement":
        pytest.skip("PostgreSQL has one way")
    monkeypatch.setattr(sqlite_backend, "ONE_TRIP", request.param == "one trip")
    return db_of(server)


def _flows(server, ids):
    rows = server.run(db_of(server).fetch_all("SELECT id FROM flow_state"))
    return {r["id"] for r in rows} & set(ids)


def _insert(ids, then=None):
    from gotrue_lite import clock
    for flow_id in ids:
        count = yield Statement(INSERT, (flow_id, "code-" + flow_id, clock.now()), "count")
        assert count == 1
    found = yield Statement("SELECT count(*) AS n FROM flow_state WHERE id = $1", (ids[0],), "val")
    if then is not None:
        raise then
    return found


def test_steps_commit_and_return(server, db):
    ids = [str(uuid.uuid4()) for _ in range(3)]
    assert server.run(db.run_transaction(_insert(ids))) == 1
    assert _flows(server, ids) == set(ids)


def test_an_error_rolls_everything_back(server, db):
    ids = [str(uuid.uuid4()) for _ in range(3)]
    with pytest.raises(APIError):
        server.run(db.run_transaction(_insert(ids, APIError(400, "validation_failed", "no"))))
    assert _flows(server, ids) == set()
    with pytest.raises(ZeroDivisionError):
        server.run(db.run_transaction(_insert(ids, ZeroDivisionError())))
    assert _flows(server, ids) == set()


def test_an_error_that_asks_to_commit_keeps_the_writes(server, db):
    ids = [str(uuid.uuid4()) for _ in range(2)]
    with pytest.raises(APIError) as raised:
        server.run(db.run_transaction(_insert(ids, APIError(400, "refresh_token_already_used", "x", commit=True))))
    assert raised.value.error_code == "refresh_token_already_used"
    assert _flows(server, ids) == set(ids)


def test_a_failing_statement_ends_the_steps_and_keeps_nothing(server, db):
    taken = str(uuid.uuid4())
    server.run(db.run_transaction(_insert([taken])))
    fresh = str(uuid.uuid4())
    with pytest.raises(UniqueViolation):
        server.run(db.run_transaction(_insert([fresh, taken])))
    assert _flows(server, [taken, fresh]) == {taken}


def test_a_commit_that_fails_leaves_no_transaction_open(server, db, backend):
    """SQLite: a COMMIT can fail (here a deferred foreign key; in life a full disk) and leave the
    transaction open on the writer; it is rolled back, so the next write still works."""
    if backend != "sqlite":
        pytest.skip("PostgreSQL ends a transaction whose COMMIT fails by itself")
    orphan = str(uuid.uuid4())

    def dangling():
        from gotrue_lite import clock
        yield Statement("PRAGMA defer_foreign_keys = ON", (), "count")
        yield Statement("INSERT INTO identities (id, provider_id, user_id, identity_data, provider, created_at, "
                        "updated_at) VALUES ($1, $1, $2, '{}', 'email', $3, $3)",
                        (str(uuid.uuid4()), orphan, clock.now()), "count")

    async def through_transaction():
        async with db.transaction() as tx:
            await tx.execute("PRAGMA defer_foreign_keys = ON")
            await tx.execute("INSERT INTO identities (id, provider_id, user_id, identity_data, provider) "
                             "VALUES ($1, $1, $2, '{}', 'email')", str(uuid.uuid4()), orphan)

    for attempt in (lambda: db.run_transaction(dangling()), through_transaction):
        with pytest.raises(Exception, match="FOREIGN KEY"):
            server.run(attempt())
        ids = [str(uuid.uuid4())]
        assert server.run(db.run_transaction(_insert(ids))) == 1  # the writer is usable again
        assert _flows(server, ids) == set(ids)
    assert server.run(db.fetch_val("SELECT count(*) FROM identities WHERE user_id = $1", orphan)) == 0


def test_steps_arriving_together_keep_their_own_outcomes(server, db):
    """On SQLite steps that arrive together are committed together (group commit), each in a
    savepoint: one that fails is undone alone, one whose error asks to commit is kept, and the
    others commit. On PostgreSQL each is a transaction of its own; the outcomes are the same."""
    ids = {name: [str(uuid.uuid4())] for name in ("first", "failing", "second", "kept", "third")}

    async def together():
        return await asyncio.gather(
            db.run_transaction(_insert(ids["first"])),
            db.run_transaction(_insert(ids["failing"], APIError(400, "validation_failed", "no"))),
            db.run_transaction(_insert(ids["second"])),
            db.run_transaction(_insert(ids["kept"], APIError(400, "refresh_token_already_used", "x", commit=True))),
            db.run_transaction(_insert(ids["third"])),
            return_exceptions=True,
        )

    first, failing, second, kept, third = server.run(together())
    assert (first, second, third) == (1, 1, 1)
    assert isinstance(failing, APIError) and failing.error_code == "validation_failed"
    assert isinstance(kept, APIError) and kept.error_code == "refresh_token_already_used"
    every = [flow for flows in ids.values() for flow in flows]
    assert _flows(server, every) == set(ids["first"] + ids["second"] + ids["kept"] + ids["third"])
