-- +goose Up
-- Multi-Perspective Issuance Corroboration (BR §3.2.2.9): every round of a
-- domain validation or CAA check repeated from the remote network
-- perspectives, with each perspective's determination and the verdict.
-- One row per (application, domain, check, round); a retried activity
-- writes the same row once. Domain names and perspective names only: no
-- personal data.
CREATE TABLE corroborations (
    application_id  text NOT NULL REFERENCES applications (id),
    domain          text NOT NULL CHECK (domain <> ''),
    check_type      text NOT NULL CHECK (check_type IN ('dcv', 'caa')),
    round           integer NOT NULL CHECK (round > 0),
    primary_outcome text NOT NULL,
    ok              boolean NOT NULL,
    reason          text NOT NULL,
    determinations  jsonb NOT NULL,
    decision        jsonb NOT NULL,
    decided_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (application_id, domain, check_type, round)
);

-- +goose Down
DROP TABLE corroborations;
