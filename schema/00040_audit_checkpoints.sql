-- +goose Up
-- Signed checkpoints of the audit chain head (O8). The signature is made by
-- the signing worker with a key kept with the CA keys, never in this
-- database, so the table's owner can delete checkpoints but cannot forge
-- one: worker verify-audit checks each signature with the public key from
-- the CA directory, which also keeps a copy of the newest checkpoint.
CREATE TABLE audit_checkpoints (
    number    bigint PRIMARY KEY CHECK (number > 0),
    seq       bigint NOT NULL UNIQUE,
    hash      bytea NOT NULL CHECK (length(hash) = 32),
    count     bigint NOT NULL CHECK (count >= 0),
    signed_at timestamptz NOT NULL,
    key_id    text NOT NULL,
    signature bytea NOT NULL
);

-- +goose StatementBegin
CREATE FUNCTION audit_checkpoints_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_checkpoints is append-only: % is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_checkpoints_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_checkpoints_append_only();

-- +goose Down
DROP TABLE audit_checkpoints;
DROP FUNCTION audit_checkpoints_append_only();
