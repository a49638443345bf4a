-- gotrue-lite development mailbox: mail kept instead of sent while no SMTP server is set.
--
-- gotrue-lite's own table (the Go server never reads it), created in the auth namespace by
-- the migrator like everything else. The application caps it at the newest 500 messages.

create table gotrue_lite_dev_mail (
  id         uuid primary key,
  created_at timestamptz not null,
  kind       text not null,
  recipient  text not null,
  subject    text not null,
  text_body  text not null,
  html_body  text not null
);

create index gotrue_lite_dev_mail_created_at_idx on gotrue_lite_dev_mail (created_at);
