-- gotrue-lite development mailbox: mail kept instead of sent while no SMTP server is set.
--
-- gotrue-lite's own table (the Go server never reads it). The application caps it at the
-- newest 500 messages. Types follow 0001_init.sql: TIMESTAMPTZ is fixed-width ISO-8601 UTC
-- text, so ordering by created_at is ordering by time.

CREATE TABLE gotrue_lite_dev_mail (
  id         TEXT NOT NULL PRIMARY KEY,
  created_at TIMESTAMPTZ NOT NULL,
  kind       TEXT NOT NULL,
  recipient  TEXT NOT NULL,
  subject    TEXT NOT NULL,
  text_body  TEXT NOT NULL,
  html_body  TEXT NOT NULL
);

CREATE INDEX gotrue_lite_dev_mail_created_at_idx ON gotrue_lite_dev_mail (created_at);
