-- +goose Up
-- system_checks records each end-to-end system check (workflow → database →
-- email) so operators can prove a fresh stack works. No personal data.
CREATE TABLE system_checks (
    check_id    text PRIMARY KEY,
    workflow_id text NOT NULL,
    note        text NOT NULL DEFAULT '',
    recorded_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE system_checks;
