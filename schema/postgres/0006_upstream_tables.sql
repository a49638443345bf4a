-- The upstream tables gotrue-lite's schema lacked: the OAuth 2.1 server (clients, authorizations,
-- consents), the state of OAuth flows where this server is the client, custom OAuth/OIDC
-- providers, passkeys (WebAuthn credentials and challenges), and the Go migrator's own
-- bookkeeping table schema_migrations.
--
-- Shapes are those of supabase/auth v2.196.0 (its last migration: 20260625000000), column for
-- column, with upstream's types, defaults (including now() and gen_random_uuid(), which
-- upstream's code relies on when it inserts), constraints and index names, so that a database
-- made by gotrue-lite can be handed to the Go server. tests/data/upstream_schema.json holds the
-- facts they are checked against.
--
-- "if not exists" throughout: a database whose owner already ran part of upstream's migrator
-- on it (which stopped at 20251111201300 on earlier gotrue-lite schemas) may hold some of these.
-- The migrator runs this file in one transaction with search_path set to the namespace.


-- Enum types of the OAuth server, in the namespace like the others.
do $$ begin
  create type oauth_registration_type as enum ('dynamic', 'manual');
exception when duplicate_object then null;
end $$;

do $$ begin
  create type oauth_client_type as enum ('public', 'confidential');
exception when duplicate_object then null;
end $$;

do $$ begin
  create type oauth_authorization_status as enum ('pending', 'approved', 'denied', 'expired');
exception when duplicate_object then null;
end $$;

do $$ begin
  create type oauth_response_type as enum ('code');
exception when duplicate_object then null;
end $$;


-- ---------------------------------------------------------------------------------------------
-- schema_migrations: created as upstream's migrator (gobuffalo/pop with fizz) creates it before
-- its first migration, varchar(14) with a primary key and a redundant unique index. Versions
-- are recorded in it by a later migration, once the schema matches them.
-- ---------------------------------------------------------------------------------------------

create table if not exists schema_migrations (
  "version" varchar(14) not null,
  primary key ("version")
);
create unique index if not exists schema_migrations_version_idx on schema_migrations ("version");


-- ---------------------------------------------------------------------------------------------
-- OAuth 2.1 server: registered clients. The uuid id is the public client_id.
-- ---------------------------------------------------------------------------------------------

create table if not exists oauth_clients (
  id                         uuid not null,
  -- NULL for public clients, which have no secret
  client_secret_hash         text null,
  registration_type          oauth_registration_type not null,
  redirect_uris              text not null,
  grant_types                text not null,
  client_name                text null,
  client_uri                 text null,
  logo_uri                   text null,
  created_at                 timestamptz not null default now(),
  updated_at                 timestamptz not null default now(),
  deleted_at                 timestamptz null,
  client_type                oauth_client_type not null default 'confidential',
  -- RFC 7591 token_endpoint_auth_method; no default: the server always sets it
  token_endpoint_auth_method text not null
    check (token_endpoint_auth_method in ('client_secret_basic', 'client_secret_post', 'none')),
  constraint oauth_clients_pkey primary key (id),
  constraint oauth_clients_client_name_length check (char_length(client_name) <= 1024),
  constraint oauth_clients_client_uri_length check (char_length(client_uri) <= 2048),
  constraint oauth_clients_logo_uri_length check (char_length(logo_uri) <= 2048)
);

create index if not exists oauth_clients_deleted_at_idx on oauth_clients (deleted_at);


-- ---------------------------------------------------------------------------------------------
-- OAuth 2.1 server: authorization requests, from /oauth/authorize to the code exchange.
-- ---------------------------------------------------------------------------------------------

create table if not exists oauth_authorizations (
  id                    uuid not null,
  authorization_id      text not null,
  client_id             uuid not null references oauth_clients (id) on delete cascade,
  -- NULL until the user signs in and decides
  user_id               uuid null references users (id) on delete cascade,
  redirect_uri          text not null,
  scope                 text not null,
  state                 text null,
  resource              text null,
  code_challenge        text null,
  code_challenge_method code_challenge_method null,
  response_type         oauth_response_type not null default 'code',
  status                oauth_authorization_status not null default 'pending',
  authorization_code    text null,
  created_at            timestamptz not null default now(),
  -- a request is short-lived: three minutes unless the server says otherwise
  expires_at            timestamptz not null default (now() + interval '3 minutes'),
  approved_at           timestamptz null,
  nonce                 text null,
  constraint oauth_authorizations_pkey primary key (id),
  constraint oauth_authorizations_authorization_id_key unique (authorization_id),
  constraint oauth_authorizations_authorization_code_key unique (authorization_code),
  constraint oauth_authorizations_redirect_uri_length check (char_length(redirect_uri) <= 2048),
  constraint oauth_authorizations_scope_length check (char_length(scope) <= 4096),
  constraint oauth_authorizations_state_length check (char_length(state) <= 4096),
  constraint oauth_authorizations_resource_length check (char_length(resource) <= 2048),
  constraint oauth_authorizations_code_challenge_length check (char_length(code_challenge) <= 128),
  constraint oauth_authorizations_authorization_code_length check (char_length(authorization_code) <= 255),
  constraint oauth_authorizations_expires_at_future check (expires_at > created_at),
  constraint oauth_authorizations_nonce_length check (char_length(nonce) <= 255)
);

-- the cleanup of expired requests reads only the pending ones
create index if not exists oauth_auth_pending_exp_idx on oauth_authorizations (expires_at)
  where status = 'pending';


-- ---------------------------------------------------------------------------------------------
-- OAuth 2.1 server: a user's consent to a client's scopes (one row per user and client).
-- ---------------------------------------------------------------------------------------------

create table if not exists oauth_consents (
  id         uuid not null,
  user_id    uuid not null references users (id) on delete cascade,
  client_id  uuid not null references oauth_clients (id) on delete cascade,
  scopes     text not null,
  granted_at timestamptz not null default now(),
  revoked_at timestamptz null,
  constraint oauth_consents_pkey primary key (id),
  constraint oauth_consents_user_client_unique unique (user_id, client_id),
  constraint oauth_consents_scopes_length check (char_length(scopes) <= 2048),
  constraint oauth_consents_scopes_not_empty check (char_length(trim(scopes)) > 0),
  constraint oauth_consents_revoked_after_granted check (revoked_at is null or revoked_at >= granted_at)
);

-- active consents by user and client, a user's consents newest first, a client's active ones
create index if not exists oauth_consents_active_user_client_idx on oauth_consents (user_id, client_id)
  where revoked_at is null;
create index if not exists oauth_consents_user_order_idx on oauth_consents (user_id, granted_at desc);
create index if not exists oauth_consents_active_client_idx on oauth_consents (client_id)
  where revoked_at is null;


-- ---------------------------------------------------------------------------------------------
-- State of a sign-in with an external provider, where this server is the OAuth client
-- (flow_state.oauth_client_state_id points here; no foreign key, as upstream).
-- ---------------------------------------------------------------------------------------------

create table if not exists oauth_client_states (
  id            uuid primary key,
  provider_type text not null,
  -- the PKCE verifier sent to the provider at the code exchange
  code_verifier text,
  created_at    timestamptz not null
);

create index if not exists idx_oauth_client_states_created_at on oauth_client_states (created_at);

comment on table oauth_client_states is
  'Stores OAuth states for third-party provider authentication flows where Supabase acts as the OAuth client.';


-- ---------------------------------------------------------------------------------------------
-- Custom OAuth2 / OIDC providers configured at run time (admin API), one row per provider.
-- ---------------------------------------------------------------------------------------------

create table if not exists custom_oauth_providers (
  id                      uuid not null default gen_random_uuid(),
  provider_type           text not null check (provider_type in ('oauth2', 'oidc')),
  -- the name used in /authorize?provider=custom:<identifier>
  identifier              text not null,
  name                    text not null,
  client_id               text not null,
  -- encrypted by the application
  client_secret           text not null,
  acceptable_client_ids   text[] not null default '{}',
  scopes                  text[] not null default '{}',
  pkce_enabled            boolean not null default true,
  attribute_mapping       jsonb not null default '{}',
  authorization_params    jsonb not null default '{}',
  enabled                 boolean not null default true,
  email_optional          boolean not null default false,
  -- OIDC providers
  issuer                  text null,
  discovery_url           text null,
  skip_nonce_check        boolean not null default false,
  cached_discovery        jsonb null,
  discovery_cached_at     timestamptz null,
  -- plain OAuth2 providers
  authorization_url       text null,
  token_url               text null,
  userinfo_url            text null,
  jwks_uri                text null,
  created_at              timestamptz not null default now(),
  updated_at              timestamptz not null default now(),
  -- claim names copied verbatim from the provider into custom_claims ('{}': none)
  custom_claims_allowlist text[] not null default '{}',
  constraint custom_oauth_providers_pkey primary key (id),
  constraint custom_oauth_providers_identifier_key unique (identifier),
  constraint custom_oauth_providers_oidc_requires_issuer
    check (provider_type != 'oidc' or issuer is not null),
  constraint custom_oauth_providers_oidc_issuer_https
    check (provider_type != 'oidc' or issuer is null or issuer like 'https://%'),
  constraint custom_oauth_providers_oidc_discovery_url_https
    check (provider_type != 'oidc' or discovery_url is null or discovery_url like 'https://%'),
  constraint custom_oauth_providers_oauth2_requires_endpoints
    check (provider_type != 'oauth2'
           or (authorization_url is not null and token_url is not null and userinfo_url is not null)),
  constraint custom_oauth_providers_authorization_url_https
    check (authorization_url is null or authorization_url like 'https://%'),
  constraint custom_oauth_providers_token_url_https
    check (token_url is null or token_url like 'https://%'),
  constraint custom_oauth_providers_userinfo_url_https
    check (userinfo_url is null or userinfo_url like 'https://%'),
  constraint custom_oauth_providers_jwks_uri_https
    check (jwks_uri is null or jwks_uri like 'https://%'),
  -- lower-case letters, digits, ':' and '-', 2 to 50 characters, no separator at either end
  constraint custom_oauth_providers_identifier_format
    check (identifier ~ '^[a-z0-9][a-z0-9:-]{0,48}[a-z0-9]$'),
  constraint custom_oauth_providers_name_length
    check (char_length(name) >= 1 and char_length(name) <= 100),
  constraint custom_oauth_providers_issuer_length
    check (issuer is null or (char_length(issuer) >= 1 and char_length(issuer) <= 2048)),
  constraint custom_oauth_providers_discovery_url_length
    check (discovery_url is null or char_length(discovery_url) <= 2048),
  constraint custom_oauth_providers_authorization_url_length
    check (authorization_url is null or char_length(authorization_url) <= 2048),
  constraint custom_oauth_providers_token_url_length
    check (token_url is null or char_length(token_url) <= 2048),
  constraint custom_oauth_providers_userinfo_url_length
    check (userinfo_url is null or char_length(userinfo_url) <= 2048),
  constraint custom_oauth_providers_jwks_uri_length
    check (jwks_uri is null or char_length(jwks_uri) <= 2048),
  constraint custom_oauth_providers_client_id_length
    check (char_length(client_id) >= 1 and char_length(client_id) <= 512)
);

-- upstream also indexes identifier apart from its unique constraint
create index if not exists custom_oauth_providers_identifier_idx on custom_oauth_providers (identifier);
create index if not exists custom_oauth_providers_provider_type_idx on custom_oauth_providers (provider_type);
create index if not exists custom_oauth_providers_enabled_idx on custom_oauth_providers (enabled);
create index if not exists custom_oauth_providers_created_at_idx on custom_oauth_providers (created_at);


-- ---------------------------------------------------------------------------------------------
-- Passkeys: WebAuthn credentials (first-factor sign-in), and the challenges of ceremonies in
-- progress (user_id NULL for a passkey sign-up or a discoverable sign-in).
-- ---------------------------------------------------------------------------------------------

create table if not exists webauthn_credentials (
  id               uuid not null default gen_random_uuid(),
  user_id          uuid not null references users (id) on delete cascade,
  credential_id    bytea not null,
  public_key       bytea not null,
  attestation_type text not null default '',
  aaguid           uuid,
  sign_count       bigint not null default 0,
  transports       jsonb not null default '[]'::jsonb,
  backup_eligible  boolean not null default false,
  backed_up        boolean not null default false,
  friendly_name    text not null default '',
  created_at       timestamptz not null default now(),
  updated_at       timestamptz not null default now(),
  last_used_at     timestamptz,
  constraint webauthn_credentials_pkey primary key (id)
);

-- a unique index, not a constraint, as upstream
create unique index if not exists webauthn_credentials_credential_id_key on webauthn_credentials (credential_id);
create index if not exists webauthn_credentials_user_id_idx on webauthn_credentials (user_id);

create table if not exists webauthn_challenges (
  id             uuid not null default gen_random_uuid(),
  user_id        uuid references users (id) on delete cascade,
  challenge_type text not null check (challenge_type in ('signup', 'registration', 'authentication')),
  session_data   jsonb not null,
  created_at     timestamptz not null default now(),
  expires_at     timestamptz not null,
  constraint webauthn_challenges_pkey primary key (id)
);

create index if not exists webauthn_challenges_user_id_idx on webauthn_challenges (user_id);
create index if not exists webauthn_challenges_expires_at_idx on webauthn_challenges (expires_at);


-- ---------------------------------------------------------------------------------------------
-- Row-level security as upstream: enabled (without policies) on schema_migrations, with SELECT
-- granted to postgres when that role exists; upstream does neither for the other tables here.
-- ---------------------------------------------------------------------------------------------

alter table schema_migrations enable row level security;

do $$
begin
  if exists (select 1 from pg_roles where rolname = 'postgres') then
    begin
      execute format('grant select on %I.schema_migrations to postgres with grant option', current_schema());
    exception when others then
      raise notice 'gotrue-lite: could not grant select on schema_migrations to postgres: %', sqlerrm;
    end;
  end if;
end $$;
