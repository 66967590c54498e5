-- +goose Up
-- ACME (RFC 8555) server state. Everything a client can notice lives here,
-- not in a process, so nonces and accounts survive a restart and work with
-- two starter processes behind one address.

-- Replay-Nonce values handed out and not yet used. A nonce is consumed by
-- deleting its row: the DELETE that finds it is the one use.
CREATE TABLE acme_nonces (
    nonce      text PRIMARY KEY CHECK (nonce ~ '^[A-Za-z0-9_-]{16,}$'),
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX acme_nonces_expires ON acme_nonces (expires_at);

-- External Account Binding credentials (RFC 8555 §7.3.4) a reseller makes
-- for one customer. The HMAC key is sealed (internal/pii) with associated
-- data "acme_eab_credentials.hmac_key_enc|<kid>". used_at and account_id are
-- set once, by the newAccount that spends the credential.
CREATE TABLE acme_eab_credentials (
    kid           text PRIMARY KEY CHECK (kid ~ '^eab_[A-Za-z0-9_-]+$'),
    reseller_id   text NOT NULL REFERENCES resellers (id),
    hmac_key_enc  bytea NOT NULL,
    products      text[] NOT NULL DEFAULT '{}',
    reference     text NOT NULL DEFAULT '',
    expires_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    used_at       timestamptz,
    account_id    text,
    revoked_at    timestamptz
);
CREATE INDEX acme_eab_by_reseller ON acme_eab_credentials (reseller_id);

-- ACME accounts. jwk is the account's public key as JSON (public, not
-- personal data); thumbprint is its RFC 7638 SHA-256 thumbprint, base64url,
-- unique so one key names one account.
CREATE TABLE acme_accounts (
    id           text PRIMARY KEY CHECK (id ~ '^acct_[A-Za-z0-9_-]+$'),
    thumbprint   text NOT NULL UNIQUE,
    jwk          jsonb NOT NULL,
    status       text NOT NULL CHECK (status IN ('valid', 'deactivated', 'revoked')),
    reseller_id  text NOT NULL REFERENCES resellers (id),
    eab_kid      text NOT NULL UNIQUE REFERENCES acme_eab_credentials (kid),
    contact_enc  bytea,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE acme_accounts;
DROP TABLE acme_eab_credentials;
DROP TABLE acme_nonces;
