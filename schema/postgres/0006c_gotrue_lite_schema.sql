-- gotrue-lite's own objects leave the auth schema for a schema of their own, where GoTrue never looks.
--
-- __GOTRUE_LITE__ is that schema: gotrue_lite when DB_NAMESPACE is auth (the default), else
-- gotrue_lite_<namespace>. The migrator creates it and puts it after the namespace in every
-- connection's search_path, so gotrue-lite's SQL keeps naming these tables unqualified.
--
-- gotrue-lite's own objects in a PostgreSQL database; everything else there is upstream's:
--   in __GOTRUE_LITE__
--     gotrue_lite_migrations    which of gotrue-lite's migration files have run (the migrator's)
--     gotrue_lite_dev_mail      the development mailbox and SMS outbox
--     gotrue_lite_user_counts   users per audience, for GET /admin/users' X-Total-Count
--     gotrue_lite_users_added(), gotrue_lite_users_removed(), gotrue_lite_user_moved(),
--     gotrue_lite_users_truncated()   the trigger functions that keep those counts
--   on upstream's tables in the namespace (a trigger or an index lives with its table)
--     users               triggers gotrue_lite_count_inserted, gotrue_lite_count_deleted,
--                         gotrue_lite_count_moved, gotrue_lite_count_truncated (they count
--                         whoever writes users, the Go server included);
--                         indexes users_email_aud_idx, users_aud_created_at_id_idx and
--                         idx_users_created_at_desc (the name and shape of the index the Go
--                         server's index worker builds itself)
--     audit_log_entries   indexes audit_log_entries_created_at_idx, audit_log_entries_created_at_id_idx
-- The Go server reads none of them and its migrator touches none of them. To take gotrue-lite
-- out of a database for good: drop schema __GOTRUE_LITE__ cascade (the triggers go with their
-- functions), then drop the five indexes.

alter table __NAMESPACE__.gotrue_lite_dev_mail set schema __GOTRUE_LITE__;
alter table __NAMESPACE__.gotrue_lite_user_counts set schema __GOTRUE_LITE__;

-- Moved rather than recreated, so the triggers on users keep pointing at them; their bodies
-- then name the counts table where it is now.
alter function __NAMESPACE__.gotrue_lite_users_added() set schema __GOTRUE_LITE__;
alter function __NAMESPACE__.gotrue_lite_users_removed() set schema __GOTRUE_LITE__;
alter function __NAMESPACE__.gotrue_lite_user_moved() set schema __GOTRUE_LITE__;
alter function __NAMESPACE__.gotrue_lite_users_truncated() set schema __GOTRUE_LITE__;

create or replace function __GOTRUE_LITE__.gotrue_lite_users_added() returns trigger language plpgsql as $$
begin
  insert into __GOTRUE_LITE__.gotrue_lite_user_counts as c (aud, total)
    select aud, count(*) from added where aud is not null group by aud
    on conflict (aud) do update set total = c.total + excluded.total;
  return null;
end $$;

create or replace function __GOTRUE_LITE__.gotrue_lite_users_removed() returns trigger language plpgsql as $$
begin
  update __GOTRUE_LITE__.gotrue_lite_user_counts as c set total = c.total - r.n
    from (select aud, count(*) as n from removed where aud is not null group by aud) as r
    where c.aud = r.aud;
  return null;
end $$;

create or replace function __GOTRUE_LITE__.gotrue_lite_user_moved() returns trigger language plpgsql as $$
begin
  if old.aud is not null then
    update __GOTRUE_LITE__.gotrue_lite_user_counts set total = total - 1 where aud = old.aud;
  end if;
  if new.aud is not null then
    insert into __GOTRUE_LITE__.gotrue_lite_user_counts as c (aud, total) values (new.aud, 1)
      on conflict (aud) do update set total = c.total + 1;
  end if;
  return null;
end $$;

create or replace function __GOTRUE_LITE__.gotrue_lite_users_truncated() returns trigger language plpgsql as $$
begin
  delete from __GOTRUE_LITE__.gotrue_lite_user_counts;
  return null;
end $$;

-- 0001_init's indexes for gotrue-lite's own lookups, for a database made by supabase/auth
-- (where 0001 does not run; elsewhere they exist already).
create index if not exists users_email_aud_idx on users (lower(email), aud);
create index if not exists idx_users_created_at_desc on users (created_at desc);
create index if not exists audit_log_entries_created_at_idx on audit_log_entries (created_at desc);
