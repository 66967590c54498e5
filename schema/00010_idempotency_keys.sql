-- +goose Up
-- Idempotency-Key handling of the starter's POST endpoints (DESIGN "Starter
-- HTTP API"). A key is scoped to its reseller ("reseller:rs_…") or, on public
-- endpoints, to the client address ("ip:…"). request_hash is SHA-256 of the
-- method, route and body: the same key with another request is refused.
-- Only successful answers are stored (status 2xx, JSON without personal
-- data); a reservation whose request failed is deleted so the client can
-- retry. Rows expire after 24 hours (the starter purges them).
CREATE TABLE idempotency_keys (
    scope          text NOT NULL CHECK (scope <> ''),
    key            text NOT NULL CHECK (key <> '' AND length(key) <= 255),
    request_hash   bytea NOT NULL CHECK (length(request_hash) = 32),
    status         integer CHECK (status BETWEEN 100 AND 599),
    response_body  bytea,
    content_type   text NOT NULL DEFAULT '',
    location       text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    completed_at   timestamptz,
    PRIMARY KEY (scope, key),
    CHECK ((status IS NULL) = (completed_at IS NULL))
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

-- +goose Down
DROP TABLE idempotency_keys;
