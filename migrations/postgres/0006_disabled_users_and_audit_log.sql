-- An operator may disable a user: every sign-in way then answers account_disabled, and the
-- user's sessions end (NULL: enabled; otherwise when, Unix seconds).
ALTER TABLE users ADD COLUMN disabled_at BIGINT;

-- The audit log: what happened, when, to which user, from where. No token, code, password,
-- phone number or openid is ever written here. No foreign key: events outlive a deleted user
-- (whose events then keep no client IP, and whose id names nobody any more).
CREATE TABLE audit_events (
    id         TEXT PRIMARY KEY,
    at         BIGINT NOT NULL,            -- Unix milliseconds
    type       TEXT NOT NULL,              -- signed_in, sign_in_failed, user_deleted, ...
    user_id    TEXT,
    client_ip  TEXT,
    request_id TEXT,
    actor      TEXT,                       -- who, for an operator's action
    detail     TEXT                        -- JSON: which way, which app, why
);

-- The admin API's queries: a user's events, events of a type, and everything, newest first;
-- and the retention's delete by age.
CREATE INDEX audit_events_user ON audit_events (user_id, at);
CREATE INDEX audit_events_type ON audit_events (type, at);
CREATE INDEX audit_events_at ON audit_events (at);
