-- +goose Up
-- ARI (RFC 9773) renewal windows and the
-- newOrder "replaces" field.

-- An overridden ARI suggested window for a certificate (serial in the
-- lower-case hex of store.NormalizeSerial). Without a row the window is the
-- last third of the certificate's validity; a mass revocation moves it to
-- "now" so clients renew before the revocation lands.
CREATE TABLE acme_renewal_windows (
    serial       text PRIMARY KEY CHECK (serial ~ '^[0-9a-f]+$'),
    window_start timestamptz NOT NULL,
    window_end   timestamptz NOT NULL CHECK (window_end > window_start),
    set_at       timestamptz NOT NULL DEFAULT now()
);

-- The certificate (serial, hex) an order replaces (RFC 9773 §5). At most
-- one order that has not failed replaces a certificate.
ALTER TABLE acme_orders ADD COLUMN replaces text NOT NULL DEFAULT '';
CREATE UNIQUE INDEX acme_orders_replaces ON acme_orders (replaces)
    WHERE replaces <> '' AND status <> 'invalid';

-- +goose Down
DROP INDEX acme_orders_replaces;
ALTER TABLE acme_orders DROP COLUMN replaces;
DROP TABLE acme_renewal_windows;
