-- gotrue-lite initial SQLite schema: the upstream GoTrue auth tables mapped onto SQLite types.
--
-- Same tables, columns (in the same order), index names and cascades as
-- schema/postgres/0001_init.sql. Only the types differ, and they are declared so that the
-- application's sqlite3 declared-type converters can decode each column:
--   TIMESTAMPTZ  every timestamp, with or without time zone upstream. Stored as ISO-8601 UTC
--                text of fixed width, YYYY-MM-DDTHH:MM:SS.ffffff+00:00, so comparing the text
--                compares the times (ORDER BY, ranges, and min() below rely on it)
--   JSON         text holding a JSON document, guarded by json_valid()
--   BOOLEAN      0 or 1
--   TEXT         uuids (canonical lower-case), inet addresses, enums, everything else
--   INTEGER      counters and numbers
-- Enums are TEXT with CHECK (col IN (...)). No column computes an id or a time: the
-- application supplies uuid4 ids and binds every timestamp from its one clock.
-- Every table is an ordinary rowid table, so each primary key is declared NOT NULL (SQLite
-- otherwise lets a non-integer primary key hold NULL).
-- Foreign keys only cascade with PRAGMA foreign_keys = ON, which every connection must set.


-- ---------------------------------------------------------------------------------------------
-- users
-- ---------------------------------------------------------------------------------------------

CREATE TABLE users (
  instance_id                 TEXT,
  id                          TEXT NOT NULL PRIMARY KEY,
  aud                         TEXT,
  role                        TEXT,
  email                       TEXT,
  encrypted_password          TEXT,
  email_confirmed_at          TIMESTAMPTZ,
  invited_at                  TIMESTAMPTZ,
  -- DEFAULT '' on the token columns (a gotrue-lite addition on Postgres too): the Go model
  -- reads them into plain strings and fails to load a user row holding NULL there
  confirmation_token          TEXT DEFAULT '',
  confirmation_sent_at        TIMESTAMPTZ,
  recovery_token              TEXT DEFAULT '',
  recovery_sent_at            TIMESTAMPTZ,
  email_change_token_new      TEXT DEFAULT '',
  email_change                TEXT DEFAULT '',
  email_change_sent_at        TIMESTAMPTZ,
  last_sign_in_at             TIMESTAMPTZ,
  raw_app_meta_data           JSON CHECK (raw_app_meta_data IS NULL OR json_valid(raw_app_meta_data)),
  raw_user_meta_data          JSON CHECK (raw_user_meta_data IS NULL OR json_valid(raw_user_meta_data)),
  is_super_admin              BOOLEAN CHECK (is_super_admin IN (0, 1)),
  created_at                  TIMESTAMPTZ,
  updated_at                  TIMESTAMPTZ,
  -- NULL when the user has no phone, so the unique index never collides on "no phone"
  phone                       TEXT DEFAULT NULL,
  phone_confirmed_at          TIMESTAMPTZ,
  phone_change                TEXT DEFAULT '',
  phone_change_token          TEXT DEFAULT '',
  phone_change_sent_at        TIMESTAMPTZ,
  -- The earlier of the two confirmations, NULL only when both are NULL (Postgres LEAST).
  -- SQLite's two-argument min() returns NULL as soon as one argument is NULL, hence the CASE.
  -- Text comparison of the fixed-width ISO format picks the earlier time.
  confirmed_at                TIMESTAMPTZ GENERATED ALWAYS AS (
                                CASE
                                  WHEN email_confirmed_at IS NULL THEN phone_confirmed_at
                                  WHEN phone_confirmed_at IS NULL THEN email_confirmed_at
                                  ELSE min(email_confirmed_at, phone_confirmed_at)
                                END) STORED,
  email_change_token_current  TEXT DEFAULT '',
  email_change_confirm_status INTEGER DEFAULT 0
                                CHECK (email_change_confirm_status >= 0 AND email_change_confirm_status <= 2),
  banned_until                TIMESTAMPTZ,
  reauthentication_token      TEXT DEFAULT '',
  reauthentication_sent_at    TIMESTAMPTZ,
  is_sso_user                 BOOLEAN NOT NULL DEFAULT 0 CHECK (is_sso_user IN (0, 1)),
  deleted_at                  TIMESTAMPTZ,
  is_anonymous                BOOLEAN NOT NULL DEFAULT 0 CHECK (is_anonymous IN (0, 1))
);

-- unique among non-SSO accounts only, so an SSO account may share an email with another
CREATE UNIQUE INDEX users_email_partial_key ON users (email) WHERE is_sso_user = 0;
CREATE UNIQUE INDEX users_phone_key ON users (phone);
CREATE INDEX users_instance_id_email_idx ON users (instance_id, lower(email));
CREATE INDEX users_instance_id_idx ON users (instance_id);
CREATE INDEX users_is_anonymous_idx ON users (is_anonymous);
-- gotrue-lite does not filter on instance_id, so its lookup (lower(email) = ? AND aud = ?)
-- needs an index that starts with lower(email)
CREATE INDEX users_email_aud_idx ON users (lower(email), aud);
-- admin listing pages by created_at
CREATE INDEX idx_users_created_at_desc ON users (created_at DESC);

-- A token hash is looked up by value, so it must be unique. Postgres excludes values made only
-- of digits and spaces ('' and legacy plain numeric OTPs) with a regex. SQLite has no built-in
-- regex, and GLOB '*[^0-9 ]*' (at least one other character) is the same test: false for '',
-- NULL for NULL, so both are left out of the index.
CREATE UNIQUE INDEX confirmation_token_idx ON users (confirmation_token)
  WHERE confirmation_token GLOB '*[^0-9 ]*';
CREATE UNIQUE INDEX recovery_token_idx ON users (recovery_token)
  WHERE recovery_token GLOB '*[^0-9 ]*';
CREATE UNIQUE INDEX email_change_token_current_idx ON users (email_change_token_current)
  WHERE email_change_token_current GLOB '*[^0-9 ]*';
CREATE UNIQUE INDEX email_change_token_new_idx ON users (email_change_token_new)
  WHERE email_change_token_new GLOB '*[^0-9 ]*';
CREATE UNIQUE INDEX reauthentication_token_idx ON users (reauthentication_token)
  WHERE reauthentication_token GLOB '*[^0-9 ]*';


-- ---------------------------------------------------------------------------------------------
-- identities
-- ---------------------------------------------------------------------------------------------

CREATE TABLE identities (
  provider_id     TEXT NOT NULL,
  user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  identity_data   JSON NOT NULL CHECK (json_valid(identity_data)),
  provider        TEXT NOT NULL,
  last_sign_in_at TIMESTAMPTZ,
  created_at      TIMESTAMPTZ,
  updated_at      TIMESTAMPTZ,
  -- duplicate-email detection across providers reads this instead of parsing identity_data.
  -- lower() folds ASCII only, which is enough because the application lower-cases emails.
  -- The json_valid() guard lets malformed JSON reach the CHECK above (an IntegrityError)
  -- instead of failing inside json_extract() with "malformed JSON".
  email           TEXT GENERATED ALWAYS AS (
                    CASE WHEN json_valid(identity_data)
                         THEN lower(json_extract(identity_data, '$.email')) END) STORED,
  id              TEXT NOT NULL PRIMARY KEY
);

CREATE UNIQUE INDEX identities_provider_id_provider_unique ON identities (provider_id, provider);
CREATE INDEX identities_user_id_idx ON identities (user_id);
CREATE INDEX identities_email_idx ON identities (email);


-- ---------------------------------------------------------------------------------------------
-- sessions
-- ---------------------------------------------------------------------------------------------

CREATE TABLE sessions (
  id                     TEXT NOT NULL PRIMARY KEY,
  user_id                TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at             TIMESTAMPTZ,
  updated_at             TIMESTAMPTZ,
  factor_id              TEXT,
  aal                    TEXT CHECK (aal IN ('aal1', 'aal2', 'aal3')),
  not_after              TIMESTAMPTZ,
  -- timestamp without time zone on Postgres. Here the same UTC text as every other time.
  refreshed_at           TIMESTAMPTZ,
  user_agent             TEXT,
  ip                     TEXT,
  tag                    TEXT,
  -- OAuth-server sessions are out of scope: no table to reference
  oauth_client_id        TEXT,
  refresh_token_hmac_key TEXT,
  refresh_token_counter  INTEGER,
  scopes                 TEXT CHECK (length(scopes) <= 4096)
);

CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX user_id_created_at_idx ON sessions (user_id, created_at);
CREATE INDEX sessions_not_after_idx ON sessions (not_after DESC);
CREATE INDEX sessions_oauth_client_id_idx ON sessions (oauth_client_id);


-- ---------------------------------------------------------------------------------------------
-- refresh_tokens
-- ---------------------------------------------------------------------------------------------

CREATE TABLE refresh_tokens (
  instance_id TEXT,
  -- AUTOINCREMENT never reuses an id after a delete: the active token of a session is its
  -- highest unrevoked id, so ids must only grow
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  token       TEXT,
  -- the owner's uuid as text, with no foreign key, as upstream
  user_id     TEXT,
  revoked     BOOLEAN CHECK (revoked IN (0, 1)),
  created_at  TIMESTAMPTZ,
  -- once revoked, the revocation time: anchor of the reuse window
  updated_at  TIMESTAMPTZ,
  -- token value of the predecessor, deliberately without a foreign key
  parent      TEXT,
  session_id  TEXT REFERENCES sessions (id) ON DELETE CASCADE
);

-- doubles as the lookup index for a presented token
CREATE UNIQUE INDEX refresh_tokens_token_unique ON refresh_tokens (token);
CREATE INDEX refresh_tokens_instance_id_idx ON refresh_tokens (instance_id);
CREATE INDEX refresh_tokens_instance_id_user_id_idx ON refresh_tokens (instance_id, user_id);
CREATE INDEX refresh_tokens_parent_idx ON refresh_tokens (parent);
CREATE INDEX refresh_tokens_session_id_revoked_idx ON refresh_tokens (session_id, revoked);
CREATE INDEX refresh_tokens_updated_at_idx ON refresh_tokens (updated_at DESC);


-- ---------------------------------------------------------------------------------------------
-- MFA: factors, challenges, authentication method claims
-- ---------------------------------------------------------------------------------------------

CREATE TABLE mfa_factors (
  id                           TEXT NOT NULL PRIMARY KEY,
  user_id                      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  friendly_name                TEXT,
  factor_type                  TEXT NOT NULL CHECK (factor_type IN ('totp', 'webauthn', 'phone')),
  status                       TEXT NOT NULL CHECK (status IN ('unverified', 'verified')),
  created_at                   TIMESTAMPTZ NOT NULL,
  updated_at                   TIMESTAMPTZ NOT NULL,
  secret                       TEXT,
  phone                        TEXT DEFAULT NULL,
  last_challenged_at           TIMESTAMPTZ DEFAULT NULL,
  web_authn_credential         JSON CHECK (web_authn_credential IS NULL OR json_valid(web_authn_credential)),
  web_authn_aaguid             TEXT,
  last_webauthn_challenge_data JSON CHECK (last_webauthn_challenge_data IS NULL
                                           OR json_valid(last_webauthn_challenge_data))
);

CREATE UNIQUE INDEX mfa_factors_last_challenged_at_key ON mfa_factors (last_challenged_at);
-- blank names do not count, so several unnamed factors may coexist
CREATE UNIQUE INDEX mfa_factors_user_friendly_name_unique ON mfa_factors (friendly_name, user_id)
  WHERE trim(friendly_name) <> '';
CREATE UNIQUE INDEX unique_phone_factor_per_user ON mfa_factors (user_id, phone);
CREATE INDEX factor_id_created_at_idx ON mfa_factors (user_id, created_at);
CREATE INDEX mfa_factors_user_id_idx ON mfa_factors (user_id);

CREATE TABLE mfa_challenges (
  id                     TEXT NOT NULL PRIMARY KEY,
  factor_id              TEXT NOT NULL REFERENCES mfa_factors (id) ON DELETE CASCADE,
  created_at             TIMESTAMPTZ NOT NULL,
  verified_at            TIMESTAMPTZ,
  ip_address             TEXT NOT NULL,
  otp_code               TEXT,
  web_authn_session_data JSON CHECK (web_authn_session_data IS NULL OR json_valid(web_authn_session_data))
);

CREATE INDEX mfa_challenge_created_at_idx ON mfa_challenges (created_at DESC);

CREATE TABLE mfa_amr_claims (
  session_id            TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  created_at            TIMESTAMPTZ NOT NULL,
  updated_at            TIMESTAMPTZ NOT NULL,
  authentication_method TEXT NOT NULL,
  id                    TEXT NOT NULL PRIMARY KEY
);

-- one row per method per session: the conflict target of the AMR upsert
-- (the name ends in _pkey upstream although it is a unique constraint)
CREATE UNIQUE INDEX mfa_amr_claims_session_id_authentication_method_pkey
  ON mfa_amr_claims (session_id, authentication_method);


-- ---------------------------------------------------------------------------------------------
-- flow_state (PKCE and OAuth round-trip state)
-- ---------------------------------------------------------------------------------------------

CREATE TABLE flow_state (
  id                     TEXT NOT NULL PRIMARY KEY,
  -- no foreign key: OAuth flows learn the user only after the callback
  user_id                TEXT,
  auth_code              TEXT,
  code_challenge_method  TEXT CHECK (code_challenge_method IN ('s256', 'plain')),
  code_challenge         TEXT,
  provider_type          TEXT NOT NULL,
  provider_access_token  TEXT,
  provider_refresh_token TEXT,
  created_at             TIMESTAMPTZ,
  updated_at             TIMESTAMPTZ,
  authentication_method  TEXT NOT NULL,
  auth_code_issued_at    TIMESTAMPTZ,
  invite_token           TEXT,
  referrer               TEXT,
  oauth_client_state_id  TEXT,
  linking_target_id      TEXT,
  email_optional         BOOLEAN NOT NULL DEFAULT 0 CHECK (email_optional IN (0, 1))
);

CREATE INDEX idx_auth_code ON flow_state (auth_code);
CREATE INDEX idx_user_id_auth_method ON flow_state (user_id, authentication_method);
CREATE INDEX flow_state_created_at_idx ON flow_state (created_at DESC);


-- ---------------------------------------------------------------------------------------------
-- one_time_tokens (index of outstanding token hashes)
-- ---------------------------------------------------------------------------------------------

CREATE TABLE one_time_tokens (
  id         TEXT NOT NULL PRIMARY KEY,
  user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  token_type TEXT NOT NULL CHECK (token_type IN (
               'confirmation_token',
               'reauthentication_token',
               'recovery_token',
               'email_change_token_new',
               'email_change_token_current',
               'phone_change_token')),
  token_hash TEXT NOT NULL CHECK (length(token_hash) > 0),
  relates_to TEXT NOT NULL,
  -- timestamp without time zone on Postgres, no default here either: the application binds both
  created_at TIMESTAMPTZ NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL
);

-- hash indexes on Postgres, plain b-trees here
CREATE INDEX one_time_tokens_token_hash_hash_idx ON one_time_tokens (token_hash);
CREATE INDEX one_time_tokens_relates_to_hash_idx ON one_time_tokens (relates_to);
-- one outstanding token per kind: issuing a new one first deletes the old row
CREATE UNIQUE INDEX one_time_tokens_user_id_token_type_key ON one_time_tokens (user_id, token_type);


-- ---------------------------------------------------------------------------------------------
-- audit_log_entries
-- ---------------------------------------------------------------------------------------------

CREATE TABLE audit_log_entries (
  instance_id TEXT,
  id          TEXT NOT NULL PRIMARY KEY,
  payload     JSON CHECK (payload IS NULL OR json_valid(payload)),
  created_at  TIMESTAMPTZ,
  ip_address  TEXT NOT NULL DEFAULT ''
);

CREATE INDEX audit_logs_instance_id_idx ON audit_log_entries (instance_id);
-- gotrue-lite addition: the admin listing shows the newest entries first
CREATE INDEX audit_log_entries_created_at_idx ON audit_log_entries (created_at DESC);


-- ---------------------------------------------------------------------------------------------
-- SSO / SAML (unused for now, created so both dialects hold the same tables)
-- ---------------------------------------------------------------------------------------------

CREATE TABLE sso_providers (
  id          TEXT NOT NULL PRIMARY KEY,
  resource_id TEXT CHECK (resource_id IS NULL OR length(resource_id) > 0),
  created_at  TIMESTAMPTZ,
  updated_at  TIMESTAMPTZ,
  disabled    BOOLEAN CHECK (disabled IN (0, 1))
);

CREATE UNIQUE INDEX sso_providers_resource_id_idx ON sso_providers (lower(resource_id));
CREATE INDEX sso_providers_resource_id_pattern_idx ON sso_providers (resource_id);

CREATE TABLE sso_domains (
  id              TEXT NOT NULL PRIMARY KEY,
  sso_provider_id TEXT NOT NULL REFERENCES sso_providers (id) ON DELETE CASCADE,
  domain          TEXT NOT NULL CHECK (length(domain) > 0),
  created_at      TIMESTAMPTZ,
  updated_at      TIMESTAMPTZ
);

CREATE INDEX sso_domains_sso_provider_id_idx ON sso_domains (sso_provider_id);
CREATE UNIQUE INDEX sso_domains_domain_idx ON sso_domains (lower(domain));

CREATE TABLE saml_providers (
  id                TEXT NOT NULL PRIMARY KEY,
  sso_provider_id   TEXT NOT NULL REFERENCES sso_providers (id) ON DELETE CASCADE,
  entity_id         TEXT NOT NULL CHECK (length(entity_id) > 0),
  metadata_xml      TEXT NOT NULL CHECK (length(metadata_xml) > 0),
  metadata_url      TEXT CHECK (metadata_url IS NULL OR length(metadata_url) > 0),
  attribute_mapping JSON CHECK (attribute_mapping IS NULL OR json_valid(attribute_mapping)),
  created_at        TIMESTAMPTZ,
  updated_at        TIMESTAMPTZ,
  name_id_format    TEXT
);

CREATE UNIQUE INDEX saml_providers_entity_id_key ON saml_providers (entity_id);
CREATE INDEX saml_providers_sso_provider_id_idx ON saml_providers (sso_provider_id);

CREATE TABLE saml_relay_states (
  id              TEXT NOT NULL PRIMARY KEY,
  sso_provider_id TEXT NOT NULL REFERENCES sso_providers (id) ON DELETE CASCADE,
  request_id      TEXT NOT NULL CHECK (length(request_id) > 0),
  for_email       TEXT,
  redirect_to     TEXT,
  created_at      TIMESTAMPTZ,
  updated_at      TIMESTAMPTZ,
  flow_state_id   TEXT DEFAULT NULL REFERENCES flow_state (id) ON DELETE CASCADE
);

CREATE INDEX saml_relay_states_sso_provider_id_idx ON saml_relay_states (sso_provider_id);
CREATE INDEX saml_relay_states_for_email_idx ON saml_relay_states (for_email);
CREATE INDEX saml_relay_states_created_at_idx ON saml_relay_states (created_at DESC);


-- ---------------------------------------------------------------------------------------------
-- instances (legacy multi-tenant configuration, unused, kept so both dialects match)
-- ---------------------------------------------------------------------------------------------

CREATE TABLE instances (
  id              TEXT NOT NULL PRIMARY KEY,
  uuid            TEXT,
  raw_base_config TEXT,
  created_at      TIMESTAMPTZ,
  updated_at      TIMESTAMPTZ
);
