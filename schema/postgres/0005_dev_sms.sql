-- The development outbox: SMS kept beside the dev mail while no SMS provider is set.
--
-- channel is 'email', 'sms' or 'whatsapp' (an SMS entry's recipient is the normalised number,
-- its subject and html_body empty); code is the one-time code the message carries, '' if none.

alter table gotrue_lite_dev_mail add column channel text not null default 'email';
alter table gotrue_lite_dev_mail add column code text not null default '';
