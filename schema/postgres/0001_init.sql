-- gotrue-lite initial PostgreSQL schema: the auth tables, enums, indexes and RLS helpers of upstream GoTrue at HEAD.
--
-- The migrator runs this file inside one transaction with search_path set to the namespace
-- (default auth), so every object below is created unqualified and lands in that schema.
-- Only the RLS helper functions need a qualified name: __NAMESPACE__ is replaced by the
-- quoted schema name before the file runs.
--
-- Names of tables, columns, constraints, indexes and enum types follow upstream HEAD so that a
-- database can be handed back to the Go server. Deliberate differences, all harmless to it:
--   * no column computes an id or a time (no gen_random_uuid(), no now()): the application
--     supplies uuid4 ids and binds every timestamp from its one clock, so tests can move time
--   * the token columns all default to '' (the Go model cannot load a user with NULL there)
--   * sessions.oauth_client_id has no foreign key (the OAuth-server tables are out of scope)
--   * extra indexes for gotrue-lite's own lookups are marked "gotrue-lite addition"
--   * schema_migrations (the Go migrator's bookkeeping) is not created here


-- ---------------------------------------------------------------------------------------------
-- Enum types. Wrapped so that a type left behind in the namespace does not abort the migration.
-- ---------------------------------------------------------------------------------------------

do $$ begin
  create type factor_type as enum ('totp', 'webauthn', 'phone');
exception when duplicate_object then null;
end $$;

do $$ begin
  create type factor_status as enum ('unverified', 'verified');
exception when duplicate_object then null;
end $$;

do $$ begin
  create type aal_level as enum ('aal1', 'aal2', 'aal3');
exception when duplicate_object then null;
end $$;

do $$ begin
  create type code_challenge_method as enum ('s256', 'plain');
exception when duplicate_object then null;
end $$;

do $$ begin
  create type one_time_token_type as enum (
    'confirmation_token',
    'reauthentication_token',
    'recovery_token',
    'email_change_token_new',
    'email_change_token_current',
    'phone_change_token'
  );
exception when duplicate_object then null;
end $$;


-- ---------------------------------------------------------------------------------------------
-- users
-- ---------------------------------------------------------------------------------------------

create table users (
  instance_id                 uuid null,
  id                          uuid not null,
  aud                         varchar(255) null,
  "role"                      varchar(255) null,
  email                       varchar(255) null,
  encrypted_password          varchar(255) null,
  email_confirmed_at          timestamptz null,
  invited_at                  timestamptz null,
  -- gotrue-lite addition: DEFAULT '' on the token columns, because the Go model reads them
  -- into plain strings and fails to load a user row holding NULL there
  confirmation_token          varchar(255) null default '',
  confirmation_sent_at        timestamptz null,
  recovery_token              varchar(255) null default '',
  recovery_sent_at            timestamptz null,
  email_change_token_new      varchar(255) null default '',
  email_change                varchar(255) null default '',
  email_change_sent_at        timestamptz null,
  last_sign_in_at             timestamptz null,
  raw_app_meta_data           jsonb null,
  raw_user_meta_data          jsonb null,
  is_super_admin              boolean null,
  created_at                  timestamptz null,
  updated_at                  timestamptz null,
  -- NULL when the user has no phone, so the unique constraint never collides on "no phone"
  phone                       text null default null,
  phone_confirmed_at          timestamptz null,
  phone_change                text null default '',
  phone_change_token          varchar(255) null default '',
  phone_change_sent_at        timestamptz null,
  -- backward-compatible "confirmed at all": the earlier of the two confirmations
  -- (LEAST ignores NULLs, so one confirmation is enough)
  confirmed_at                timestamptz generated always as
                                (least(email_confirmed_at, phone_confirmed_at)) stored,
  email_change_token_current  varchar(255) null default '',
  email_change_confirm_status smallint null default 0,
  banned_until                timestamptz null,
  reauthentication_token      varchar(255) null default '',
  reauthentication_sent_at    timestamptz null,
  is_sso_user                 boolean not null default false,
  deleted_at                  timestamptz null,
  is_anonymous                boolean not null default false,
  constraint users_pkey primary key (id),
  -- redundant with the primary key, kept because upstream has it and may refer to it
  constraint users_id_key unique (id),
  constraint users_phone_key unique (phone),
  constraint users_email_change_confirm_status_check
    check (email_change_confirm_status >= 0 and email_change_confirm_status <= 2)
);

comment on column users.is_sso_user is
  'Auth: true for accounts created through SSO, which may share an email with a non-SSO account.';

-- the plain UNIQUE(email) of old was replaced by this so SSO accounts can duplicate emails
create unique index users_email_partial_key on users (email) where (is_sso_user = false);
create index users_instance_id_email_idx on users (instance_id, lower(email));
create index users_instance_id_idx on users (instance_id);
create index users_is_anonymous_idx on users (is_anonymous);
-- gotrue-lite addition: gotrue-lite does not filter on instance_id, so its lookup
-- (lower(email) = $1 and aud = $2) needs an index that starts with lower(email)
create index users_email_aud_idx on users (lower(email), aud);
-- admin listing pages by created_at. Same name and shape as the index the Go index worker
-- builds at run time, so that worker finds it already present
create index idx_users_created_at_desc on users (created_at desc);

-- A token hash is looked up by value, so it must be unique. Excluded: '' (no token
-- outstanding) and values made only of digits and spaces (legacy plain numeric OTPs, which
-- may legitimately repeat across users). phone_change_token has no such index upstream.
create unique index confirmation_token_idx on users (confirmation_token)
  where confirmation_token !~ '^[0-9 ]*$';
create unique index recovery_token_idx on users (recovery_token)
  where recovery_token !~ '^[0-9 ]*$';
create unique index email_change_token_current_idx on users (email_change_token_current)
  where email_change_token_current !~ '^[0-9 ]*$';
create unique index email_change_token_new_idx on users (email_change_token_new)
  where email_change_token_new !~ '^[0-9 ]*$';
create unique index reauthentication_token_idx on users (reauthentication_token)
  where reauthentication_token !~ '^[0-9 ]*$';


-- ---------------------------------------------------------------------------------------------
-- identities
-- ---------------------------------------------------------------------------------------------

create table identities (
  provider_id     text not null,
  user_id         uuid not null,
  identity_data   jsonb not null,
  provider        text not null,
  last_sign_in_at timestamptz null,
  created_at      timestamptz null,
  updated_at      timestamptz null,
  -- duplicate-email detection across providers reads this instead of parsing identity_data
  email           text generated always as (lower(identity_data ->> 'email')) stored,
  -- no default: upstream's gen_random_uuid() is dropped, the application supplies the id
  id              uuid not null,
  constraint identities_pkey primary key (id),
  constraint identities_provider_id_provider_unique unique (provider_id, provider),
  constraint identities_user_id_fkey foreign key (user_id)
    references users (id) on delete cascade
);

create index identities_user_id_idx on identities (user_id);
-- text_pattern_ops so that prefix searches (email like 'abc%') can use it as well
create index identities_email_idx on identities (email text_pattern_ops);


-- ---------------------------------------------------------------------------------------------
-- sessions
-- ---------------------------------------------------------------------------------------------

create table sessions (
  id                     uuid not null,
  user_id                uuid not null,
  created_at             timestamptz null,
  updated_at             timestamptz null,
  factor_id              uuid null,
  aal                    aal_level null,
  not_after              timestamptz null,
  -- without time zone, as upstream: the value written is UTC
  refreshed_at           timestamp without time zone null,
  user_agent             text null,
  ip                     inet null,
  tag                    text null,
  -- upstream references oauth_clients here. That table is out of scope, so no foreign key
  oauth_client_id        uuid null,
  refresh_token_hmac_key text null,
  refresh_token_counter  bigint null,
  scopes                 text null,
  constraint sessions_pkey primary key (id),
  constraint sessions_user_id_fkey foreign key (user_id)
    references users (id) on delete cascade,
  constraint sessions_scopes_length check (char_length(scopes) <= 4096)
);

create index sessions_user_id_idx on sessions (user_id);
create index user_id_created_at_idx on sessions (user_id, created_at);
create index sessions_not_after_idx on sessions (not_after desc);
create index sessions_oauth_client_id_idx on sessions (oauth_client_id);


-- ---------------------------------------------------------------------------------------------
-- refresh_tokens
-- ---------------------------------------------------------------------------------------------

create table refresh_tokens (
  instance_id uuid null,
  -- insertion order matters: the active token of a session is its highest unrevoked id
  id          bigserial not null,
  "token"     varchar(255) null,
  -- the owner's uuid as text, with no foreign key, exactly as upstream
  user_id     varchar(255) null,
  revoked     boolean null,
  created_at  timestamptz null,
  -- once revoked, the revocation time: anchor of the reuse window
  updated_at  timestamptz null,
  -- token value of the predecessor (its foreign key was dropped upstream in 2022)
  parent      varchar(255) null,
  session_id  uuid null,
  constraint refresh_tokens_pkey primary key (id),
  -- doubles as the lookup index for a presented token
  constraint refresh_tokens_token_unique unique ("token"),
  constraint refresh_tokens_session_id_fkey foreign key (session_id)
    references sessions (id) on delete cascade
);

create index refresh_tokens_instance_id_idx on refresh_tokens (instance_id);
create index refresh_tokens_instance_id_user_id_idx on refresh_tokens (instance_id, user_id);
create index refresh_tokens_parent_idx on refresh_tokens (parent);
create index refresh_tokens_session_id_revoked_idx on refresh_tokens (session_id, revoked);
create index refresh_tokens_updated_at_idx on refresh_tokens (updated_at desc);


-- ---------------------------------------------------------------------------------------------
-- MFA: factors, challenges, authentication method claims
-- ---------------------------------------------------------------------------------------------

create table mfa_factors (
  id                           uuid not null,
  user_id                      uuid not null,
  friendly_name                text null,
  factor_type                  factor_type not null,
  status                       factor_status not null,
  created_at                   timestamptz not null,
  updated_at                   timestamptz not null,
  secret                       text null,
  phone                        text null default null,
  last_challenged_at           timestamptz null default null,
  web_authn_credential         jsonb null,
  web_authn_aaguid             uuid null,
  last_webauthn_challenge_data jsonb null,
  constraint mfa_factors_pkey primary key (id),
  constraint mfa_factors_user_id_fkey foreign key (user_id)
    references users (id) on delete cascade,
  constraint mfa_factors_last_challenged_at_key unique (last_challenged_at)
);

-- blank names do not count, so several unnamed factors may coexist
create unique index mfa_factors_user_friendly_name_unique on mfa_factors (friendly_name, user_id)
  where trim(friendly_name) <> '';
create unique index unique_phone_factor_per_user on mfa_factors (user_id, phone);
create index factor_id_created_at_idx on mfa_factors (user_id, created_at);
create index mfa_factors_user_id_idx on mfa_factors (user_id);

create table mfa_challenges (
  id                     uuid not null,
  factor_id              uuid not null,
  created_at             timestamptz not null,
  verified_at            timestamptz null,
  ip_address             inet not null,
  otp_code               text null,
  web_authn_session_data jsonb null,
  constraint mfa_challenges_pkey primary key (id),
  constraint mfa_challenges_auth_factor_id_fkey foreign key (factor_id)
    references mfa_factors (id) on delete cascade
);

create index mfa_challenge_created_at_idx on mfa_challenges (created_at desc);

create table mfa_amr_claims (
  session_id            uuid not null,
  created_at            timestamptz not null,
  updated_at            timestamptz not null,
  authentication_method text not null,
  id                    uuid not null,
  constraint amr_id_pk primary key (id),
  -- a unique constraint despite the _pkey name. The Go server upserts with
  -- ON CONFLICT ON CONSTRAINT <this name>, so it must stay a named constraint
  constraint mfa_amr_claims_session_id_authentication_method_pkey
    unique (session_id, authentication_method),
  constraint mfa_amr_claims_session_id_fkey foreign key (session_id)
    references sessions (id) on delete cascade
);


-- ---------------------------------------------------------------------------------------------
-- flow_state (PKCE and OAuth round-trip state)
-- ---------------------------------------------------------------------------------------------

create table flow_state (
  id                     uuid primary key,
  -- no foreign key: OAuth flows learn the user only after the callback
  user_id                uuid null,
  auth_code              text null,
  code_challenge_method  code_challenge_method null,
  code_challenge         text null,
  provider_type          text not null,
  provider_access_token  text null,
  provider_refresh_token text null,
  created_at             timestamptz null,
  updated_at             timestamptz null,
  authentication_method  text not null,
  auth_code_issued_at    timestamptz null,
  invite_token           text null,
  referrer               text null,
  oauth_client_state_id  uuid null,
  linking_target_id      uuid null,
  email_optional         boolean not null default false
);

create index idx_auth_code on flow_state (auth_code);
create index idx_user_id_auth_method on flow_state (user_id, authentication_method);
create index flow_state_created_at_idx on flow_state (created_at desc);


-- ---------------------------------------------------------------------------------------------
-- one_time_tokens (index of outstanding token hashes)
-- ---------------------------------------------------------------------------------------------

create table one_time_tokens (
  id         uuid primary key,
  user_id    uuid not null references users (id) on delete cascade,
  token_type one_time_token_type not null,
  token_hash text not null,
  relates_to text not null,
  -- without time zone, as upstream. Upstream defaults these to now(): dropped here because
  -- the application binds both from its clock (the Go ORM fills them too)
  created_at timestamp without time zone not null,
  updated_at timestamp without time zone not null,
  check (char_length(token_hash) > 0)
);

-- hash indexes: these columns are only ever compared for equality
create index one_time_tokens_token_hash_hash_idx on one_time_tokens using hash (token_hash);
create index one_time_tokens_relates_to_hash_idx on one_time_tokens using hash (relates_to);
-- one outstanding token per kind: issuing a new one first deletes the old row
create unique index one_time_tokens_user_id_token_type_key on one_time_tokens (user_id, token_type);


-- ---------------------------------------------------------------------------------------------
-- audit_log_entries
-- ---------------------------------------------------------------------------------------------

create table audit_log_entries (
  instance_id uuid null,
  id          uuid not null,
  -- json, not jsonb, as upstream: the text is kept as written
  payload     json null,
  created_at  timestamptz null,
  ip_address  varchar(64) not null default '',
  constraint audit_log_entries_pkey primary key (id)
);

create index audit_logs_instance_id_idx on audit_log_entries (instance_id);
-- gotrue-lite addition: the admin listing shows the newest entries first
create index audit_log_entries_created_at_idx on audit_log_entries (created_at desc);


-- ---------------------------------------------------------------------------------------------
-- SSO / SAML (created empty for compatibility with upstream)
-- ---------------------------------------------------------------------------------------------

create table sso_providers (
  id          uuid not null,
  resource_id text null,
  created_at  timestamptz null,
  updated_at  timestamptz null,
  disabled    boolean null,
  primary key (id),
  -- written with IS NULL: upstream's "= null" form makes the check accept ''
  constraint "resource_id not empty" check (resource_id is null or char_length(resource_id) > 0)
);

create unique index sso_providers_resource_id_idx on sso_providers (lower(resource_id));
create index sso_providers_resource_id_pattern_idx on sso_providers (resource_id text_pattern_ops);

create table sso_domains (
  id              uuid not null,
  sso_provider_id uuid not null,
  domain          text not null,
  created_at      timestamptz null,
  updated_at      timestamptz null,
  primary key (id),
  foreign key (sso_provider_id) references sso_providers (id) on delete cascade,
  constraint "domain not empty" check (char_length(domain) > 0)
);

create index sso_domains_sso_provider_id_idx on sso_domains (sso_provider_id);
create unique index sso_domains_domain_idx on sso_domains (lower(domain));

create table saml_providers (
  id                uuid not null,
  sso_provider_id   uuid not null,
  entity_id         text not null,
  metadata_xml      text not null,
  metadata_url      text null,
  attribute_mapping jsonb null,
  created_at        timestamptz null,
  updated_at        timestamptz null,
  name_id_format    text null,
  primary key (id),
  constraint saml_providers_entity_id_key unique (entity_id),
  foreign key (sso_provider_id) references sso_providers (id) on delete cascade,
  constraint "metadata_xml not empty" check (char_length(metadata_xml) > 0),
  constraint "metadata_url not empty" check (metadata_url is null or char_length(metadata_url) > 0),
  constraint "entity_id not empty" check (char_length(entity_id) > 0)
);

create index saml_providers_sso_provider_id_idx on saml_providers (sso_provider_id);

create table saml_relay_states (
  id              uuid not null,
  sso_provider_id uuid not null,
  request_id      text not null,
  for_email       text null,
  redirect_to     text null,
  created_at      timestamptz null,
  updated_at      timestamptz null,
  flow_state_id   uuid null default null references flow_state (id) on delete cascade,
  primary key (id),
  foreign key (sso_provider_id) references sso_providers (id) on delete cascade,
  constraint "request_id not empty" check (char_length(request_id) > 0)
);

create index saml_relay_states_sso_provider_id_idx on saml_relay_states (sso_provider_id);
create index saml_relay_states_for_email_idx on saml_relay_states (for_email);
create index saml_relay_states_created_at_idx on saml_relay_states (created_at desc);


-- ---------------------------------------------------------------------------------------------
-- instances (legacy multi-tenant configuration, unused, kept so the table set matches upstream)
-- ---------------------------------------------------------------------------------------------

create table instances (
  id              uuid not null,
  uuid            uuid null,
  raw_base_config text null,
  created_at      timestamptz null,
  updated_at      timestamptz null,
  constraint instances_pkey primary key (id)
);


-- ---------------------------------------------------------------------------------------------
-- RLS helper functions. Supabase policies call these by qualified name, so they are created in
-- the namespace explicitly. They read the per-transaction settings PostgREST derives from the
-- verified JWT: one JSON string request.jwt.claims (PostgREST 9+) or, before v9, one setting
-- per claim (request.jwt.claim.<name>). current_setting(..., true) returns NULL for a setting
-- never defined and '' for one defined earlier in the session, so an empty setting is turned
-- into NULL before it is parsed: anonymous requests get NULL, not an error.
-- STABLE lets the planner fold a call once per statement, so "user_id = uid()" can use an index.
-- ---------------------------------------------------------------------------------------------

create or replace function __NAMESPACE__.uid() returns uuid
  language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb) ->> 'sub'
  )::uuid
$$;

create or replace function __NAMESPACE__.role() returns text
  language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb) ->> 'role'
  )::text
$$;

create or replace function __NAMESPACE__.email() returns text
  language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.email', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb) ->> 'email'
  )::text
$$;

create or replace function __NAMESPACE__.jwt() returns jsonb
  language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

-- kept for existing policies, but new ones should read the claim from jwt()
comment on function __NAMESPACE__.uid() is
  'Deprecated: read the claim from jwt() in this schema instead, as jwt() ->> ''sub''.';
comment on function __NAMESPACE__.role() is
  'Deprecated: read the claim from jwt() in this schema instead, as jwt() ->> ''role''.';
comment on function __NAMESPACE__.email() is
  'Deprecated: read the claim from jwt() in this schema instead, as jwt() ->> ''email''.';


-- ---------------------------------------------------------------------------------------------
-- Row-level security, as upstream: enabled without policies on the 16 tables upstream lists,
-- so only the owner (and superusers) can read them through the Data API. The role
-- postgres is granted SELECT with grant option so it can expose chosen tables to other roles.
-- schema_migrations is not created by gotrue-lite and is skipped when absent. The grants
-- assume Supabase's roles: they are skipped when the role is missing and never abort the
-- migration.
-- ---------------------------------------------------------------------------------------------

do $$
declare
  tbl text;
  qualified text;
begin
  foreach tbl in array array[
    'schema_migrations', 'instances', 'users', 'audit_log_entries', 'saml_relay_states',
    'refresh_tokens', 'mfa_factors', 'sessions', 'sso_providers', 'sso_domains',
    'mfa_challenges', 'mfa_amr_claims', 'saml_providers', 'flow_state', 'identities',
    'one_time_tokens'
  ] loop
    -- the tables above were created in current_schema(), the first schema of search_path
    qualified := format('%I.%I', current_schema(), tbl);
    if to_regclass(qualified) is null then
      continue;
    end if;
    execute format('alter table %s enable row level security', qualified);
    if exists (select 1 from pg_roles where rolname = 'postgres') then
      begin
        execute format('grant select on %s to postgres with grant option', qualified);
      exception when others then
        raise notice 'gotrue-lite: could not grant select on % to postgres: %', qualified, sqlerrm;
      end;
    end if;
  end loop;
end $$;
