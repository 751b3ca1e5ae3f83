-- Users are the business's accounts; identities are the WeChat openids that sign in to them.
-- (appid, openid) is unique so that one openid can never belong to two users, and a user has at
-- most one identity per app. Times are Unix seconds, the same on both backends.
CREATE TABLE users (
    id                TEXT PRIMARY KEY,
    username          TEXT,
    username_key      TEXT UNIQUE,          -- lower-cased username: unique without regard to case
    password_hash     TEXT,                 -- argon2id PHC string, never the password
    nickname          TEXT,
    avatar_url        TEXT,
    phone_number      TEXT,
    pure_phone_number TEXT,
    country_code      TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);

-- One phone number belongs to one user.
CREATE UNIQUE INDEX users_phone ON users (country_code, pure_phone_number);

CREATE TABLE identities (
    provider   TEXT NOT NULL,               -- miniprogram | website | official_account
    appid      TEXT NOT NULL,
    openid     TEXT NOT NULL,
    unionid    TEXT,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (appid, openid),
    UNIQUE (user_id, appid)
);

CREATE INDEX identities_unionid ON identities (unionid);
