-- +goose Up
-- Certificate Transparency (RFC 6962). A TLS certificate is first signed as
-- a precertificate: its row is written then (ct_state 'precert', der_enc
-- and precert_der_enc both the precertificate), so the serial answers OCSP
-- and can be revoked from that moment (a precertificate is evidence of
-- issuance). The final certificate replaces der_enc (ct_state 'final'); the
-- precertificate stays in precert_der_enc. Certificates outside CT (client
-- products, earlier issuance) stay 'none' without a precertificate.
ALTER TABLE certificates
    ADD COLUMN precert_der_enc bytea,
    ADD COLUMN ct_state text NOT NULL DEFAULT 'none' CHECK (ct_state IN ('none', 'precert', 'final')),
    ADD CONSTRAINT certificates_ct_precert CHECK ((ct_state = 'none') = (precert_der_enc IS NULL));

-- The SCTs each log returned for a precertificate, verified against the
-- log's key before they were written: one per log, so a retried submission
-- asks only the logs still missing. Not personal data.
CREATE TABLE certificate_scts (
    serial        text NOT NULL REFERENCES certificates (serial),
    log_id        bytea NOT NULL CHECK (length(log_id) = 32),
    sct_timestamp timestamptz NOT NULL,
    raw           bytea NOT NULL CHECK (length(raw) > 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (serial, log_id)
);

-- +goose Down
DROP TABLE certificate_scts;
ALTER TABLE certificates DROP CONSTRAINT certificates_ct_precert, DROP COLUMN ct_state, DROP COLUMN precert_der_enc;
