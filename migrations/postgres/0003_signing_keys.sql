-- The keys that sign access tokens (ES256), shared by every node. `private_key` is the PKCS#8
-- DER of the key, sealed with WXLOGIN_SEALING_KEYS where set, in base64; `public_jwk` is what
-- the JWKS publishes. A key is published from `created_at` and signs from `signs_from` (later by
-- WXLOGIN_KEY_PUBLISH_DELAY, so that verifiers have fetched it before they meet it); the newest
-- key that signs is the one used, and an older one stays published until the last token it
-- signed has expired.
CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    private_key TEXT NOT NULL,
    public_jwk  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    signs_from  BIGINT NOT NULL
);
