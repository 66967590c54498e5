-- +goose Up
-- One-time codes and mailbox Random Values of identity verifications,
-- kept only as keyed digests (internal/challenge: HMAC under a key derived
-- from the blind index key), never in clear and never in workflow history.
-- attempt numbers the values sent for one verification (1 today). matched_at
-- is when a submitted value matched; the workflow counts the attempts.
CREATE TABLE verification_challenges (
    verification_id text NOT NULL CHECK (verification_id <> ''),
    attempt         integer NOT NULL CHECK (attempt > 0),
    kind            text NOT NULL CHECK (kind IN ('code', 'mailbox')),
    value_digest    text NOT NULL CHECK (value_digest ~ '^[0-9a-f]{64}$'),
    expires_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    matched_at      timestamptz,
    PRIMARY KEY (verification_id, attempt)
);

-- +goose Down
DROP TABLE verification_challenges;
