"""Domain records (User, Identity, Session, …) and their JSON shapes exactly as clients read them."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

from . import clock


def iso(moment: datetime | None) -> str | None:
    """RFC 3339 in UTC with trimmed fractional seconds, as Go marshals time.Time."""
    if moment is None:
        return None
    if moment.tzinfo is not timezone.utc:
        moment = moment.astimezone(timezone.utc)
    text = moment.replace(tzinfo=None).isoformat(timespec="microseconds").rstrip("0").rstrip(".")
    return text + "Z"


def _put(out: dict[str, Any], key: str, moment: datetime | None) -> None:
    if moment is not None:
        out[key] = iso(moment)


_FIELD_NAMES: dict[type, frozenset[str]] = {}


def _from_row(cls, row: dict[str, Any], **extra: Any):
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = frozenset(f.name for f in fields(cls))
    values = {k: v for k, v in row.items() if k in names}
    values.update(extra)
    return cls(**values)


@dataclass(frozen=True, slots=True)
class Identity:
    id: str  # row id: JSON identity_id
    provider_id: str  # subject at the provider: JSON id
    user_id: str
    identity_data: dict[str, Any]
    provider: str
    last_sign_in_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    email: str | None = None

    from_row = classmethod(_from_row)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "identity_id": self.id,
            "id": self.provider_id,
            "user_id": self.user_id,
            "identity_data": self.identity_data or {},
            "provider": self.provider,
        }
        _put(out, "last_sign_in_at", self.last_sign_in_at)
        _put(out, "created_at", self.created_at)
        _put(out, "updated_at", self.updated_at)
        if self.email:
            out["email"] = self.email
        return out


@dataclass(frozen=True, slots=True)
class Factor:
    id: str
    user_id: str
    friendly_name: str | None
    factor_type: str
    status: str
    created_at: datetime
    updated_at: datetime
    phone: str | None = None
    last_challenged_at: datetime | None = None
    # Never shown: the TOTP secret (maybe an encrypted-string JSON) and the WebAuthn credential.
    secret: str | None = field(default=None, repr=False)
    web_authn_credential: dict[str, Any] | None = field(default=None, repr=False)
    web_authn_aaguid: str | None = None

    from_row = classmethod(_from_row)

    @property
    def verified(self) -> bool:
        return self.status == "verified"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id}
        _put(out, "created_at", self.created_at)
        _put(out, "updated_at", self.updated_at)
        out["status"] = self.status
        if self.friendly_name:
            out["friendly_name"] = self.friendly_name
        out["factor_type"] = self.factor_type
        out["phone"] = self.phone or ""
        out["last_challenged_at"] = iso(self.last_challenged_at)
        if self.web_authn_aaguid:
            out["web_authn_aaguid"] = self.web_authn_aaguid
        return out


@dataclass(frozen=True, slots=True)
class Challenge:
    id: str
    factor_id: str
    created_at: datetime
    ip_address: str
    verified_at: datetime | None = None
    otp_code: str | None = field(default=None, repr=False)  # phone: the code sent (maybe encrypted)
    web_authn_session_data: dict[str, Any] | None = None

    from_row = classmethod(_from_row)


@dataclass(frozen=True, slots=True)
class User:
    id: str
    aud: str | None = ""
    role: str | None = ""
    email: str | None = None
    encrypted_password: str | None = None
    email_confirmed_at: datetime | None = None
    invited_at: datetime | None = None
    confirmation_token: str | None = ""
    confirmation_sent_at: datetime | None = None
    recovery_token: str | None = ""
    recovery_sent_at: datetime | None = None
    email_change_token_new: str | None = ""
    email_change: str | None = ""
    email_change_sent_at: datetime | None = None
    email_change_token_current: str | None = ""
    email_change_confirm_status: int | None = 0
    last_sign_in_at: datetime | None = None
    raw_app_meta_data: dict[str, Any] | None = None
    raw_user_meta_data: dict[str, Any] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    phone: str | None = None
    phone_confirmed_at: datetime | None = None
    phone_change: str | None = ""
    phone_change_token: str | None = ""
    phone_change_sent_at: datetime | None = None
    confirmed_at: datetime | None = None
    banned_until: datetime | None = None
    reauthentication_token: str | None = ""
    reauthentication_sent_at: datetime | None = None
    is_sso_user: bool = False
    deleted_at: datetime | None = None
    is_anonymous: bool = False
    identities: tuple[Identity, ...] = field(default=())
    factors: tuple[Factor, ...] = field(default=())

    from_row = classmethod(_from_row)

    @property
    def app_metadata(self) -> dict[str, Any]:
        return dict(self.raw_app_meta_data or {})

    @property
    def user_metadata(self) -> dict[str, Any]:
        return dict(self.raw_user_meta_data or {})

    @property
    def has_password(self) -> bool:
        return bool(self.encrypted_password)

    def is_banned(self, at: datetime | None = None) -> bool:
        return self.banned_until is not None and self.banned_until > (at or clock.now())

    def to_json(self, *, with_relations: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "aud": self.aud or "",
            "role": self.role or "",
            "email": self.email or "",
        }
        _put(out, "email_confirmed_at", self.email_confirmed_at)
        _put(out, "invited_at", self.invited_at)
        out["phone"] = self.phone or ""
        _put(out, "phone_confirmed_at", self.phone_confirmed_at)
        _put(out, "confirmation_sent_at", self.confirmation_sent_at)
        _put(out, "confirmed_at", self.confirmed_at)
        _put(out, "recovery_sent_at", self.recovery_sent_at)
        if self.email_change:
            out["new_email"] = self.email_change
        _put(out, "email_change_sent_at", self.email_change_sent_at)
        if self.phone_change:
            out["new_phone"] = self.phone_change
        _put(out, "phone_change_sent_at", self.phone_change_sent_at)
        _put(out, "reauthentication_sent_at", self.reauthentication_sent_at)
        _put(out, "last_sign_in_at", self.last_sign_in_at)
        out["app_metadata"] = self.app_metadata
        out["user_metadata"] = self.user_metadata
        if self.factors:
            out["factors"] = [f.to_json() for f in self.factors]
        if with_relations:
            out["identities"] = [i.to_json() for i in self.identities]
        _put(out, "created_at", self.created_at)
        _put(out, "updated_at", self.updated_at)
        _put(out, "banned_until", self.banned_until)
        _put(out, "deleted_at", self.deleted_at)
        out["is_anonymous"] = bool(self.is_anonymous)
        return out


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    user_id: str
    created_at: datetime
    updated_at: datetime
    factor_id: str | None = None
    aal: str | None = "aal1"
    not_after: datetime | None = None
    refreshed_at: datetime | None = None
    user_agent: str | None = None
    ip: str | None = None
    tag: str | None = None

    from_row = classmethod(_from_row)


@dataclass(frozen=True, slots=True)
class RefreshToken:
    id: int
    token: str
    user_id: str
    revoked: bool
    created_at: datetime
    updated_at: datetime
    parent: str | None = None
    session_id: str | None = None

    from_row = classmethod(_from_row)


@dataclass(frozen=True, slots=True)
class AMREntry:
    method: str
    timestamp: int

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "timestamp": self.timestamp}
