"""GET /health and GET /settings: what the server is and which sign-in methods it offers."""

from __future__ import annotations

from aiohttp import web

from .. import __version__
from .middleware import ctx_of

PROVIDERS = (
    "apple", "azure", "bitbucket", "discord", "facebook", "snapchat", "figma", "fly", "github", "gitlab", "google",
    "keycloak", "kakao", "linkedin", "linkedin_oidc", "notion", "spotify", "slack", "slack_oidc", "workos", "twitch",
    "twitter", "zoom",
)


async def health(request: web.Request) -> web.Response:
    return web.json_response({
        "version": __version__,
        "name": "GoTrue",
        "description": "GoTrue is a user registration and authentication API",
    })


async def settings(request: web.Request) -> web.Response:
    config = ctx_of(request).settings
    providers = config.external.providers
    external = {"anonymous_users": config.external.anonymous_users.enabled}
    for name in PROVIDERS:
        provider = providers.get(name)
        external[name] = bool(provider and provider.enabled)
    external["email"] = config.external.email.enabled
    external["phone"] = config.external.phone.enabled
    external["saml"] = False
    return web.json_response({
        "external": external,
        "disable_signup": config.disable_signup,
        "mailer_autoconfirm": config.mailer.autoconfirm,
        "phone_autoconfirm": config.sms.autoconfirm,
        "sms_provider": config.sms.provider,
        "saml_enabled": False,
        "saml_private_key_next_configured": False,
        "passkeys_enabled": False,
        # netlify-identity-widget reads these two
        "autoconfirm": config.mailer.autoconfirm,
        "external_labels": {},
    })


async def jwks(request: web.Request) -> web.Response:
    return web.json_response(ctx_of(request).keys.jwks, headers={"Cache-Control": "public, max-age=600"})
