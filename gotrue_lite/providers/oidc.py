"""OpenID Connect, once: discovery, the issuers' key sets (cached), and ID token verification.

The entry point is `parse_id_token`:

    token, data = await parse_id_token(cache, issuer, raw_id_token,
                                       audiences=client_ids,      # None: aud not checked here
                                       access_token=access_token) # checked against at_hash if both

It fetches (or reuses) the issuer's discovery document and key set, verifies the token as
upstream does (provider/oidc.go ParseIDToken on go-oidc), and maps its claims with upstream's
per-issuer parser (Google, LinkedIn, Kakao, Vercel Marketplace, Facebook Limited Login,
Snapchat, Azure, Apple, else the generic one) into a providers.UserData. It raises OIDCError
(DiscoveryError when the issuer's documents cannot be had); the message is for logs, callers
answer with their own wording ("Bad ID token" at /token).

What is checked, in go-oidc's order:
- compact JWS with one signature; `alg` in the discovery document's
  id_token_signing_alg_values_supported ∩ {RS,PS,ES 256/384/512, EdDSA} (RS256 when that is
  empty); `none` and HMAC never;
- `iss` equals the issuer (unless skip_issuer_check, Apple's case), `aud` holds one of
  `audiences` when given;
- `exp` in the future with no leeway (a token without exp is expired), `nbf` at most 5 minutes
  ahead; `iat` is not checked (go-oidc does not);
- the signature, by the key named by `kid` (every key when the token names none); a key whose
  JWK says `alg` signs only that alg and its type must suit the alg. An unknown `kid` refetches
  the key set, at most once per JWKS_REFETCH_INTERVAL per issuer, so tokens with made-up kids
  cannot make the server hammer the issuer;
- `at_hash` against `access_token` when both are present (left half of the alg's hash).
The nonce and the audience policy of a flow are the caller's (token_oidc.go does them after).

OIDCCache (one per app) holds per issuer the discovery document and its key set for
GOTRUE_EXTERNAL_OIDC_PROVIDER_CACHE_TTL, at most MAX_ISSUERS of them (least recently used
leave), coalesces concurrent fetches and serves a stale entry when a refresh fails
(provider/oidc_cache.go). Every request goes through the app's one HTTP client, without
following redirects.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import math
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable, Iterable

import aiohttp
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from .. import clock
from .base import Email, UserData

# --- issuers upstream knows by name -----------------------------------------------------------

ISSUER_GOOGLE = "https://accounts.google.com"
ISSUER_APPLE = "https://appleid.apple.com"
ISSUER_APPLE_OTHER = "https://account.apple.com"
ISSUER_FACEBOOK = "https://www.facebook.com"
ISSUER_KAKAO = "https://kauth.kakao.com"
ISSUER_LINKEDIN = "https://www.linkedin.com/oauth"
ISSUER_VERCEL_MARKETPLACE = "https://marketplace.vercel.com"
ISSUER_SNAPCHAT = "https://accounts.snapchat.com/accounts/oauth2/token"
ISSUER_AZURE_COMMON = "https://login.microsoftonline.com/common/v2.0"
ISSUER_AZURE_ORGANIZATIONS = "https://login.microsoftonline.com/organizations/v2.0"
_AZURE = re.compile(r"^https://login[.]microsoftonline[.]com/([^/]+)/v2[.]0/?$")
_AZURE_CIAM = re.compile(r"^https://[a-z0-9-]+[.]ciamlogin[.]com/([^/]+)/v2[.]0/?$")


def is_apple_issuer(issuer: str) -> bool:
    return issuer in (ISSUER_APPLE, ISSUER_APPLE_OTHER)


def is_azure_issuer(issuer: str) -> bool:
    return bool(_AZURE.match(issuer))


def is_azure_ciam_issuer(issuer: str) -> bool:
    return bool(_AZURE_CIAM.match(issuer))


# --- limits -----------------------------------------------------------------------------------

# go-oidc's supportedAlgorithms (upstream oidc_cache.go oidcSupportedAlgorithms): never HMAC,
# never none.
SUPPORTED_ALGORITHMS = frozenset(
    ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA"))
DEFAULT_TTL = timedelta(hours=1)  # GOTRUE_EXTERNAL_OIDC_PROVIDER_CACHE_TTL's default
MAX_ISSUERS = 100
JWKS_REFETCH_INTERVAL = timedelta(seconds=10)
MAX_DOCUMENT = 1 << 20  # discovery documents and key sets: 1 MiB, as upstream's discovery fetch
NBF_LEEWAY = 300  # seconds; go-oidc's, for clock skew


class OIDCError(Exception):
    """The ID token, or the issuer's answer about it, cannot be accepted."""


class DiscoveryError(OIDCError):
    """The issuer's discovery document or key set could not be had (upstream answers 500)."""


# --- base64url, JSON ---------------------------------------------------------------------------

_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")


def _b64decode(segment: str) -> bytes:
    # Go's RawURLEncoding: no padding, nothing outside the alphabet.
    if not _B64URL.match(segment) or len(segment) % 4 == 1:
        raise OIDCError("malformed base64url")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise OIDCError("malformed base64url") from exc


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise OIDCError(f"{what} is not JSON") from exc
    if not isinstance(value, dict):
        raise OIDCError(f"{what} is not a JSON object")
    return value


def unverified_claims(raw: str) -> dict[str, Any]:
    """The payload of a compact JWT without any check (Apple's and Azure's issuer detection)."""
    parts = raw.split(".")
    if len(parts) != 3:
        raise OIDCError("invalid ID token")
    return _json_object(_b64decode(parts[1]), "ID token payload")


def unverified_issuer(raw: str) -> str:
    """provider.DetectAppleIDTokenIssuer / DetectAzureIDTokenIssuer: `iss` read unverified
    ("" when absent); OIDCError when the token cannot be read or iss is not a string."""
    issuer = unverified_claims(raw).get("iss")
    if issuer is None:
        return ""
    if not isinstance(issuer, str):
        raise OIDCError("invalid ID token issuer")
    return issuer


# --- keys ---------------------------------------------------------------------------------------

_HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
_CURVES = {"ES256": ("P-256", ec.SECP256R1, 32), "ES384": ("P-384", ec.SECP384R1, 48),
           "ES512": ("P-521", ec.SECP521R1, 66)}


def _b64int(value: Any) -> int:
    if not isinstance(value, str) or not value:
        raise OIDCError("bad key parameter")
    return int.from_bytes(_b64decode(value), "big")


@dataclass(frozen=True)
class JWK:
    """One public signing key of an issuer."""

    kid: str
    kty: str
    alg: str  # "" when the JWK does not pin one
    key: Any  # a cryptography public key
    crv: str = ""

    @classmethod
    def parse(cls, data: dict[str, Any]) -> "JWK | None":
        """The key, or None when it is no public signing key this server can use."""
        kty, use = data.get("kty"), data.get("use")
        kid, alg = data.get("kid", ""), data.get("alg", "")
        if use not in (None, "sig") or not isinstance(kid, str) or not isinstance(alg, str):
            return None
        try:
            if kty == "RSA":
                key = rsa.RSAPublicNumbers(_b64int(data.get("e")), _b64int(data.get("n"))).public_key()
                return cls(kid, kty, alg, key)
            if kty == "EC":
                crv = data.get("crv")
                curve = next((c for name, c, _ in _CURVES.values() if name == crv), None)
                if curve is None:
                    return None
                numbers = ec.EllipticCurvePublicNumbers(_b64int(data.get("x")), _b64int(data.get("y")), curve())
                return cls(kid, kty, alg, numbers.public_key(), crv)
            if kty == "OKP" and data.get("crv") == "Ed25519":
                x = data.get("x")
                if not isinstance(x, str):
                    return None
                return cls(kid, kty, alg, Ed25519PublicKey.from_public_bytes(_b64decode(x)), "Ed25519")
        except (OIDCError, ValueError, TypeError):
            return None
        return None

    def verify(self, alg: str, signed: bytes, signature: bytes) -> bool:
        """Whether `signature` over `signed` is this key's under `alg`; a key pinned to another
        alg, or of a type the alg does not use, never verifies."""
        if self.alg and self.alg != alg:
            return False
        try:
            if alg[:2] in ("RS", "PS") and self.kty == "RSA":
                digest = _HASHES[alg[2:]]()
                pad = (padding.PKCS1v15() if alg[:2] == "RS"
                       else padding.PSS(mgf=padding.MGF1(digest), salt_length=padding.PSS.AUTO))
                self.key.verify(signature, signed, pad, digest)
                return True
            if alg in _CURVES and self.kty == "EC":
                crv, _, size = _CURVES[alg]
                if self.crv != crv or len(signature) != 2 * size:
                    return False
                der = encode_dss_signature(int.from_bytes(signature[:size], "big"),
                                           int.from_bytes(signature[size:], "big"))
                self.key.verify(der, signed, ec.ECDSA(_HASHES[alg[2:]]()))
                return True
            if alg == "EdDSA" and self.kty == "OKP":
                self.key.verify(signature, signed)
                return True
        except InvalidSignature:
            return False
        return False


def parse_jwks(document: dict[str, Any]) -> list[JWK]:
    keys = document.get("keys")
    if not isinstance(keys, list):
        raise DiscoveryError("the key set has no keys list")
    return [k for k in (JWK.parse(item) for item in keys if isinstance(item, dict)) if k is not None]


# --- discovery ----------------------------------------------------------------------------------

Fetch = Callable[[str], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Discovery:
    """The parts of an issuer's openid-configuration the server uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    jwks_uri: str
    algorithms: tuple[str, ...]  # id_token_signing_alg_values_supported ∩ SUPPORTED_ALGORITHMS
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def parse(cls, document: dict[str, Any]) -> "Discovery":
        def text(key: str) -> str:
            value = document.get(key)
            if value is not None and not isinstance(value, str):
                raise DiscoveryError(f"discovery document: {key} is not a string")
            return value or ""

        algs = document.get("id_token_signing_alg_values_supported") or []
        if not isinstance(algs, list):
            raise DiscoveryError("discovery document: id_token_signing_alg_values_supported is not a list")
        return cls(
            issuer=text("issuer"),
            authorization_endpoint=text("authorization_endpoint"),
            token_endpoint=text("token_endpoint"),
            userinfo_endpoint=text("userinfo_endpoint"),
            jwks_uri=text("jwks_uri"),
            algorithms=tuple(a for a in algs if a in SUPPORTED_ALGORITHMS),
            raw=document,
        )


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


async def fetch_json(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    """GET a JSON object of at most MAX_DOCUMENT bytes, without following redirects."""
    try:
        async with http.get(url, allow_redirects=False, headers={"Accept": "application/json"}) as resp:
            body = await resp.content.read(MAX_DOCUMENT + 1)
            if resp.status != 200:
                raise DiscoveryError(f"{url}: HTTP {resp.status}")
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise DiscoveryError(f"{url}: {type(exc).__name__}") from exc
    if len(body) > MAX_DOCUMENT:
        raise DiscoveryError(f"{url}: answer larger than {MAX_DOCUMENT} bytes")
    try:
        return _json_object(body, url)
    except OIDCError as exc:
        raise DiscoveryError(str(exc)) from None


class KeySet:
    """An issuer's JWKS: fetched on first use, refetched for an unknown kid (rate limited)."""

    def __init__(self, jwks_uri: str, fetch: Fetch):
        self.jwks_uri = jwks_uri
        self._fetch = fetch
        self.keys: list[JWK] | None = None
        self.fetched_at: datetime | None = None
        self._inflight: asyncio.Future[list[JWK]] | None = None

    async def refresh(self) -> list[JWK]:
        # Concurrent callers share one request (go-oidc's inflight).
        if self._inflight is None:
            self._inflight = asyncio.ensure_future(self._load())
        inflight = self._inflight
        try:
            return await asyncio.shield(inflight)
        finally:
            if self._inflight is inflight and inflight.done():
                self._inflight = None

    async def _load(self) -> list[JWK]:
        if not self.jwks_uri:
            raise DiscoveryError("the issuer publishes no jwks_uri")
        # Stamped before the request: a failing issuer is rate limited as well.
        self.fetched_at = clock.now()
        self.keys = parse_jwks(await self._fetch(self.jwks_uri))
        return self.keys

    def may_refetch(self) -> bool:
        return self.fetched_at is None or clock.now() - self.fetched_at >= JWKS_REFETCH_INTERVAL

    async def verify(self, alg: str, kid: str, signed: bytes, signature: bytes) -> None:
        keys = self.keys if self.keys is not None else await self.refresh()
        if self._verifies(keys, alg, kid, signed, signature):
            return
        # go-oidc refetches whenever no cached key verifies: the issuer may have rotated.
        if self.may_refetch():
            if self._verifies(await self.refresh(), alg, kid, signed, signature):
                return
        raise OIDCError("failed to verify signature: no key of the issuer verifies it")

    @staticmethod
    def _verifies(keys: list[JWK], alg: str, kid: str, signed: bytes, signature: bytes) -> bool:
        return any((not kid or key.kid == kid) and key.verify(alg, signed, signature) for key in keys)


@dataclass
class Provider:
    """An issuer as verification sees it: its discovery document and key set."""

    issuer: str
    discovery: Discovery
    keys: KeySet
    fetched_at: datetime


class OIDCCache:
    """Per-issuer discovery documents and key sets (upstream OIDCProviderCache)."""

    def __init__(self, http: aiohttp.ClientSession | None, ttl: timedelta = DEFAULT_TTL,
                 max_issuers: int = MAX_ISSUERS, fetch: Fetch | None = None):
        self.ttl = ttl
        self.max_issuers = max_issuers
        self._http = http
        self._fetch_override = fetch
        self._entries: OrderedDict[str, Provider] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[Provider]] = {}

    async def fetch(self, url: str) -> dict[str, Any]:
        """Every document the cache reads comes through here. `fetch` given to the constructor
        replaces it (custom providers pass one with their SSRF guard)."""
        if self._fetch_override is not None:
            return await self._fetch_override(url)
        if self._http is None:
            raise DiscoveryError("no HTTP client")
        return await fetch_json(self._http, url)

    async def provider(self, issuer: str, *, url: str = "", insecure_issuer: bool = False,
                       fetch: Fetch | None = None) -> Provider:
        """The issuer's provider from the cache, or fetched: from `url` when given (custom
        providers' discovery_url), else <issuer>/.well-known/openid-configuration. The document's
        issuer must equal `issuer` unless `insecure_issuer` (Apple, upstream's
        InsecureIssuerURLContext)."""
        entry = self._entries.get(issuer)
        if entry is not None and clock.now() - entry.fetched_at < self.ttl:
            self._entries.move_to_end(issuer)
            return entry
        inflight = self._inflight.get(issuer)
        if inflight is None:
            inflight = asyncio.ensure_future(self._load(issuer, url, insecure_issuer, fetch or self.fetch))
            self._inflight[issuer] = inflight
        try:
            return await asyncio.shield(inflight)
        except DiscoveryError:
            stale = self._entries.get(issuer)
            if stale is not None:  # keep sign-ins working while the issuer is down
                return stale
            raise
        finally:
            if self._inflight.get(issuer) is inflight and inflight.done():
                del self._inflight[issuer]

    async def _load(self, issuer: str, url: str, insecure_issuer: bool, fetch: Fetch) -> Provider:
        discovery = Discovery.parse(await fetch(url or discovery_url(issuer)))
        if discovery.issuer != issuer and not insecure_issuer:
            raise DiscoveryError(f"issuer did not match the issuer returned by provider, "
                                 f"expected {issuer!r} got {discovery.issuer!r}")
        entry = Provider(issuer, discovery, KeySet(discovery.jwks_uri, fetch), clock.now())
        self._entries[issuer] = entry
        self._entries.move_to_end(issuer)
        while len(self._entries) > self.max_issuers:
            self._entries.popitem(last=False)
        return entry

    def invalidate(self, issuer: str) -> None:
        self._entries.pop(issuer, None)

    def clear(self) -> None:
        self._entries.clear()


# --- the ID token -------------------------------------------------------------------------------


@dataclass(frozen=True)
class IDToken:
    issuer: str
    subject: str
    audience: tuple[str, ...]
    expiry: float
    issued_at: float | None
    nonce: str
    at_hash: str
    algorithm: str
    claims: dict[str, Any]


def _number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _string_claim(claims: dict[str, Any], key: str) -> str:
    value = claims.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise OIDCError(f"failed to unmarshal claims: {key} is not a string")
    return value


def _audience(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise OIDCError("failed to unmarshal claims: aud is neither a string nor a list of strings")


def _time_claim(claims: dict[str, Any], key: str) -> float | None:
    value = claims.get(key)
    if value is None:
        return None
    if not _number(value):
        raise OIDCError(f"failed to unmarshal claims: {key} is not a number")
    return float(value)


def verify(provider: Provider, raw: str, *, audiences: Iterable[str] | None = None,
           skip_issuer_check: bool = False, now: datetime | None = None) -> tuple[IDToken, bytes, bytes, str]:
    """The checks before the signature (go-oidc IDTokenVerifier.Verify); returns the token and
    what the signature covers."""
    parts = raw.split(".")
    if len(parts) != 3:
        raise OIDCError("malformed jwt: compact JWS format must have three parts")
    header = _json_object(_b64decode(parts[0]), "JOSE header")
    claims = _json_object(_b64decode(parts[1]), "ID token payload")
    signature = _b64decode(parts[2])
    alg = header.get("alg")
    if not isinstance(alg, str):
        raise OIDCError("malformed jwt: no alg")
    if header.get("crit") is not None:
        raise OIDCError("malformed jwt: unsupported crit header")
    kid = header.get("kid", "")
    if not isinstance(kid, str):
        raise OIDCError("malformed jwt: kid is not a string")

    token = IDToken(
        issuer=_string_claim(claims, "iss"),
        subject=_string_claim(claims, "sub"),
        audience=_audience(claims.get("aud")),
        expiry=_time_claim(claims, "exp") or 0.0,
        issued_at=_time_claim(claims, "iat"),
        nonce=_string_claim(claims, "nonce"),
        at_hash=_string_claim(claims, "at_hash"),
        algorithm=alg,
        claims=claims,
    )
    if not skip_issuer_check and token.issuer != provider.issuer:
        raise OIDCError(f"id token issued by a different provider, expected {provider.issuer!r} "
                        f"got {token.issuer!r}")
    if audiences is not None:
        wanted = [a for a in audiences if a]
        if not any(a in token.audience for a in wanted):
            raise OIDCError(f"expected audience in {wanted!r} got {list(token.audience)!r}")
    moment = (now or clock.now()).timestamp()
    if token.expiry < moment:
        raise OIDCError("token is expired")
    nbf = _time_claim(claims, "nbf")
    if nbf is not None and moment + NBF_LEEWAY < nbf:
        raise OIDCError("current time before the nbf (not before) time")
    allowed = provider.discovery.algorithms or ("RS256",)
    if alg not in allowed:
        raise OIDCError(f"id token signed with unsupported algorithm, expected {list(allowed)!r} got {alg!r}")
    signed = f"{parts[0]}.{parts[1]}".encode("ascii")
    return token, signed, signature, kid


def verify_access_token(token: IDToken, access_token: str) -> None:
    """go-oidc IDToken.VerifyAccessToken: at_hash = base64url(left half of hash(access_token))."""
    if not token.at_hash:
        raise OIDCError("id token did not have an access token hash")
    digest = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}.get(token.algorithm[2:])
    if token.algorithm[:2] not in ("RS", "ES", "PS") or digest is None:
        raise OIDCError(f"unsupported signing algorithm {token.algorithm!r}")
    full = digest(access_token.encode()).digest()
    expected = base64.urlsafe_b64encode(full[: len(full) // 2]).rstrip(b"=").decode()
    if expected != token.at_hash:
        raise OIDCError("access token hash does not match value in ID token")


async def parse_id_token(cache: OIDCCache, issuer: str, raw: str, *,
                         audiences: Iterable[str] | None = None, skip_issuer_check: bool = False,
                         insecure_issuer: bool = False, access_token: str = "",
                         discovery: str = "", fetch: Fetch | None = None) -> tuple[IDToken, UserData]:
    """Verify `raw` as an ID token of `issuer` and read the person from it (the entry point;
    see the module docstring). `discovery` is an explicit discovery URL (custom providers)."""
    provider = await cache.provider(issuer, url=discovery, insecure_issuer=insecure_issuer, fetch=fetch)
    token, signed, signature, kid = verify(provider, raw, audiences=audiences,
                                           skip_issuer_check=skip_issuer_check)
    await provider.keys.verify(token.algorithm, kid, signed, signature)
    data = user_data(token)
    if access_token and token.at_hash:
        verify_access_token(token, access_token)
    return token, data


# --- claims → UserData (upstream's per-issuer parsers) -----------------------------------------

# upstream's Claims (provider/provider.go) as JSON: these keys, empty ones left out, except
# email_verified and phone_verified, which identities.identity_data always carries.
_STRING_CLAIMS = ("iss", "sub", "name", "family_name", "given_name", "middle_name", "nickname",
                  "preferred_username", "profile", "picture", "website", "gender", "birthdate",
                  "zoneinfo", "locale", "email", "phone", "full_name", "avatar_url", "slug",
                  "provider_id", "user_name")


def claims_map(**values: Any) -> dict[str, Any]:
    """A claims map as upstream stores it: empty values left out, the two flags always there."""
    out = {k: v for k, v in values.items() if v not in ("", None, 0, 0.0, [], {}, ()) and v is not False}
    out["email_verified"] = bool(values.get("email_verified", False))
    out["phone_verified"] = bool(values.get("phone_verified", False))
    return out


def _bool_claim(claims: dict[str, Any], key: str) -> bool:
    value = claims.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise OIDCError(f"failed to unmarshal claims: {key} is not a boolean")
    return value


def _updated_at(value: Any) -> Any:
    """UnixTimeOrString: a number of seconds or an RFC 3339 string, kept as Go marshals it."""
    if value is None or value == "":
        return None
    if _number(value):
        moment = datetime.fromtimestamp(int(value), timezone.utc)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise OIDCError("failed to unmarshal claims: updated_at") from None
        if moment.tzinfo is None:
            raise OIDCError("failed to unmarshal claims: updated_at")
        moment = moment.astimezone(timezone.utc)
    else:
        raise OIDCError("failed to unmarshal claims: updated_at")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def standard_claims(claims: dict[str, Any]) -> dict[str, Any]:
    """The token decoded straight into upstream's Claims (parseGenericIDToken): the standard
    keys only, each of its Go type or decoding fails."""
    values: dict[str, Any] = {key: _string_claim(claims, key) for key in _STRING_CLAIMS}
    values["aud"] = list(_audience(claims.get("aud")))
    for key in ("iat", "exp"):
        values[key] = _time_claim(claims, key)
    values["email_verified"] = _bool_claim(claims, "email_verified")
    values["phone_verified"] = _bool_claim(claims, "phone_verified")
    values["updated_at"] = _updated_at(claims.get("updated_at"))
    custom = claims.get("custom_claims")
    if custom is not None and not isinstance(custom, dict):
        raise OIDCError("failed to unmarshal claims: custom_claims is not an object")
    values["custom_claims"] = custom
    for key in ("iat", "exp"):  # Go keeps them as float64; whole numbers print as integers
        if values[key] is not None and float(values[key]).is_integer():
            values[key] = int(values[key])
    return values


def _primary(email: str, verified: bool) -> list[Email]:
    return [Email(email, verified, True)] if email else []


def _google(token: IDToken) -> UserData:
    c = token.claims
    email, name, picture = (_string_claim(c, k) for k in ("email", "name", "picture"))
    verified = _bool_claim(c, "verified_email") or _bool_claim(c, "email_verified")
    hd = _string_claim(c, "hd")
    return UserData(_primary(email, verified), claims_map(
        iss=_string_claim(c, "iss"), sub=_string_claim(c, "sub"), name=name, picture=picture,
        avatar_url=picture, full_name=name, provider_id=_string_claim(c, "sub"),
        custom_claims={"hd": hd} if hd else None))


def _facebook(token: IDToken) -> UserData:
    c = token.claims
    email = _string_claim(c, "email")
    return UserData(_primary(email, True), claims_map(
        iss=token.issuer, sub=token.subject, name=_string_claim(c, "name"),
        picture=_string_claim(c, "picture"), provider_id=token.subject, email=email,
        email_verified=bool(email)))


def _apple(token: IDToken) -> UserData:
    c = token.claims
    custom: dict[str, Any] = {}
    private = c.get("is_private_email")
    if private is not None:
        if isinstance(private, str) and private.lower() in ("1", "t", "true", "0", "f", "false"):
            private = private.lower() in ("1", "t", "true")
        if not isinstance(private, bool):
            raise OIDCError("failed to unmarshal claims: is_private_email")
        custom["is_private_email"] = private
    auth_time = c.get("auth_time")
    if auth_time is not None:
        if not _number(auth_time):
            raise OIDCError("failed to unmarshal claims: auth_time")
        custom["auth_time"] = auth_time
    transfer = _string_claim(c, "transfer_sub")
    if transfer:
        custom["transfer_sub"] = transfer
    # Apple's email counts as verified, even an empty one (upstream appends it unconditionally).
    return UserData([Email(_string_claim(c, "email"), True, True)], claims_map(
        iss=token.issuer, sub=token.subject, provider_id=token.subject, custom_claims=custom or None))


def _linkedin(token: IDToken) -> UserData:
    c = token.claims
    raw = _string_claim(c, "email_verified")
    # Go's strconv.ParseBool
    if raw in ("1", "t", "T", "TRUE", "true", "True"):
        verified = True
    elif raw in ("0", "f", "F", "FALSE", "false", "False"):
        verified = False
    else:
        raise OIDCError(f"strconv.ParseBool: parsing {raw!r}: invalid syntax")
    given, family = _string_claim(c, "given_name"), _string_claim(c, "family_name")
    return UserData(_primary(_string_claim(c, "email"), verified), claims_map(
        iss=token.issuer, sub=token.subject, name=f"{given} {family}".strip(), given_name=given,
        family_name=family, locale=_string_claim(c, "locale"), picture=_string_claim(c, "picture"),
        provider_id=token.subject))


_AZURE_REGISTERED = ("aud", "iss", "iat", "nbf", "exp", "c_hash", "at_hash", "aio", "nonce", "rh",
                     "uti", "jti", "ver", "sub", "name", "preferred_username")


def _azure(token: IDToken) -> UserData:
    c = token.claims
    email = _string_claim(c, "email")
    edov = c.get("xms_edov")
    if edov is None:
        verified = bool(email)
    else:
        verified = bool(email) and (edov is True or edov in ("1", "true"))
    custom = {k: v for k, v in c.items() if k not in _AZURE_REGISTERED}
    return UserData(_primary(email, verified), claims_map(
        iss=token.issuer, sub=token.subject, provider_id=token.subject,
        preferred_username=_string_claim(c, "preferred_username"), full_name=_string_claim(c, "name"),
        custom_claims=custom))


def _kakao(token: IDToken) -> UserData:
    c = token.claims
    nickname = _string_claim(c, "nickname")
    return UserData(_primary(_string_claim(c, "email"), True), claims_map(
        iss=token.issuer, sub=token.subject, name=nickname, preferred_username=nickname,
        provider_id=token.subject, picture=_string_claim(c, "picture")))


def _vercel_marketplace(token: IDToken) -> UserData:
    c = token.claims
    global_id = _string_claim(c, "global_user_id")
    subject = f"global_user_id:{global_id}" if global_id else token.subject
    return UserData([Email(_string_claim(c, "user_email"), True, True)], claims_map(
        iss=token.issuer, sub=subject, provider_id=subject, name=_string_claim(c, "user_name"),
        picture=_string_claim(c, "user_avatar_url")))


def _generic(token: IDToken, *, always_verified: bool = False) -> UserData:
    values = standard_claims(token.claims)
    if always_verified and values["email"]:  # parseSnapchatIDToken
        values["email_verified"] = True
    return UserData(_primary(values["email"], values["email_verified"]), claims_map(**values))


def user_data(token: IDToken) -> UserData:
    """provider/oidc.go ParseIDToken's switch on the (verified) issuer."""
    parser: Callable[[IDToken], UserData] = {
        ISSUER_GOOGLE: _google,
        ISSUER_LINKEDIN: _linkedin,
        ISSUER_KAKAO: _kakao,
        ISSUER_VERCEL_MARKETPLACE: _vercel_marketplace,
        ISSUER_FACEBOOK: _facebook,
        ISSUER_SNAPCHAT: lambda t: _generic(t, always_verified=True),
    }.get(token.issuer) or (_azure if is_azure_issuer(token.issuer)
                            else _apple if is_apple_issuer(token.issuer) else _generic)
    return parser(token)


# --- Azure's issuer rules (provider/azure.go) ----------------------------------------------------


def azure_expected_issuer(url: str) -> str:
    """The issuer a tenant-specific GOTRUE_EXTERNAL_AZURE_URL promises, or "" for none
    (common / organizations / not an Azure URL)."""
    if not url:
        return ""
    expected = url.rstrip("/") + "/v2.0"
    if (not is_azure_issuer(expected) and not is_azure_ciam_issuer(expected)) or \
            expected in (ISSUER_AZURE_COMMON, ISSUER_AZURE_ORGANIZATIONS):
        return ""
    return expected


def azure_token_issuer(raw: str, url: str) -> str:
    """The issuer to verify an Azure callback ID token against: its own (read unverified),
    which must be an Azure issuer (CIAM only when the configured tenant is CIAM) and equal the
    configured tenant's issuer when there is one. Upstream lets any issuer through unless the
    tenant is CIAM; gotrue-lite requires an Azure one (EXTERNAL.md §3.3)."""
    issuer = unverified_issuer(raw)
    expected = azure_expected_issuer(url)
    if not (is_azure_issuer(issuer) or (is_azure_ciam_issuer(expected) and is_azure_ciam_issuer(issuer))):
        raise OIDCError(f"azure: ID token issuer not valid {issuer!r}")
    if expected and issuer != expected:
        raise OIDCError(f"azure: ID token issuer {issuer!r} does not match expected issuer {expected!r}")
    return issuer
