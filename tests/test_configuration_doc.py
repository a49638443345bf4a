"""docs/configuration.md against the settings table (gotrue_lite/config.py): every setting listed
once with all its spellings, nothing listed that is not read, and honoured / not yet as the code
says (config.NOT_YET). Also the start-up warnings for settings that switch on a missing feature."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gotrue_lite import config
from gotrue_lite.config import load_settings, not_yet_warnings, setting_infos

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
STATUSES = {"honoured": None, "not yet": "missing"}
_ROW = re.compile(r"^\|(?P<names>[^|]*)\|(?P<status>[^|]*)\|(?P<notes>[^|]*)\|$")


def _placeholders() -> dict[str, list[str]]:
    kinds = [kind.upper() for kind in config._MAIL_TYPES]
    return {
        "<TYPE>": [k for k in kinds if not k.endswith("_NOTIFICATION")],
        "<NOTICE>": [k for k in kinds if k.endswith("_NOTIFICATION")],
        "<EVENT>": [n.upper() for n in config._NOTIFICATIONS],
        "<PROVIDER>": [p.upper() for p in config._PROVIDERS],
        "<HOOK>": [h.upper() for h in config._HOOKS],
    }


def _expand(name: str) -> list[str]:
    for placeholder, values in _placeholders().items():
        if placeholder in name:
            return [expanded for value in values for expanded in _expand(name.replace(placeholder, value))]
    return [name]


def documented() -> list[tuple[tuple[str, ...], str, str]]:
    """(spellings, status, the row as written) for every expanded row of the doc's tables."""
    rows = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = _ROW.match(line.strip())
        if not match or match["names"].strip() in ("Setting", "---"):
            continue
        names = re.findall(r"`([^`]+)`", match["names"])
        assert names, line
        status = match["status"].strip()
        assert status in STATUSES, f"unknown status {status!r} in: {line}"
        expansions = [_expand(name) for name in names]
        assert len({len(e) for e in expansions}) == 1, f"spellings expand differently: {line}"
        for spellings in zip(*expansions):
            rows.append((spellings, status, line))
    return rows


def test_the_placeholders_named_in_the_doc_are_the_codes():
    text = DOC.read_text(encoding="utf-8")
    for placeholder, values in _placeholders().items():
        listed = re.search(rf"- `{placeholder}`: (.*?)(?=\n- |\n\n)", text, re.DOTALL)
        assert listed, f"{placeholder} is not explained"
        assert re.findall(r"`([A-Z_]+)`", listed[1]) == values, placeholder


def test_every_setting_is_listed_once_with_its_spellings_and_status():
    rows = documented()
    by_label = {}
    for spellings, status, line in rows:
        assert spellings[0] not in by_label, f"{spellings[0]} listed twice"
        by_label[spellings[0]] = (spellings, status, line)
    infos = {info.label: info for info in setting_infos()}
    assert sorted(set(by_label) - set(infos)) == [], "listed but not read by gotrue-lite"
    assert sorted(set(infos) - set(by_label)) == [], "read by gotrue-lite but not listed"
    for label, info in infos.items():
        spellings, status, line = by_label[label]
        assert set(spellings) == set(info.env), f"{label}: the doc names {spellings}, the code reads {info.env}"
        expected = "honoured" if info.missing is None else "not yet"
        assert status == expected, f"{label}: the doc says {status!r}, config.NOT_YET says {expected!r} ({line})"


def test_every_not_yet_row_names_settings_that_exist():
    # A stale NOT_YET entry (a feature that landed, a renamed setting) would cover nothing.
    envs = [info.env[0] for info in setting_infos()]
    for row in config.NOT_YET:
        for name in row.settings + row.switches:
            assert any(env.startswith(name) if name.endswith("_") else env == name for env in envs), name
        for switch in row.switches:
            assert config._covers(row.settings, switch) or any(
                config._covers(row.settings, env) for env in envs if env.startswith(switch)), switch


# --- the start-up warnings -----------------------------------------------------------------------


def warnings_for(tmp_path, **env: str) -> list[str]:
    return not_yet_warnings(load_settings(environ=env, dotenv=False, cwd=tmp_path))


def test_a_default_configuration_warns_about_nothing(tmp_path):
    assert warnings_for(tmp_path) == []
    # Set to their defaults, or switched off, they switch nothing on.
    assert warnings_for(tmp_path, GOTRUE_EXTERNAL_PHONE_ENABLED="false", GOTRUE_MFA_TOTP_ENROLL_ENABLED="true",
                        GOTRUE_SECURITY_REFRESH_TOKEN_ALGORITHM_VERSION="1", GOTRUE_SMS_OTP_EXP="120",
                        GOTRUE_EXTERNAL_GITHUB_CLIENT_ID="abc", GOTRUE_MFA_MAX_ENROLLED_FACTORS="3") == []


@pytest.mark.parametrize("env, feature", [
    ({"GOTRUE_MAILER_NOTIFICATIONS_PASSWORD_CHANGED_ENABLED": "true"}, "security notification mails"),
    ({"GOTRUE_MAILER_NOTIFICATIONS_PHONE_CHANGED_ENABLED": "true"}, "security notification mails"),
    ({"GOTRUE_LOG_SQL": "statement"}, "SQL statement logging"),
    ({"GOTRUE_DB_CLEANUP_ENABLED": "true"}, "background clean-up of expired rows"),
    ({"GOTRUE_MAILER_EXTERNAL_HOSTS": "a.example.com,b.example.com"}, "support for several external hosts"),
    ({"GOTRUE_PASSWORD_HIBP_ENABLED": "true"}, "Have I Been Pwned password check"),
    ({"GOTRUE_SECURITY_REFRESH_TOKEN_ALGORITHM_VERSION": "2"}, "signed refresh tokens (algorithm version 2)"),
])
def test_a_switched_on_missing_feature_warns_once(tmp_path, env, feature):
    (name,) = env
    assert warnings_for(tmp_path, **env) == [
        f"{name} is set, but gotrue-lite has no {feature} yet: this setting is ignored"]


def test_one_line_per_setting(tmp_path):
    lines = warnings_for(tmp_path, GOTRUE_DB_CLEANUP_ENABLED="true", GOTRUE_PASSWORD_HIBP_ENABLED="1",
                         GOTRUE_EXTERNAL_PHONE_ENABLED="true", GOTRUE_LOG_SQL="statement")
    assert [line.split(" ")[0] for line in lines] == [
        "GOTRUE_LOG_SQL", "GOTRUE_DB_CLEANUP_ENABLED", "GOTRUE_PASSWORD_HIBP_ENABLED"]
