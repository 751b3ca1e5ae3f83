-- Each binding of an openid to a user gets a random number, which the sessions it signs in
-- keep: a session of an identity is good while the identity's row carries the same number, so
-- unbinding ends all its sessions at once (on every node, with no index of them), and binding
-- the openid again does not bring them back. Rows bound before this migration have none, and
-- neither have their sessions.
ALTER TABLE identities ADD COLUMN binding BIGINT;
