-- +goose Up
-- An ACME order is an application from newOrder on (issue 16): it is
-- recorded, and its domains validated, before the client sends the CSR at
-- finalize. Such an application names its ACME order and has no CSR (nor
-- key digest) until then; it cannot reach signing without one.
ALTER TABLE applications
    ADD COLUMN acme_order_id text,
    ALTER COLUMN csr_enc DROP NOT NULL,
    ALTER COLUMN spki_sha256 DROP NOT NULL,
    ADD CONSTRAINT applications_csr_present CHECK (
        (csr_enc IS NOT NULL AND spki_sha256 IS NOT NULL)
        OR (acme_order_id IS NOT NULL AND status NOT IN ('issuing', 'issued')));
CREATE UNIQUE INDEX applications_acme_order_idx ON applications (acme_order_id) WHERE acme_order_id IS NOT NULL;

-- Its domains are validated by the ACME challenges (the token column then
-- holds the key authorization, public by RFC 8555 §8.1).
ALTER TABLE domain_validations DROP CONSTRAINT domain_validations_method_check,
    ADD CONSTRAINT domain_validations_method_check CHECK (method IN ('http-01', 'dns-txt', 'acme-http-01', 'acme-dns-01'));

-- +goose Down
DELETE FROM domain_validations WHERE method LIKE 'acme-%';
ALTER TABLE domain_validations DROP CONSTRAINT domain_validations_method_check,
    ADD CONSTRAINT domain_validations_method_check CHECK (method IN ('http-01', 'dns-txt'));
DROP INDEX applications_acme_order_idx;
ALTER TABLE applications DROP CONSTRAINT applications_csr_present;
DELETE FROM applications WHERE csr_enc IS NULL;
ALTER TABLE applications
    ALTER COLUMN spki_sha256 SET NOT NULL,
    ALTER COLUMN csr_enc SET NOT NULL,
    DROP COLUMN acme_order_id;
