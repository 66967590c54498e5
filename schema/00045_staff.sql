-- +goose Up
-- Personal staff credentials (issue 17): who may decode workflow payloads
-- through the starter's /codec endpoints and whose name a staff decision
-- Update may carry. The bearer token is kept only as a keyed digest (HMAC
-- under the blind index key, purpose "staff-token"), so a copy of this table
-- authenticates nobody. No email: staff notices go to the staff mailbox.
-- Ids are what the access log and decisions carry (`st_…` by convention;
-- the same characters the access log admits).
CREATE TABLE staff (
    id           text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9._@-]{1,64}$'),
    display_name text NOT NULL CHECK (display_name <> ''),
    token_digest text NOT NULL UNIQUE CHECK (token_digest ~ '^[0-9a-f]{64}$'),
    token_prefix text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    disabled_at  timestamptz
);

-- +goose Down
DROP TABLE staff;
