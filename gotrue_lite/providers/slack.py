"""Slack's legacy OAuth ("slack"): kept by upstream beside slack_oidc; same userInfo call, and
the address is taken as verified because this flow's answer says nothing about it."""

from __future__ import annotations

from . import slack_oidc


class Provider(slack_oidc.Provider):
    name = "slack"
    auth_path = "/oauth/authorize"
    token_path = "/api/oauth.access"
    email_verified_claim = False
