-- gotrue-lite: the number of users in each audience, kept by triggers, so that GET /admin/users
-- sends X-Total-Count without counting the audience on every page (a count grows with the
-- table; this is one row). Triggers keep it exact whoever writes users: this server, the Go
-- server sharing the database, or SQL by hand. Statement triggers with transition tables add
-- a bulk load (COPY) in one step; a change of aud, which is rare, is counted row by row.
-- gotrue-lite's own table; the Go server never reads it.

create table gotrue_lite_user_counts (
  aud   varchar(255) not null primary key,
  total bigint not null
);

insert into gotrue_lite_user_counts (aud, total)
  select aud, count(*) from users where aud is not null group by aud;

-- Qualified names: the triggers also run for sessions whose search_path is not the auth schema.
create function __NAMESPACE__.gotrue_lite_users_added() returns trigger language plpgsql as $$
begin
  insert into __NAMESPACE__.gotrue_lite_user_counts as c (aud, total)
    select aud, count(*) from added where aud is not null group by aud
    on conflict (aud) do update set total = c.total + excluded.total;
  return null;
end $$;

create function __NAMESPACE__.gotrue_lite_users_removed() returns trigger language plpgsql as $$
begin
  update __NAMESPACE__.gotrue_lite_user_counts as c set total = c.total - r.n
    from (select aud, count(*) as n from removed where aud is not null group by aud) as r
    where c.aud = r.aud;
  return null;
end $$;

create function __NAMESPACE__.gotrue_lite_user_moved() returns trigger language plpgsql as $$
begin
  if old.aud is not null then
    update __NAMESPACE__.gotrue_lite_user_counts set total = total - 1 where aud = old.aud;
  end if;
  if new.aud is not null then
    insert into __NAMESPACE__.gotrue_lite_user_counts as c (aud, total) values (new.aud, 1)
      on conflict (aud) do update set total = c.total + 1;
  end if;
  return null;
end $$;

create function __NAMESPACE__.gotrue_lite_users_truncated() returns trigger language plpgsql as $$
begin
  delete from __NAMESPACE__.gotrue_lite_user_counts;
  return null;
end $$;

create trigger gotrue_lite_count_inserted after insert on users
  referencing new table as added for each statement execute function __NAMESPACE__.gotrue_lite_users_added();
create trigger gotrue_lite_count_deleted after delete on users
  referencing old table as removed for each statement execute function __NAMESPACE__.gotrue_lite_users_removed();
create trigger gotrue_lite_count_moved after update of aud on users
  for each row when (old.aud is distinct from new.aud) execute function __NAMESPACE__.gotrue_lite_user_moved();
create trigger gotrue_lite_count_truncated after truncate on users
  for each statement execute function __NAMESPACE__.gotrue_lite_users_truncated();
