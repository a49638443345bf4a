-- gotrue-lite: indexes behind the admin listings (GET /admin/users, GET /admin/audit).
--
-- GET /admin/users reads one audience newest (or oldest) first, a page at a time, and counts
-- that audience: (aud, created_at, id) serves the WHERE, the ORDER BY and the count from the
-- index alone. id breaks ties between users created in the same microsecond, so pages
-- never overlap or skip a row. The substring filters (email, full_name) are checked on the
-- rows this index yields; no b-tree can answer a substring.
create index users_aud_created_at_id_idx on users (aud, created_at desc, id desc);

-- GET /admin/audit lists every entry newest first; id again makes the order total.
create index audit_log_entries_created_at_id_idx on audit_log_entries (created_at desc, id desc);
