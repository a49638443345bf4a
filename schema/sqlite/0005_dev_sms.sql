-- The development outbox: SMS kept beside the dev mail while no SMS provider is set.
--
-- channel is 'email', 'sms' or 'whatsapp' (an SMS entry's recipient is the normalised number,
-- its subject and html_body empty); code is the one-time code the message carries, '' if none.

ALTER TABLE gotrue_lite_dev_mail ADD COLUMN channel TEXT NOT NULL DEFAULT 'email';
ALTER TABLE gotrue_lite_dev_mail ADD COLUMN code TEXT NOT NULL DEFAULT '';
