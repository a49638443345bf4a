"""The hot lookups use their indexes on both backends (no scan of users or refresh tokens)."""

from __future__ import annotations

from gotrue_lite.api.middleware import CTX
from gotrue_lite.store import sessions as session_store
from gotrue_lite.store import users as user_store


class Recorder:
    """Collects the statements a repository function runs, without running them."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.statements: list[tuple[str, tuple]] = []

    async def fetch_one(self, statement, *args):
        self.statements.append((statement, args))
        return None

    async def fetch_all(self, statement, *args):
        self.statements.append((statement, args))
        return []


def test_sign_in_and_refresh_lookups_use_indexes(server, backend):
    db = server.app[CTX].db
    lookups = {
        "users_email_partial_key": user_store.find_by_email,
        "users_phone_key": user_store.find_by_phone,
    }
    expected = []
    for index, find in lookups.items():
        recorder = Recorder(db.dialect)
        server.run(find(recorder, "someone", "authenticated"))
        expected.append((index, recorder.statements[0]))
    recorder = Recorder(db.dialect)
    server.run(session_store.find_refresh_token_with_session(recorder, "abcdefghijkl"))
    expected.append(("refresh_tokens_token_unique", recorder.statements[0]))
    # Statements of the rotation's steps: the first statement each yields.
    for index, steps in (
        ("refresh_tokens_token_unique", session_store.find_refresh_token("abcdefghijkl")),
        ("refresh_tokens_session_id_revoked_idx",
         session_store.active_refresh_token("00000000-0000-0000-0000-000000000001")),
    ):
        statement = next(steps)
        expected.append((index, (statement.sql, statement.args)))

    if backend == "postgres":
        # The planner picks among indexes by statistics: give it a table worth planning for.
        server.run(db.execute(
            "INSERT INTO users (instance_id, id, aud, role, email, phone, created_at, updated_at) "
            "SELECT '00000000-0000-0000-0000-000000000000', gen_random_uuid(), 'authenticated', 'authenticated', "
            "'u' || n || '@example.com', '1555' || lpad(n::text, 7, '0'), now(), now() "
            "FROM generate_series(1, 5000) AS n"))
        server.run(db.execute("ANALYZE users"))

    async def plan(statement: str, args: tuple) -> str:
        async with db.transaction() as tx:
            if backend == "sqlite":
                rows = await tx.fetch_all("EXPLAIN QUERY PLAN " + statement, *args)
                return " | ".join(str(r["detail"]) for r in rows)
            await tx.execute("SET LOCAL enable_seqscan = off")
            rows = await tx.fetch_all("EXPLAIN " + statement, *args)
            return " | ".join(str(next(iter(r.values()))) for r in rows)

    for index, (statement, args) in expected:
        text = server.run(plan(statement, args))
        assert index in text, (index, text)
        assert "Seq Scan" not in text and "SCAN users" not in text.replace("SCAN users USING", ""), text
