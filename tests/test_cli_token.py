"""`gotrue-lite token`: the printed API keys are accepted by a server with the same configuration."""

from __future__ import annotations

import httpx
from jose import jwt

from tests.test_cli import SECRET, base_env, run_cli


def test_service_role_key_opens_the_admin_api(make_server, tmp_path):
    server = make_server("sqlite", GOTRUE_JWT_SECRET=SECRET)
    result = run_cli("token", "--role", "service_role", cwd=tmp_path, env=base_env(GOTRUE_JWT_SECRET=SECRET))
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    claims = jwt.get_unverified_claims(key)
    assert claims["role"] == "service_role" and claims["iss"] == "supabase"
    assert claims["exp"] - claims["iat"] == 87600 * 3600  # ten years, like a local Supabase stack
    resp = httpx.get(f"{server.url}/admin/users", headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 200, resp.text


def test_anon_key_is_not_an_admin(make_server, tmp_path):
    server = make_server("sqlite", GOTRUE_JWT_SECRET=SECRET)
    result = run_cli("token", "--role", "anon", "--exp", "1h", cwd=tmp_path, env=base_env(GOTRUE_JWT_SECRET=SECRET))
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    claims = jwt.get_unverified_claims(key)
    assert claims["exp"] - claims["iat"] == 3600
    resp = httpx.get(f"{server.url}/admin/users", headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 403 and resp.json()["error_code"] == "not_admin"
    # public endpoints ignore it, as they ignore supabase-js's anon bearer
    assert httpx.get(f"{server.url}/settings", headers={"Authorization": f"Bearer {key}", "apikey": key}).status_code == 200


def test_development_secret_is_shared_with_serve(tmp_path):
    # Without GOTRUE_JWT_SECRET the key is signed with the same development secret file serve uses.
    result = run_cli("token", "--role", "anon", cwd=tmp_path, env=base_env())
    assert result.returncode == 0, result.stderr
    secret = (tmp_path / "gotrue_lite.db.secret").read_text().strip()
    assert jwt.decode(result.stdout.strip(), secret, algorithms=["HS256"])["role"] == "anon"


def test_bad_arguments_answer_in_one_line(tmp_path):
    for args in (("token", "--role", "anon", "--exp", "5x"), ("token", "--role", " "), ("token", "--role", "anon", "--exp", "0")):
        result = run_cli(*args, cwd=tmp_path, env=base_env(GOTRUE_JWT_SECRET=SECRET))
        assert result.returncode == 1, (args, result)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("gotrue-lite: --"), result.stderr
    missing = run_cli("token", cwd=tmp_path, env=base_env(GOTRUE_JWT_SECRET=SECRET))
    assert missing.returncode == 2 and "--role" in missing.stderr
