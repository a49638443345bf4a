"""Moving users between stores: the JSON-lines export format, the checks every imported record
passes, and the export and import loops (a page or a batch at a time, so memory stays bounded
whatever the number of users)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, AsyncIterator, Awaitable, Callable

from .. import clock, crypto, imported_hashes
from ..store import StatementRefused
from ..store import transfer as store

FORMAT = "gotrue-lite-users"
VERSION = 1
SECRETS_NOTE = ("this file holds password hashes and MFA secrets: it is written readable by its "
                "owner only (mode 0600); keep it that way and delete it once imported")
FACTOR_TYPES = ("totp", "webauthn", "phone")
FACTOR_STATUSES = ("unverified", "verified")


class TransferError(Exception):
    """A record that cannot be imported: `where` names it (a line of the file, or a user)."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where


@dataclass
class Counts:
    users: int = 0
    identities: int = 0
    factors: int = 0
    audit: int = 0
    skipped_users: int = 0  # already in the target under the same id: left as they are
    skipped_audit: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


# --- export --------------------------------------------------------------------------------


def header(source: str, audit: bool) -> dict[str, Any]:
    return {"type": "header", "format": FORMAT, "version": VERSION, "source": source,
            "exported_at": clock.now().astimezone(timezone.utc).isoformat(), "audit": audit,
            "secrets": SECRETS_NOTE}


def user_record(row: dict[str, Any]) -> dict[str, Any]:
    record = {"type": "user", **{name: row[name] for name in store.USER_FIELDS}}
    record["identities"] = [{name: i[name] for name in store.IDENTITY_FIELDS} for i in row["identities"]]
    record["factors"] = [{name: f[name] for name in store.FACTOR_FIELDS} for f in row["factors"]]
    return record


def audit_record(row: dict[str, Any]) -> dict[str, Any]:
    return {"type": "audit", **{name: row[name] for name in store.AUDIT_FIELDS}}


async def export(snap: store.Snapshot, write: Callable[[str], Awaitable[None]], *, source: str,
                 audit: bool, page_size: int = 1000) -> Counts:
    """Writes the header, every user (with identities and factors), the audit log if asked,
    and the end record that tells a complete file from a cut one."""
    counts = Counts()
    await write(_dumps(header(source, audit)) + "\n")
    async for page in store.user_pages(snap, page_size):
        for user in page:
            counts.users += 1
            counts.identities += len(user["identities"])
            counts.factors += len(user["factors"])
        await write("".join(_dumps(user_record(user)) + "\n" for user in page))
    if audit:
        async for page in store.audit_pages(snap, page_size):
            counts.audit += len(page)
            await write("".join(_dumps(audit_record(row)) + "\n" for row in page))
    await write(_dumps({"type": "end", "users": counts.users, "identities": counts.identities,
                        "factors": counts.factors, "audit": counts.audit}) + "\n")
    return counts


async def snapshot_records(snap: store.Snapshot, *, audit: bool, page_size: int = 1000
                           ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """Another database's users as records (import --from), each named by its user id; they
    pass the same checks as the lines of a file."""
    async for page in store.user_pages(snap, page_size):
        for user in page:
            yield f"user {user['id']}", json.loads(_dumps(user_record(user)))
    if audit:
        async for page in store.audit_pages(snap, page_size):
            for row in page:
                yield f"audit entry {row['id']}", json.loads(_dumps(audit_record(row)))


# --- reading a file ------------------------------------------------------------------------


def parse_line(text: str, where: str) -> dict[str, Any] | None:
    """The record on one line; None for a blank line."""
    if not text.strip():
        return None
    try:
        record = json.loads(text)
    except ValueError as exc:
        raise TransferError(where, f"not JSON ({exc})") from None
    if not isinstance(record, dict) or not isinstance(record.get("type"), str):
        raise TransferError(where, 'not a record: expected a JSON object with a "type"')
    return record


# --- checks --------------------------------------------------------------------------------


class _Fields:
    """Reads a record's fields, saying which one is wrong; refuses fields it does not know."""

    def __init__(self, record: dict[str, Any], where: str, known: list[str], what: str) -> None:
        unknown = sorted(set(record) - set(known) - {"type"})
        if unknown:
            raise TransferError(where, f"{what}: unknown field {unknown[0]!r}")
        self.record, self.where, self.what = record, where, what

    def fail(self, name: str, message: str) -> TransferError:
        return TransferError(self.where, f"{self.what}: {name}: {message}")

    def uuid(self, name: str, *, required: bool = True) -> str | None:
        value = self.record.get(name)
        if value is None and not required:
            return None
        try:
            return str(uuid.UUID(value)) if isinstance(value, str) and len(value) == 36 else _raise()
        except ValueError:
            raise self.fail(name, "not a uuid") from None

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self.record.get(name)
        if value is None and not required:
            return None
        if not isinstance(value, str) or (required and not value):
            raise self.fail(name, "must be a non-empty string" if required else "must be a string or null")
        return value

    def time(self, name: str, *, required: bool = False) -> datetime | None:
        value = self.record.get(name)
        if value is None and not required:
            return None
        try:
            if not isinstance(value, str):
                raise ValueError
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise self.fail(name, "must be an ISO 8601 time") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)

    def flag(self, name: str, default: bool | None) -> bool | None:
        value = self.record.get(name, default)
        if value is None and default is None:
            return None
        if not isinstance(value, bool):
            raise self.fail(name, "must be true or false")
        return value

    def json(self, name: str, *, required: bool = False, kinds: tuple[type, ...] = (dict,)) -> Any:
        value = self.record.get(name)
        if value is None and not required:
            return None
        if not isinstance(value, kinds):
            raise self.fail(name, "must be a JSON object" if kinds == (dict,) else "must be a JSON object or array")
        return value

    def list_of_objects(self, name: str) -> list[dict[str, Any]]:
        value = self.record.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail(name, "must be a list of JSON objects")
        return value


def _raise() -> Any:
    raise ValueError


@dataclass
class UserRows:
    user: dict[str, Any]
    identities: list[dict[str, Any]] = field(default_factory=list)
    factors: list[dict[str, Any]] = field(default_factory=list)


def _password_hash(f: _Fields) -> str | None:
    value = f.text("encrypted_password")
    if not value:
        return value
    if value.startswith(imported_hashes.TEXT_PREFIXES):
        problem = imported_hashes.problem(value)
        if problem:
            raise f.fail("encrypted_password", problem)
    elif crypto.bcrypt_cost(value) is None:
        raise f.fail("encrypted_password", "not a bcrypt, argon2 or Firebase scrypt hash")
    return value


def checked_user(record: dict[str, Any], where: str) -> UserRows:
    f = _Fields(record, where, [*store.USER_FIELDS, "identities", "factors"], "user")
    user_id = f.uuid("id")
    f.what = f"user {user_id}"
    email = f.text("email")
    phone = f.text("phone")
    user = {
        "id": user_id,
        # The Go model reads aud and role into plain strings: '' rather than NULL.
        "aud": f.text("aud") or "",
        "role": f.text("role") or "",
        "email": email.lower() if email else None,  # stored lower-case, NULL when none
        "encrypted_password": _password_hash(f),
        "raw_app_meta_data": f.json("raw_app_meta_data"),
        "raw_user_meta_data": f.json("raw_user_meta_data"),
        "is_super_admin": f.flag("is_super_admin", None),
        "phone": phone or None,
        "is_sso_user": f.flag("is_sso_user", False),
        "is_anonymous": f.flag("is_anonymous", False),
    }
    for name in ("email_confirmed_at", "invited_at", "last_sign_in_at", "created_at", "updated_at",
                 "phone_confirmed_at", "banned_until", "deleted_at"):
        user[name] = f.time(name)
    rows = UserRows({name: user[name] for name in store.USER_FIELDS})
    for n, item in enumerate(f.list_of_objects("identities")):
        i = _Fields(item, where, store.IDENTITY_FIELDS, f"user {user_id}: identity {n + 1}")
        rows.identities.append({
            "user_id": user_id, "id": i.uuid("id"), "provider_id": i.text("provider_id", required=True),
            "identity_data": i.json("identity_data", required=True), "provider": i.text("provider", required=True),
            "last_sign_in_at": i.time("last_sign_in_at"), "created_at": i.time("created_at"),
            "updated_at": i.time("updated_at"),
        })
    for n, item in enumerate(f.list_of_objects("factors")):
        m = _Fields(item, where, store.FACTOR_FIELDS, f"user {user_id}: factor {n + 1}")
        factor = {
            "user_id": user_id, "id": m.uuid("id"), "friendly_name": m.text("friendly_name"),
            "factor_type": m.text("factor_type", required=True), "status": m.text("status", required=True),
            "created_at": m.time("created_at", required=True), "updated_at": m.time("updated_at", required=True),
            "secret": m.text("secret"), "phone": m.text("phone"), "last_challenged_at": m.time("last_challenged_at"),
            "web_authn_credential": m.json("web_authn_credential", kinds=(dict, list)),
            "web_authn_aaguid": m.uuid("web_authn_aaguid", required=False),
            "last_webauthn_challenge_data": m.json("last_webauthn_challenge_data", kinds=(dict, list)),
        }
        if factor["factor_type"] not in FACTOR_TYPES:
            raise m.fail("factor_type", f"must be one of {', '.join(FACTOR_TYPES)}")
        if factor["status"] not in FACTOR_STATUSES:
            raise m.fail("status", f"must be one of {', '.join(FACTOR_STATUSES)}")
        rows.factors.append(factor)
    return rows


def checked_audit(record: dict[str, Any], where: str) -> dict[str, Any]:
    f = _Fields(record, where, store.AUDIT_FIELDS, "audit entry")
    return {"id": f.uuid("id"), "payload": f.json("payload"), "created_at": f.time("created_at"),
            "ip_address": f.text("ip_address") or ""}


# --- import --------------------------------------------------------------------------------


class Target:
    """Where checked batches go: the database (one transaction a batch), or nowhere (dry run)."""

    def __init__(self, db: Any = None, *, lookup: Any = None, dry_run: bool = False) -> None:
        self.db, self.lookup, self.dry_run = db, lookup, dry_run

    async def write(self, users: list[tuple[str, UserRows]], audit: list[tuple[str, dict[str, Any]]],
                    counts: Counts) -> None:
        if self.dry_run:
            ids = [rows.user["id"] for _, rows in users]
            present = await store.existing_user_ids(self.lookup, ids) if self.lookup and ids else set()
            for _, rows in users:
                if rows.user["id"] in present:
                    counts.skipped_users += 1
                else:
                    counts.users += 1
                    counts.identities += len(rows.identities)
                    counts.factors += len(rows.factors)
            counts.audit += len(audit)  # (a dry run does not look the entries up)
            return
        try:
            async with self.db.transaction() as tx:
                added = await self._insert(tx, users, audit)
        except StatementRefused as exc:
            raise await self._culprit(users, audit, exc) from exc
        inserted, audit_added = added
        for _, rows in users:
            if rows.user["id"] in inserted:
                counts.users += 1
                counts.identities += len(rows.identities)
                counts.factors += len(rows.factors)
            else:
                counts.skipped_users += 1
        counts.audit += audit_added
        counts.skipped_audit += len(audit) - audit_added

    @staticmethod
    async def _insert(tx: Any, users: list[tuple[str, UserRows]], audit: list[tuple[str, dict[str, Any]]]
                      ) -> tuple[set[str], int]:
        inserted = await store.insert_users(tx, [rows.user for _, rows in users]) if users else set()
        # A user already in the target is left whole: its identities and factors as well.
        new = [rows for _, rows in users if rows.user["id"] in inserted]
        await store.insert_identities(tx, [i for rows in new for i in rows.identities])
        await store.insert_factors(tx, [f for rows in new for f in rows.factors])
        return inserted, await store.insert_audit(tx, [entry for _, entry in audit]) if audit else 0

    async def _culprit(self, users: list[tuple[str, UserRows]], audit: list[tuple[str, dict[str, Any]]],
                       refused: StatementRefused) -> TransferError:
        """The first record of a refused batch that the database refuses on its own, found by
        inserting them one at a time in a transaction that is always rolled back."""

        class _Undo(Exception):
            pass

        found: TransferError | None = None
        try:
            async with self.db.transaction() as tx:
                for where, rows in users:
                    try:
                        await self._insert(tx, [(where, rows)], [])
                    except StatementRefused as exc:
                        found = TransferError(where, f"the target database refused it: {_reason(exc)}")
                        raise _Undo from exc
                for where, entry in audit:
                    try:
                        await self._insert(tx, [], [(where, entry)])
                    except StatementRefused as exc:
                        found = TransferError(where, f"the target database refused it: {_reason(exc)}")
                        raise _Undo from exc
                raise _Undo
        except _Undo:
            pass
        first = (users or audit)[0][0]
        return found or TransferError(f"the batch from {first}", f"the target database refused it: {_reason(refused)}")


def _reason(exc: StatementRefused) -> str:
    return f"{exc.message} ({exc.detail})" if exc.detail else exc.message


async def import_records(records: AsyncIterator[tuple[str, dict[str, Any]]], target: Target, *,
                         framed: bool, batch_size: int = 500, counts: Counts | None = None) -> Counts:
    """Checks every record and hands them to the target a batch at a time. A framed source (a
    file) must open with its header and close with its end record; a batch is written only
    once all of its records passed, so a bad record leaves nothing of its batch behind.
    `counts` (if given) shows what was done so far when a record fails."""
    counts = counts if counts is not None else Counts()
    users: list[tuple[str, UserRows]] = []
    audit: list[tuple[str, dict[str, Any]]] = []
    seen: dict[str, str] = {}  # the ids of the batch being gathered, and where each was
    started = ended = not framed
    read = {"users": 0, "identities": 0, "factors": 0, "audit": 0}
    last_where = "the start of the file"

    async def flush() -> None:
        nonlocal users, audit
        if users or audit:
            await target.write(users, audit, counts)
        users, audit = [], []
        seen.clear()

    async for where, record in records:
        last_where = where
        kind = record.get("type")
        if ended and framed:
            raise TransferError(where, "a record after the end record")
        if not started:
            if kind != "header" or record.get("format") != FORMAT:
                raise TransferError(where, f"not a {FORMAT} export: the first record must be its header")
            if not isinstance(record.get("version"), int) or record["version"] > VERSION:
                raise TransferError(where, f"export format version {record.get('version')!r} is newer than "
                                           f"this gotrue-lite reads ({VERSION})")
            started = True
            continue
        if kind == "user":
            rows = checked_user(record, where)
            user_id = rows.user["id"]
            if user_id in seen:
                raise TransferError(where, f"user {user_id} appears twice (also at {seen[user_id]})")
            seen[user_id] = where
            users.append((where, rows))
            read["users"] += 1
            read["identities"] += len(rows.identities)
            read["factors"] += len(rows.factors)
        elif kind == "audit":
            audit.append((where, checked_audit(record, where)))
            read["audit"] += 1
        elif kind == "end" and framed:
            said = {name: record.get(name) for name in read}
            if said != read:
                raise TransferError(where, f"the end record counts {said}, the file holds {read}")
            ended = True
        else:
            raise TransferError(where, f"unknown record type {kind!r}")
        if len(users) >= batch_size or len(audit) >= batch_size:
            await flush()
    if not started:
        raise TransferError(last_where, "the file is empty")
    if not ended:
        # The last batch is not written: a cut file says nothing about what was cut.
        raise TransferError(f"after {last_where}", f"the file ends without its end record (cut short?); "
                                                   f"the last {len(users)} users read were not imported")
    await flush()
    return counts
