-- gotrue-lite's schema becomes exactly supabase/auth v2.196.0's, and says so in schema_migrations.
--
-- After 0001_init and 0006_upstream_tables the tables, columns, types, indexes and functions are
-- upstream's; what still differed was undone here (tests/test_adopt.py compares the result with
-- tests/data/upstream_schema.json):
--   * defaults: the four token columns that have none upstream lose gotrue-lite's '' (the
--     application always writes '' there itself, which is what the Go model needs);
--     phone_change and phone get upstream's varchar-typed defaults; identities.id and the two
--     one_time_tokens times get upstream's gen_random_uuid() and now(), which the Go server
--     relies on when it inserts (gotrue-lite keeps supplying both)
--   * the "not empty" checks of sso_providers.resource_id and saml_providers.metadata_url are
--     written as upstream writes them, with "= null", which is never true (so they accept '')
--   * sessions.oauth_client_id references oauth_clients, now that the table exists
-- Then every upstream migration version goes into schema_migrations, so that supabase/auth
-- v2.196.0 started on this database finds nothing to migrate. gotrue-lite reads the same table
-- to recognise a database made by supabase/auth (gotrue_lite/store/migrate.py).
--
-- An auth schema made by supabase/auth is already all of this: gotrue-lite does not run this
-- file (nor 0001, nor 0006) on one it adopts.

alter table users alter column confirmation_token drop default;
alter table users alter column recovery_token drop default;
alter table users alter column email_change_token_new drop default;
alter table users alter column email_change drop default;
alter table users alter column phone_change set default ''::character varying;
alter table users alter column phone set default null::character varying;
alter table identities alter column id set default gen_random_uuid();
alter table one_time_tokens alter column created_at set default now();
alter table one_time_tokens alter column updated_at set default now();

alter table sso_providers drop constraint "resource_id not empty";
alter table sso_providers add constraint "resource_id not empty"
  check (resource_id = null or char_length(resource_id) > 0);
alter table saml_providers drop constraint "metadata_url not empty";
alter table saml_providers add constraint "metadata_url not empty"
  check (metadata_url = null or char_length(metadata_url) > 0);

-- a database shared with the Go server may already have it (its migrator stopped later on)
do $$ begin
  alter table sessions add constraint sessions_oauth_client_id_fkey foreign key (oauth_client_id)
    references oauth_clients (id) on delete cascade;
exception when duplicate_object then null;
end $$;

-- the file names of upstream's 70 migrations at v2.196.0, up to the number
insert into schema_migrations ("version") values
  ('00'),
  ('20210710035447'),
  ('20210722035447'),
  ('20210730183235'),
  ('20210909172000'),
  ('20210927181326'),
  ('20211122151130'),
  ('20211124214934'),
  ('20211202183645'),
  ('20220114185221'),
  ('20220114185340'),
  ('20220224000811'),
  ('20220323170000'),
  ('20220429102000'),
  ('20220531120530'),
  ('20220614074223'),
  ('20220811173540'),
  ('20221003041349'),
  ('20221003041400'),
  ('20221011041400'),
  ('20221020193600'),
  ('20221021073300'),
  ('20221021082433'),
  ('20221027105023'),
  ('20221114143122'),
  ('20221114143410'),
  ('20221125140132'),
  ('20221208132122'),
  ('20221215195500'),
  ('20221215195800'),
  ('20221215195900'),
  ('20230116124310'),
  ('20230116124412'),
  ('20230131181311'),
  ('20230322519590'),
  ('20230402418590'),
  ('20230411005111'),
  ('20230508135423'),
  ('20230523124323'),
  ('20230818113222'),
  ('20230914180801'),
  ('20231027141322'),
  ('20231114161723'),
  ('20231117164230'),
  ('20240115144230'),
  ('20240214120130'),
  ('20240306115329'),
  ('20240314092811'),
  ('20240427152123'),
  ('20240612123726'),
  ('20240729123726'),
  ('20240802193726'),
  ('20240806073726'),
  ('20241009103726'),
  ('20250717082212'),
  ('20250731150234'),
  ('20250804100000'),
  ('20250901200500'),
  ('20250903112500'),
  ('20250904133000'),
  ('20250925093508'),
  ('20251007112900'),
  ('20251104100000'),
  ('20251111201300'),
  ('20251201000000'),
  ('20260115000000'),
  ('20260121000000'),
  ('20260219120000'),
  ('20260302000000'),
  ('20260625000000')
  on conflict do nothing;
