-- +goose Up
-- A mass revocation pages through the certificates it revoked, in serial
-- order, to send notices (store.ListRevocationsByWorkflow).
CREATE INDEX revocations_workflow_idx ON revocations (workflow_id, serial) WHERE revoked_at IS NOT NULL;

-- +goose Down
DROP INDEX revocations_workflow_idx;
