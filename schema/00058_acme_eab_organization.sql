-- +goose Up
-- An EAB credential may be bound to an organisation CertDesk has verified
-- already (issue 16: OV through ACME): the reseller's earlier server-ov
-- application whose identity verification passed and whose certificate was
-- issued. Its certificate's subject (O, L, ST, C) is what the ACME account's
-- OV orders carry; each such order still waits for staff review.
ALTER TABLE acme_eab_credentials
    ADD COLUMN organization_application_id text REFERENCES applications (id);

-- +goose Down
ALTER TABLE acme_eab_credentials DROP COLUMN organization_application_id;
