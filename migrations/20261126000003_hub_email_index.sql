-- Logins and registrations match emails case-insensitively; index that.
CREATE INDEX IF NOT EXISTS hub_user_email_lower_idx ON "User" (lower("email"));
