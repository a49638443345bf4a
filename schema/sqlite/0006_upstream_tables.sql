-- The upstream tables gotrue-lite's schema lacked: the OAuth 2.1 server (clients, authorizations,
-- consents), the state of OAuth flows where this server is the client, custom OAuth/OIDC
-- providers, and passkeys (WebAuthn credentials and challenges).
--
-- Same tables, columns (in the same order), constraint names, index names and cascades as
-- schema/postgres/0006_upstream_tables.sql (upstream supabase/auth v2.196.0), with the type
-- mapping of 0001_init.sql, plus:
--   BLOB     bytea
--   JSON     also for text[] columns, which hold a JSON array of strings here
-- Enums are TEXT with CHECK (col IN (...)); char_length is length(); LIKE 'https://%' is
-- GLOB 'https://*' (SQLite's LIKE ignores case, Postgres' does not); the identifier regex is
-- spelled with GLOB. As in 0001, no column computes an id or a time (Postgres has now() and
-- gen_random_uuid() defaults here): the application supplies both.
-- Not here: schema_migrations (the Go server never runs on SQLite), and the foreign key from
-- sessions.oauth_client_id to oauth_clients, which SQLite cannot add to an existing table.


-- ---------------------------------------------------------------------------------------------
-- OAuth 2.1 server: registered clients. The uuid id is the public client_id.
-- ---------------------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS oauth_clients (
  id                         TEXT NOT NULL PRIMARY KEY,
  -- NULL for public clients, which have no secret
  client_secret_hash         TEXT,
  registration_type          TEXT NOT NULL CHECK (registration_type IN ('dynamic', 'manual')),
  redirect_uris              TEXT NOT NULL,
  grant_types                TEXT NOT NULL,
  client_name                TEXT,
  client_uri                 TEXT,
  logo_uri                   TEXT,
  created_at                 TIMESTAMPTZ NOT NULL,
  updated_at                 TIMESTAMPTZ NOT NULL,
  deleted_at                 TIMESTAMPTZ,
  client_type                TEXT NOT NULL DEFAULT 'confidential' CHECK (client_type IN ('public', 'confidential')),
  token_endpoint_auth_method TEXT NOT NULL
    CONSTRAINT oauth_clients_token_endpoint_auth_method_check
    CHECK (token_endpoint_auth_method IN ('client_secret_basic', 'client_secret_post', 'none')),
  CONSTRAINT oauth_clients_client_name_length CHECK (length(client_name) <= 1024),
  CONSTRAINT oauth_clients_client_uri_length CHECK (length(client_uri) <= 2048),
  CONSTRAINT oauth_clients_logo_uri_length CHECK (length(logo_uri) <= 2048)
);

CREATE INDEX IF NOT EXISTS oauth_clients_deleted_at_idx ON oauth_clients (deleted_at);


-- ---------------------------------------------------------------------------------------------
-- OAuth 2.1 server: authorization requests, from /oauth/authorize to the code exchange.
-- ---------------------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS oauth_authorizations (
  id                    TEXT NOT NULL PRIMARY KEY,
  authorization_id      TEXT NOT NULL,
  client_id             TEXT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
  -- NULL until the user signs in and decides
  user_id               TEXT REFERENCES users (id) ON DELETE CASCADE,
  redirect_uri          TEXT NOT NULL,
  scope                 TEXT NOT NULL,
  state                 TEXT,
  resource              TEXT,
  code_challenge        TEXT,
  code_challenge_method TEXT CHECK (code_challenge_method IN ('s256', 'plain')),
  response_type         TEXT NOT NULL DEFAULT 'code' CHECK (response_type IN ('code')),
  status                TEXT NOT NULL DEFAULT 'pending'
                          CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
  authorization_code    TEXT,
  created_at            TIMESTAMPTZ NOT NULL,
  -- Postgres defaults this to three minutes after now(); here the application sets it
  expires_at            TIMESTAMPTZ NOT NULL,
  approved_at           TIMESTAMPTZ,
  nonce                 TEXT,
  CONSTRAINT oauth_authorizations_authorization_id_key UNIQUE (authorization_id),
  CONSTRAINT oauth_authorizations_authorization_code_key UNIQUE (authorization_code),
  CONSTRAINT oauth_authorizations_redirect_uri_length CHECK (length(redirect_uri) <= 2048),
  CONSTRAINT oauth_authorizations_scope_length CHECK (length(scope) <= 4096),
  CONSTRAINT oauth_authorizations_state_length CHECK (length(state) <= 4096),
  CONSTRAINT oauth_authorizations_resource_length CHECK (length(resource) <= 2048),
  CONSTRAINT oauth_authorizations_code_challenge_length CHECK (length(code_challenge) <= 128),
  CONSTRAINT oauth_authorizations_authorization_code_length CHECK (length(authorization_code) <= 255),
  -- fixed-width UTC text: comparing the text compares the times
  CONSTRAINT oauth_authorizations_expires_at_future CHECK (expires_at > created_at),
  CONSTRAINT oauth_authorizations_nonce_length CHECK (length(nonce) <= 255)
);

-- the cleanup of expired requests reads only the pending ones
CREATE INDEX IF NOT EXISTS oauth_auth_pending_exp_idx ON oauth_authorizations (expires_at)
  WHERE status = 'pending';


-- ---------------------------------------------------------------------------------------------
-- OAuth 2.1 server: a user's consent to a client's scopes (one row per user and client).
-- ---------------------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS oauth_consents (
  id         TEXT NOT NULL PRIMARY KEY,
  user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  client_id  TEXT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
  scopes     TEXT NOT NULL,
  granted_at TIMESTAMPTZ NOT NULL,
  revoked_at TIMESTAMPTZ,
  CONSTRAINT oauth_consents_user_client_unique UNIQUE (user_id, client_id),
  CONSTRAINT oauth_consents_scopes_length CHECK (length(scopes) <= 2048),
  CONSTRAINT oauth_consents_scopes_not_empty CHECK (length(trim(scopes)) > 0),
  CONSTRAINT oauth_consents_revoked_after_granted CHECK (revoked_at IS NULL OR revoked_at >= granted_at)
);

CREATE INDEX IF NOT EXISTS oauth_consents_active_user_client_idx ON oauth_consents (user_id, client_id)
  WHERE revoked_at IS NULL;
CREATE INDEX IF NOT EXISTS oauth_consents_user_order_idx ON oauth_consents (user_id, granted_at DESC);
CREATE INDEX IF NOT EXISTS oauth_consents_active_client_idx ON oauth_consents (client_id)
  WHERE revoked_at IS NULL;


-- ---------------------------------------------------------------------------------------------
-- State of a sign-in with an external provider, where this server is the OAuth client.
-- ---------------------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS oauth_client_states (
  id            TEXT NOT NULL PRIMARY KEY,
  provider_type TEXT NOT NULL,
  -- the PKCE verifier sent to the provider at the code exchange
  code_verifier TEXT,
  created_at    TIMESTAMPTZ NOT NULL
);

CREATE INDEX IF NOT EXISTS idx_oauth_client_states_created_at ON oauth_client_states (created_at);


-- ---------------------------------------------------------------------------------------------
-- Custom OAuth2 / OIDC providers configured at run time (admin API), one row per provider.
-- ---------------------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS custom_oauth_providers (
  id                      TEXT NOT NULL PRIMARY KEY,
  provider_type           TEXT NOT NULL
                            CONSTRAINT custom_oauth_providers_provider_type_check
                            CHECK (provider_type IN ('oauth2', 'oidc')),
  identifier              TEXT NOT NULL,
  name                    TEXT NOT NULL,
  client_id               TEXT NOT NULL,
  -- encrypted by the application
  client_secret           TEXT NOT NULL,
  acceptable_client_ids   JSON NOT NULL DEFAULT '[]' CHECK (json_valid(acceptable_client_ids)),
  scopes                  JSON NOT NULL DEFAULT '[]' CHECK (json_valid(scopes)),
  pkce_enabled            BOOLEAN NOT NULL DEFAULT 1 CHECK (pkce_enabled IN (0, 1)),
  attribute_mapping       JSON NOT NULL DEFAULT '{}' CHECK (json_valid(attribute_mapping)),
  authorization_params    JSON NOT NULL DEFAULT '{}' CHECK (json_valid(authorization_params)),
  enabled                 BOOLEAN NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  email_optional          BOOLEAN NOT NULL DEFAULT 0 CHECK (email_optional IN (0, 1)),
  issuer                  TEXT,
  discovery_url           TEXT,
  skip_nonce_check        BOOLEAN NOT NULL DEFAULT 0 CHECK (skip_nonce_check IN (0, 1)),
  cached_discovery        JSON CHECK (cached_discovery IS NULL OR json_valid(cached_discovery)),
  discovery_cached_at     TIMESTAMPTZ,
  authorization_url       TEXT,
  token_url               TEXT,
  userinfo_url            TEXT,
  jwks_uri                TEXT,
  created_at              TIMESTAMPTZ NOT NULL,
  updated_at              TIMESTAMPTZ NOT NULL,
  custom_claims_allowlist JSON NOT NULL DEFAULT '[]' CHECK (json_valid(custom_claims_allowlist)),
  CONSTRAINT custom_oauth_providers_identifier_key UNIQUE (identifier),
  CONSTRAINT custom_oauth_providers_oidc_requires_issuer
    CHECK (provider_type != 'oidc' OR issuer IS NOT NULL),
  CONSTRAINT custom_oauth_providers_oidc_issuer_https
    CHECK (provider_type != 'oidc' OR issuer IS NULL OR issuer GLOB 'https://*'),
  CONSTRAINT custom_oauth_providers_oidc_discovery_url_https
    CHECK (provider_type != 'oidc' OR discovery_url IS NULL OR discovery_url GLOB 'https://*'),
  CONSTRAINT custom_oauth_providers_oauth2_requires_endpoints
    CHECK (provider_type != 'oauth2'
           OR (authorization_url IS NOT NULL AND token_url IS NOT NULL AND userinfo_url IS NOT NULL)),
  CONSTRAINT custom_oauth_providers_authorization_url_https
    CHECK (authorization_url IS NULL OR authorization_url GLOB 'https://*'),
  CONSTRAINT custom_oauth_providers_token_url_https
    CHECK (token_url IS NULL OR token_url GLOB 'https://*'),
  CONSTRAINT custom_oauth_providers_userinfo_url_https
    CHECK (userinfo_url IS NULL OR userinfo_url GLOB 'https://*'),
  CONSTRAINT custom_oauth_providers_jwks_uri_https
    CHECK (jwks_uri IS NULL OR jwks_uri GLOB 'https://*'),
  -- Postgres: ^[a-z0-9][a-z0-9:-]{0,48}[a-z0-9]$ — 2 to 50 of [a-z0-9:-], first and last
  -- a letter or digit
  CONSTRAINT custom_oauth_providers_identifier_format
    CHECK (length(identifier) BETWEEN 2 AND 50
           AND identifier NOT GLOB '*[^a-z0-9:-]*'
           AND identifier GLOB '[a-z0-9]*[a-z0-9]'),
  CONSTRAINT custom_oauth_providers_name_length CHECK (length(name) >= 1 AND length(name) <= 100),
  CONSTRAINT custom_oauth_providers_issuer_length
    CHECK (issuer IS NULL OR (length(issuer) >= 1 AND length(issuer) <= 2048)),
  CONSTRAINT custom_oauth_providers_discovery_url_length
    CHECK (discovery_url IS NULL OR length(discovery_url) <= 2048),
  CONSTRAINT custom_oauth_providers_authorization_url_length
    CHECK (authorization_url IS NULL OR length(authorization_url) <= 2048),
  CONSTRAINT custom_oauth_providers_token_url_length
    CHECK (token_url IS NULL OR length(token_url) <= 2048),
  CONSTRAINT custom_oauth_providers_userinfo_url_length
    CHECK (userinfo_url IS NULL OR length(userinfo_url) <= 2048),
  CONSTRAINT custom_oauth_providers_jwks_uri_length
    CHECK (jwks_uri IS NULL OR length(jwks_uri) <= 2048),
  CONSTRAINT custom_oauth_providers_client_id_length
    CHECK (length(client_id) >= 1 AND length(client_id) <= 512)
);

CREATE INDEX IF NOT EXISTS custom_oauth_providers_identifier_idx ON custom_oauth_providers (identifier);
CREATE INDEX IF NOT EXISTS custom_oauth_providers_provider_type_idx ON custom_oauth_providers (provider_type);
CREATE INDEX IF NOT EXISTS custom_oauth_providers_enabled_idx ON custom_oauth_providers (enabled);
CREATE INDEX IF NOT EXISTS custom_oauth_providers_created_at_idx ON custom_oauth_providers (created_at);


-- ---------------------------------------------------------------------------------------------
-- Passkeys: WebAuthn credentials (first-factor sign-in), and the challenges of ceremonies in
-- progress (user_id NULL for a passkey sign-up or a discoverable sign-in).
-- ---------------------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS webauthn_credentials (
  id               TEXT NOT NULL PRIMARY KEY,
  user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  credential_id    BLOB NOT NULL,
  public_key       BLOB NOT NULL,
  attestation_type TEXT NOT NULL DEFAULT '',
  aaguid           TEXT,
  sign_count       INTEGER NOT NULL DEFAULT 0,
  transports       JSON NOT NULL DEFAULT '[]' CHECK (json_valid(transports)),
  backup_eligible  BOOLEAN NOT NULL DEFAULT 0 CHECK (backup_eligible IN (0, 1)),
  backed_up        BOOLEAN NOT NULL DEFAULT 0 CHECK (backed_up IN (0, 1)),
  friendly_name    TEXT NOT NULL DEFAULT '',
  created_at       TIMESTAMPTZ NOT NULL,
  updated_at       TIMESTAMPTZ NOT NULL,
  last_used_at     TIMESTAMPTZ
);

CREATE UNIQUE INDEX IF NOT EXISTS webauthn_credentials_credential_id_key ON webauthn_credentials (credential_id);
CREATE INDEX IF NOT EXISTS webauthn_credentials_user_id_idx ON webauthn_credentials (user_id);

CREATE TABLE IF NOT EXISTS webauthn_challenges (
  id             TEXT NOT NULL PRIMARY KEY,
  user_id        TEXT REFERENCES users (id) ON DELETE CASCADE,
  challenge_type TEXT NOT NULL
                   CONSTRAINT webauthn_challenges_challenge_type_check
                   CHECK (challenge_type IN ('signup', 'registration', 'authentication')),
  session_data   JSON NOT NULL CHECK (json_valid(session_data)),
  created_at     TIMESTAMPTZ NOT NULL,
  expires_at     TIMESTAMPTZ NOT NULL
);

CREATE INDEX IF NOT EXISTS webauthn_challenges_user_id_idx ON webauthn_challenges (user_id);
CREATE INDEX IF NOT EXISTS webauthn_challenges_expires_at_idx ON webauthn_challenges (expires_at);
