-- "Sign out everywhere" (`POST /api/v1/auth/logout?all=true`): sessions of the user that began
-- before this time are over, on every node, with no index of the user's sessions. Unix
-- milliseconds (sessions begin within the same second as a sign-out everywhere), NULL where the
-- user never signed out everywhere.
ALTER TABLE users ADD COLUMN sessions_not_before BIGINT;
