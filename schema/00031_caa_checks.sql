-- +goose Up
-- CAA checks (BR §3.2.2.8, RFC 8659/8657/9495): one row per application,
-- name and check, with the decision, the rule and record behind it and the
-- DNS evidence (queries, answers, DNSSEC status, resolver, time). issue_by
-- is when the check stops covering issuance (at least 8 hours); the signer
-- refuses a name whose newest check is not permitting or is past issue_by.
CREATE TABLE caa_checks (
    application_id text NOT NULL REFERENCES applications (id),
    name           text NOT NULL CHECK (name <> ''),
    check_id       text NOT NULL CHECK (check_id <> ''),
    permitted      boolean NOT NULL,
    rule           text NOT NULL,
    reason         text NOT NULL,
    record         text NOT NULL DEFAULT '',
    evidence       jsonb NOT NULL,
    checked_at     timestamptz NOT NULL,
    issue_by       timestamptz NOT NULL,
    PRIMARY KEY (application_id, name, check_id)
);

-- +goose Down
DROP TABLE caa_checks;
