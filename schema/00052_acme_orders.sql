-- +goose Up
-- ACME orders, authorizations and challenges (RFC 8555 §7.1.3–7.1.5). Rows
-- carry account_id so every read filters on the account: another account's
-- order is not found. backend_ref is what the Orders backend returned for
-- the order (an application id once orders run as Application workflows).
CREATE TABLE acme_orders (
    id           text PRIMARY KEY CHECK (id ~ '^ord_[A-Za-z0-9_-]+$'),
    account_id   text NOT NULL REFERENCES acme_accounts (id),
    status       text NOT NULL CHECK (status IN ('pending', 'ready', 'processing', 'valid', 'invalid')),
    profile      text NOT NULL,
    identifiers  jsonb NOT NULL,
    expires_at   timestamptz NOT NULL,
    backend_ref  text NOT NULL DEFAULT '',
    cert_pem     text NOT NULL DEFAULT '',
    cert_serial  text NOT NULL DEFAULT '',
    error        jsonb,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX acme_orders_by_account ON acme_orders (account_id);

CREATE TABLE acme_authorizations (
    id          text PRIMARY KEY CHECK (id ~ '^authz_[A-Za-z0-9_-]+$'),
    order_id    text NOT NULL REFERENCES acme_orders (id),
    account_id  text NOT NULL REFERENCES acme_accounts (id),
    id_type     text NOT NULL CHECK (id_type = 'dns'),
    id_value    text NOT NULL CHECK (id_value <> ''),
    wildcard    boolean NOT NULL DEFAULT false,
    status      text NOT NULL CHECK (status IN ('pending', 'valid', 'invalid', 'deactivated', 'expired', 'revoked')),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX acme_authz_by_order ON acme_authorizations (order_id);

-- token is public (it is in the challenge object); the key authorization
-- is derived from it and the account key, so nothing here is secret.
CREATE TABLE acme_challenges (
    id           text PRIMARY KEY CHECK (id ~ '^chall_[A-Za-z0-9_-]+$'),
    authz_id     text NOT NULL REFERENCES acme_authorizations (id),
    type         text NOT NULL CHECK (type IN ('http-01', 'dns-01')),
    token        text NOT NULL CHECK (token ~ '^[A-Za-z0-9_-]{22,}$'),
    status       text NOT NULL CHECK (status IN ('pending', 'processing', 'valid', 'invalid')),
    validated_at timestamptz,
    error        jsonb
);
CREATE INDEX acme_chall_by_authz ON acme_challenges (authz_id);

-- Certificates issued through ACME, by serial (hex), for revocation.
CREATE INDEX acme_orders_by_serial ON acme_orders (cert_serial) WHERE cert_serial <> '';

-- +goose Down
DROP TABLE acme_challenges;
DROP TABLE acme_authorizations;
DROP TABLE acme_orders;
