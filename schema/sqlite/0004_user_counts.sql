-- gotrue-lite: the number of users in each audience, kept by triggers, so that GET /admin/users
-- sends X-Total-Count without counting the audience on every page (a count grows with the
-- table; this is one row). Triggers keep it exact whoever writes users: this server, the CLI,
-- or SQL by hand. gotrue-lite's own table.

CREATE TABLE gotrue_lite_user_counts (
  aud   TEXT NOT NULL PRIMARY KEY,
  total INTEGER NOT NULL
);

INSERT INTO gotrue_lite_user_counts (aud, total)
  SELECT aud, count(*) FROM users WHERE aud IS NOT NULL GROUP BY aud;

CREATE TRIGGER gotrue_lite_count_inserted AFTER INSERT ON users WHEN new.aud IS NOT NULL
BEGIN
  INSERT INTO gotrue_lite_user_counts (aud, total) VALUES (new.aud, 1)
    ON CONFLICT (aud) DO UPDATE SET total = total + 1;
END;

CREATE TRIGGER gotrue_lite_count_deleted AFTER DELETE ON users WHEN old.aud IS NOT NULL
BEGIN
  UPDATE gotrue_lite_user_counts SET total = total - 1 WHERE aud = old.aud;
END;

CREATE TRIGGER gotrue_lite_count_moved AFTER UPDATE OF aud ON users WHEN old.aud IS NOT new.aud
BEGIN
  UPDATE gotrue_lite_user_counts SET total = total - 1 WHERE aud = old.aud;
  INSERT INTO gotrue_lite_user_counts (aud, total) SELECT new.aud, 1 WHERE new.aud IS NOT NULL
    ON CONFLICT (aud) DO UPDATE SET total = total + 1;
END;
