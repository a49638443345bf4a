"""Imported argon2 and Firebase scrypt password hashes: checked as upstream checks them, and
replaced by bcrypt once their user signs in."""

from __future__ import annotations

import asyncio

import bcrypt
import pytest
from argon2 import PasswordHasher

from gotrue_lite import crypto, imported_hashes
from tests.helpers import assert_error, new_email, post, rows, sign_in, sql

# Known answers from upstream's own tests (internal/crypto/password_test.go): both hash "test".
ARGON2_TEST = [
    "$argon2i$v=19$m=16,t=2,p=1$bGJRWThNOHJJTVBSdHl2dQ$NfEnUOuUpb7F2fQkgFUG4g",
    "$argon2id$v=19$m=32,t=3,p=2$SFVpOWJ0eXhjRzVkdGN1RQ$RXnb8rh7LaDcn07xsssqqulZYXOM/EUCEFMVcAcyYVk",
]
# ... and this one hashes "mytestpassword" with a Firebase project's signer key and separator.
FBSCRYPT_MYTESTPASSWORD = (
    "$fbscrypt$v=1,n=14,r=8,p=1,ss=Bw==,sk=ou9tdYTGyYm8kuR6Dt0Bp0kDuAYoXrK16mbZO4yGwAn3oLspjnN0/c41v8xZnO1n14J3MjKj1b2g6AUCAlFwMw=="
    "$C0sHCg9ek77hsg==$zKVTMvnWVw5BBOZNUdnsalx4c4c7y/w7IS5p6Ut2+CfEFFlz37J9huyQfov4iizN8dbjvEJlM5tQaJP84+hfTw=="
)

# Hashes upstream refuses to check (the same list as upstream's negative cases, plus scrypt's).
REFUSED = [
    "$argon2d$v=19$m=16,t=2,p=1$bGJRWThNOHJJTVBSdHl2dQ$NfEnUOuUpb7F2fQkgFUG4g",
    "$argon2id$v=16$m=16,t=2,p=1$bGJRWThNOHJJTVBSdHl2dQ$NfEnUOuUpb7F2fQkgFUG4g",
    "$argon2id$v=19$m=16,t=2,p=1,data=abc$bGJRWThNOHJJTVBSdHl2dQ$NfEnUOuUpb7F2fQkgFUG4g",
    "$argon2id$v=19$m=16,t=2,p=1,keyid=abc$bGJRWThNOHJJTVBSdHl2dQ$NfEnUOuUpb7F2fQkgFUG4g",
    "$argon2id$v=19$m=4294967297,t=2,p=1$bGJRWThNOHJJTVBSdHl2dQ$NfEnUOuUpb7F2fQkgFUG4g",
    "$argon2id$v=19$m=2097152,t=2,p=1$bGJRWThNOHJJTVBSdHl2dQ$NfEnUOuUpb7F2fQkgFUG4g",  # over 1 GiB
    "$argon2id$v=19$m=16,t=4294967297,p=1$bGJRWThNOHJJTVBSdHl2dQ$NfEnUOuUpb7F2fQkgFUG4g",
    "$argon2id$v=19$m=16,t=21,p=1$bGJRWThNOHJJTVBSdHl2dQ$NfEnUOuUpb7F2fQkgFUG4g",
    "$argon2id$v=19$m=16,t=2,p=256$bGJRWThNOHJJTVBSdHl2dQ$NfEnUOuUpb7F2fQkgFUG4g",
    "$argon2id$v=19$m=16,t=2,p=1$!!!$NfEnUOuUpb7F2fQkgFUG4g",
    "$argon2id$v=19$m=16,t=2,p=1$bGJRWThNOHJJTVBSdHl2dQ$!!!",
    "$argon2id$v=19$m=16,t=2,p=1$$NfEnUOuUpb7F2fQkgFUG4g",
    "$argon2id$v=19$m=16,t=2,p=1$bGJRWThNOHJJTVBSdHl2dQ$",
    FBSCRYPT_MYTESTPASSWORD.replace("v=1,", "v=2,"),
    FBSCRYPT_MYTESTPASSWORD.replace("n=14,", "n=0,"),
    FBSCRYPT_MYTESTPASSWORD.replace("r=8,", "r=0,"),
    FBSCRYPT_MYTESTPASSWORD.replace("p=1,", "p=0,"),
    FBSCRYPT_MYTESTPASSWORD.replace("$C0sHCg9ek77hsg==$", "$C0sHCg9ek77hsg$"),  # padding missing
]


def check(password: str, hashed: str) -> bool:
    return asyncio.run(crypto.check_password(password, hashed))


@pytest.mark.parametrize("hashed", ARGON2_TEST)
def test_upstream_argon2_answers(hashed):
    assert imported_hashes.problem(hashed) is None
    assert check("test", hashed)
    assert not check("test1", hashed)
    assert not check("", hashed)


def test_upstream_firebase_scrypt_answer():
    assert imported_hashes.problem(FBSCRYPT_MYTESTPASSWORD) is None
    assert check("mytestpassword", FBSCRYPT_MYTESTPASSWORD)
    assert not check("mytestpassword2", FBSCRYPT_MYTESTPASSWORD)


def test_argon2_cffi_hashes_with_its_defaults_check():
    # argon2-cffi's defaults (argon2id, m=65536, t=3, p=4) are what a Python service exports.
    hashed = PasswordHasher().hash("a long passphrase that bcrypt would never take " * 3)
    assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert check("a long passphrase that bcrypt would never take " * 3, hashed)
    assert not check("a long passphrase that bcrypt would never take ", hashed)


@pytest.mark.parametrize("hashed", REFUSED)
def test_hashes_upstream_refuses_never_match(hashed):
    assert imported_hashes.problem(hashed)
    for password in ("test", "mytestpassword", ""):
        assert not check(password, hashed)


def test_rehash_rule():
    argon2 = ARGON2_TEST[1]
    assert crypto.needs_rehash(argon2, "test")
    assert crypto.needs_rehash(FBSCRYPT_MYTESTPASSWORD, "mytestpassword")
    assert not crypto.needs_rehash(argon2, "x" * 73)  # bcrypt could not take it: keep argon2
    assert crypto.needs_rehash(bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode(), "pw")
    assert not crypto.needs_rehash(bcrypt.hashpw(b"pw", bcrypt.gensalt(10)).decode(), "pw")


# --- signing in ---------------------------------------------------------------------------------

CASES = [
    pytest.param(ARGON2_TEST[0], "test", id="argon2i"),
    pytest.param(ARGON2_TEST[1], "test", id="argon2id"),
    pytest.param(FBSCRYPT_MYTESTPASSWORD, "mytestpassword", id="fbscrypt"),
]


def imported_user(server, hashed: str) -> str:
    """A confirmed user whose stored hash is `hashed`, as an imported row holds it."""
    email = new_email("imported")
    resp = post(server, "/admin/users", {"email": email, "password": "placeholder-1", "email_confirm": True},
                headers={"Authorization": f"Bearer {server.service_role_key}"})
    assert resp.status_code == 200, resp.text
    assert sql(server, "UPDATE users SET encrypted_password = $1 WHERE email = $2", hashed, email) == 1
    return email


def stored_hash(server, email: str) -> str:
    return rows(server, "SELECT encrypted_password FROM users WHERE email = $1", email)[0]["encrypted_password"]


@pytest.mark.parametrize("hashed, password", CASES)
def test_imported_user_signs_in_and_gets_bcrypt(server, hashed, password):
    email = imported_user(server, hashed)

    assert_error(sign_in(server, email, password + "x"), 400, "invalid_credentials")
    assert stored_hash(server, email) == hashed  # a wrong password changes nothing

    first = sign_in(server, email, password)
    assert first.status_code == 200, first.text
    assert first.json()["user"]["email"] == email
    now = stored_hash(server, email)
    assert crypto.bcrypt_cost(now) == crypto.BCRYPT_COST
    assert bcrypt.checkpw(password.encode(), now.encode())

    again = sign_in(server, email, password)
    assert again.status_code == 200, again.text
    assert stored_hash(server, email) == now
    assert_error(sign_in(server, email, "wrong"), 400, "invalid_credentials")


def test_long_password_keeps_its_argon2_hash(server):
    password = "p" * 100  # past bcrypt's 72 bytes
    hashed = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(password)
    email = imported_user(server, hashed)
    assert sign_in(server, email, password).status_code == 200
    assert stored_hash(server, email) == hashed
    assert_error(sign_in(server, email, "p" * 99), 400, "invalid_credentials")


def test_unusable_imported_hash_is_wrong_credentials(server):
    email = imported_user(server, REFUSED[0])  # argon2d
    assert_error(sign_in(server, email, "test"), 400, "invalid_credentials")
    assert stored_hash(server, email) == REFUSED[0]


@pytest.mark.parametrize("hashed, password", CASES)
def test_admin_api_takes_imported_hashes(server, hashed, password):
    # POST /admin/users with password_hash, as upstream's NewUserWithPasswordHash accepts them.
    email = new_email("adminimport")
    resp = post(server, "/admin/users", {"email": email, "password_hash": hashed, "email_confirm": True},
                headers={"Authorization": f"Bearer {server.service_role_key}"})
    assert resp.status_code == 200, resp.text
    assert stored_hash(server, email) == hashed
    assert sign_in(server, email, password).status_code == 200
    assert crypto.bcrypt_cost(stored_hash(server, email)) == crypto.BCRYPT_COST


def test_admin_api_refuses_unusable_imported_hashes(server):
    resp = post(server, "/admin/users", {"email": new_email(), "password_hash": REFUSED[1]},
                headers={"Authorization": f"Bearer {server.service_role_key}"})
    assert_error(resp, 400, "validation_failed", "Invalid password hash: argon2 hash uses unsupported version '16', only 19")
