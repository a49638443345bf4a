"""Reading a hook's answer as upstream does: the `error` object, and each hook's output shape."""

from __future__ import annotations

import json
from typing import Any

from ..errors import APIError

# upstream tokens.MinimumViableTokenSchema: the claims a custom_access_token answer must keep,
# and the JSON types of those it constrains, in the schema's order.
REQUIRED_CLAIMS = ("aud", "exp", "iat", "sub", "email", "phone", "role", "aal", "session_id", "is_anonymous")
CLAIM_TYPES: dict[str, tuple[str, ...]] = {
    "aud": ("string", "array"), "exp": ("integer",), "jti": ("string",), "iat": ("integer",),
    "iss": ("string",), "nbf": ("integer",), "sub": ("string",), "email": ("string",),
    "phone": ("string",), "app_metadata": ("object",), "user_metadata": ("object",),
    "role": ("string",), "aal": ("string",), "amr": ("array",), "session_id": ("string",),
    "client_id": ("string",),
}


def _unparsable() -> APIError:
    return APIError(500, "unexpected_failure", "Error unmarshaling JSON output.")


def error_object(answer: bytes | str | None) -> APIError | None:
    """An answer `{"error": {"http_code", "message"}}` aborts the request with them (upstream
    hookserrors.Check): without a message it is no error; without a code it is a 500."""
    if answer is None:
        return None
    try:
        parsed = json.loads(answer)
    except ValueError:
        return None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict):
        return None
    message, code = error.get("message"), error.get("http_code")
    if not isinstance(message, str) or not message:
        return None
    status = code if isinstance(code, int) and not isinstance(code, bool) and code else 500
    # upstream's HTTPError carries no error_code here; its envelope fills in these two.
    return APIError(status, "unexpected_failure" if status == 500 else "unknown", message)


def parse(answer: bytes | str | None, fields: dict[str, type]) -> dict[str, Any]:
    """The answer's fields of interest with Go's unmarshalling strictness: not JSON, not an
    object, or a field of the wrong type is upstream's 500; no answer (204) is all defaults."""
    if answer is None:
        return {}
    try:
        parsed = json.loads(answer)
    except ValueError:
        raise _unparsable() from None
    if parsed is None:
        return {}
    if not isinstance(parsed, dict):
        raise _unparsable()
    out: dict[str, Any] = {}
    for name, kind in fields.items():
        value = parsed.get(name)
        if value is None:
            continue
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise _unparsable()
        out[name] = value
    return out


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def access_token_claims(answer: bytes | str | None) -> dict[str, Any]:
    """custom_access_token's claims, checked as upstream (CustomAccessTokenOutput, then
    validateTokenClaims); the messages follow upstream's JSON-schema library."""
    if answer is None:
        claims: Any = None
    else:
        try:
            parsed = json.loads(answer)
        except ValueError:
            raise _unparsable() from None
        if not isinstance(parsed, dict):
            raise _unparsable()
        if "claims" not in parsed:
            raise APIError(500, "unexpected_failure", "output claims field is missing")
        claims = parsed["claims"]
        if claims is not None and not isinstance(claims, dict):
            raise _unparsable()
    problems: list[str] = []
    if not isinstance(claims, dict):
        problems.append(f"(root): Invalid type. Expected: object, given: {_json_type(claims)}")
    else:
        problems += [f"(root): {name} is required" for name in REQUIRED_CLAIMS if name not in claims]
        for name, kinds in CLAIM_TYPES.items():
            if name in claims and _json_type(claims[name]) not in kinds \
                    and not ("number" in kinds and _json_type(claims[name]) == "integer"):
                problems.append(f"{name}: Invalid type. Expected: {', '.join(kinds)}, "
                                f"given: {_json_type(claims[name])}")
        amr = claims.get("amr")
        if isinstance(amr, list):
            for index, entry in enumerate(amr):
                if _json_type(entry) not in ("string", "object"):
                    problems.append(f"amr.{index}: Must validate at least one schema (anyOf)")
    if problems:
        raise APIError(500, "unexpected_failure", "output claims do not conform to the expected schema: \n"
                       + "".join(f"- {p}\n" for p in problems))
    return claims
