-- +goose Up
-- Disclosure matching needs more than the email address (issue 17): the
-- requester gives the name and the phone number they gave when applying,
-- and only subscriber records whose name and phone number both match are
-- disclosed. The phone number is personal data: sealed like the other
-- columns (phone_enc, AAD table/column/id) with a blind index (HMAC, purpose
-- "phone", digits only) for lookups; never in plain text. Requests from
-- before this migration have neither.
ALTER TABLE disclosure_requests
    ADD COLUMN phone_enc  bytea,
    ADD COLUMN phone_bidx bytea CHECK (phone_bidx IS NULL OR length(phone_bidx) = 32);

-- +goose Down
ALTER TABLE disclosure_requests DROP COLUMN phone_bidx, DROP COLUMN phone_enc;
