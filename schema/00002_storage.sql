-- Storage for every CertDesk workflow (issue "Storage").
--
-- Conventions used throughout:
--   * Columns ending in _enc hold personal data encrypted by the application
--     (internal/pii: AES-256-GCM, key id inside the value, associated data
--     "table.column|row id" so a value cannot be moved to another column or
--     row). The database never sees those values in clear.
--   * Columns ending in _bidx are blind indexes (HMAC-SHA256 of the normalised
--     value under a separate key): equality lookups without clear text.
--   * Serials are lower-case hex of the integer, without leading zeros
--     (big.Int.Text(16)); the store normalises what callers pass.
--   * Ids are chosen by the caller (workflow business ids), so every insert an
--     activity makes can be retried with ON CONFLICT on the natural key.
--   * No personal data outside _enc columns: subscribers are referred to by id.

-- +goose Up

-- pii_key_id returns the key id inside a value written by internal/pii
-- (format: 0x01, key id length, key id, nonce, ciphertext), or NULL when the
-- value is NULL or not in that format. Key rotation uses it to find values
-- still under an old key; operators use it to prove none remain.
-- +goose StatementBegin
CREATE FUNCTION pii_key_id(v bytea) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE
        WHEN length(v) >= 2 AND get_byte(v, 0) = 1 AND length(v) >= 2 + get_byte(v, 1)
        THEN convert_from(substring(v FROM 3 FOR get_byte(v, 1)), 'UTF8')
    END
$$;
-- +goose StatementEnd

-- ───────────────────────────── resellers (指定事業者) ─────────────────────────────
-- A reseller authenticates with a bearer key; only its SHA-256 is kept (the
-- key is high-entropy, so a plain hash is enough and allows an indexed
-- lookup). api_key_prefix lets staff and the reseller tell keys apart.
CREATE TABLE resellers (
    id                text PRIMARY KEY CHECK (id ~ '^rs_[A-Za-z0-9_-]+$'),
    name              text NOT NULL CHECK (name <> ''),
    api_key_hash      text NOT NULL UNIQUE CHECK (api_key_hash ~ '^[0-9a-f]{64}$'),
    api_key_prefix    text NOT NULL,
    contact_email_enc bytea,
    created_at        timestamptz NOT NULL DEFAULT now(),
    disabled_at       timestamptz
);

-- ───────────────────────────── subscribers (加入者) ─────────────────────────────
CREATE TABLE subscribers (
    id               text PRIMARY KEY CHECK (id <> ''),
    reseller_id      text NOT NULL REFERENCES resellers (id),
    organization_enc bytea,
    name_enc         bytea NOT NULL,
    email_enc        bytea NOT NULL,
    phone_enc        bytea,
    address_enc      bytea,
    country          text NOT NULL DEFAULT '' CHECK (country = '' OR country ~ '^[A-Z]{2}$'),
    email_bidx       bytea NOT NULL CHECK (length(email_bidx) = 32),
    phone_bidx       bytea CHECK (length(phone_bidx) = 32),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscribers_reseller_idx ON subscribers (reseller_id);
CREATE INDEX subscribers_email_bidx_idx ON subscribers (email_bidx);
CREATE INDEX subscribers_phone_bidx_idx ON subscribers (phone_bidx) WHERE phone_bidx IS NOT NULL;

-- ───────────────────────────── applications (O1) ─────────────────────────────
-- The CSR is kept (BR §5.5: records of the request) but encrypted: a
-- client-sign CSR carries the subscriber's name and often an email address,
-- and OV CSRs carry whatever the applicant typed. Only the SPKI hash is plain,
-- for blocked-key checks.
CREATE TABLE applications (
    id                        text PRIMARY KEY CHECK (id <> ''),
    reseller_id               text NOT NULL REFERENCES resellers (id),
    subscriber_id             text NOT NULL REFERENCES subscribers (id),
    product                   text NOT NULL CHECK (product IN ('server-dv', 'server-ov', 'client-sign')),
    domains                   text[] NOT NULL DEFAULT '{}',
    csr_enc                   bytea NOT NULL,
    spki_sha256               bytea NOT NULL CHECK (length(spki_sha256) = 32),
    validity_days             integer NOT NULL CHECK (validity_days > 0),
    attestation_terms_version text NOT NULL CHECK (attestation_terms_version <> ''),
    -- O1: an application without the applicant's attestation is not accepted.
    attestation_truthful      boolean NOT NULL CHECK (attestation_truthful),
    attested_at               timestamptz NOT NULL,
    status                    text NOT NULL DEFAULT 'received' CHECK (status IN (
        'received', 'validating', 'verifying_identity', 'awaiting_review', 'issuing',
        'issued', 'rejected', 'withdrawn', 'expired', 'failed')),
    status_reason             text NOT NULL DEFAULT '',
    workflow_id               text NOT NULL DEFAULT '',
    verification_id           text,
    certificate_serial        text,
    due_at                    timestamptz,
    created_at                timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now(),
    CHECK (product = 'client-sign' OR cardinality(domains) > 0)
);
CREATE INDEX applications_reseller_idx ON applications (reseller_id, created_at);
CREATE INDEX applications_subscriber_idx ON applications (subscriber_id);
CREATE INDEX applications_open_due_idx ON applications (due_at)
    WHERE status IN ('received', 'validating', 'verifying_identity', 'awaiting_review', 'issuing');

-- ───────────────────────────── domain control validation ─────────────────────────────
CREATE TABLE domain_validations (
    application_id text NOT NULL REFERENCES applications (id),
    domain         text NOT NULL CHECK (domain <> ''),
    method         text NOT NULL CHECK (method IN ('http-01', 'dns-txt')),
    token          text NOT NULL CHECK (token <> ''),
    result         text NOT NULL DEFAULT 'pending' CHECK (result IN ('pending', 'valid', 'invalid')),
    detail         text NOT NULL DEFAULT '',
    validated_at   timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (application_id, domain)
);

-- ───────────────────────────── identity verification (実在性・権限の確認) ─────────────────────────────
CREATE TABLE identity_verifications (
    id           text PRIMARY KEY CHECK (id <> ''),
    subject_kind text NOT NULL CHECK (subject_kind IN ('application', 'disclosure', 'correction')),
    subject_ref  text NOT NULL,
    method       text NOT NULL CHECK (method IN ('email-otp', 'document', 'registry')),
    evidence_ref text NOT NULL DEFAULT '',
    result       text NOT NULL DEFAULT 'pending' CHECK (result IN ('pending', 'passed', 'failed')),
    decided_by   text NOT NULL DEFAULT '',
    decided_at   timestamptz,
    attempts     integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    locked       boolean NOT NULL DEFAULT false,
    workflow_id  text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX identity_verifications_subject_idx ON identity_verifications (subject_kind, subject_ref);
CREATE INDEX identity_verifications_pending_idx ON identity_verifications (created_at) WHERE result = 'pending';

-- ───────────────────────────── issuance reservation ─────────────────────────────
-- Reserved before signing: a retried signing activity finds the serial (and
-- notBefore = reserved_at) already chosen, so it signs the same TBS again and
-- never mints a second certificate for one application.
CREATE TABLE issuances (
    application_id text PRIMARY KEY REFERENCES applications (id),
    serial         text NOT NULL UNIQUE CHECK (serial ~ '^[1-9a-f][0-9a-f]{0,39}$'),
    reserved_at    timestamptz NOT NULL DEFAULT date_trunc('second', now())
);

-- ───────────────────────────── certificates ─────────────────────────────
-- der_enc: client-sign certificates name the subscriber, so every DER is
-- encrypted (one rule for all products rather than a per-product exception).
CREATE TABLE certificates (
    serial         text PRIMARY KEY CHECK (serial ~ '^[1-9a-f][0-9a-f]{0,39}$'),
    issuer         text NOT NULL CHECK (issuer <> ''),
    der_enc        bytea NOT NULL,
    not_before     timestamptz NOT NULL,
    not_after      timestamptz NOT NULL CHECK (not_after > not_before),
    spki_sha256    bytea NOT NULL CHECK (length(spki_sha256) = 32),
    status         text NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'revoked')),
    reseller_id    text NOT NULL REFERENCES resellers (id),
    subscriber_id  text NOT NULL REFERENCES subscribers (id),
    -- One certificate per application: the issuance idempotency anchor.
    application_id text NOT NULL UNIQUE REFERENCES applications (id),
    product        text NOT NULL CHECK (product IN ('server-dv', 'server-ov', 'client-sign')),
    crl_shard      integer NOT NULL DEFAULT 0 CHECK (crl_shard >= 0),
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX certificates_spki_idx ON certificates (spki_sha256);
CREATE INDEX certificates_reseller_idx ON certificates (reseller_id, serial);
CREATE INDEX certificates_subscriber_idx ON certificates (subscriber_id);
CREATE INDEX certificates_issuer_not_before_idx ON certificates (issuer, not_before);
CREATE INDEX certificates_revoked_shard_idx ON certificates (issuer, crl_shard) WHERE status = 'revoked';

-- A revoked certificate stays revoked (RFC 5280 §3.3: no certificateHold,
-- no un-revoking). Fires only for rows already revoked, so the bulk UPDATE of
-- a mass revocation pays nothing for it.
-- +goose StatementBegin
CREATE FUNCTION certificates_keep_revoked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status <> 'revoked' THEN
        RAISE EXCEPTION 'certificate % is revoked and cannot become %: a revoked certificate stays revoked; issue a new certificate through a new application', OLD.serial, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER certificates_keep_revoked BEFORE UPDATE ON certificates
    FOR EACH ROW WHEN (OLD.status = 'revoked') EXECUTE FUNCTION certificates_keep_revoked();

-- ───────────────────────────── revocations (取消) ─────────────────────────────
-- A row exists from the request on (revoked_at NULL while open) and gets
-- revoked_at when the certificate is revoked. Reason codes: BR §7.2.2.
CREATE TABLE revocations (
    serial            text PRIMARY KEY REFERENCES certificates (serial),
    reason_code       smallint NOT NULL CHECK (reason_code IN (0, 1, 3, 4, 5, 9)),
    requested_by_kind text NOT NULL CHECK (requested_by_kind IN ('reseller', 'subscriber', 'key-holder', 'staff', 'ca')),
    requested_by_ref  text NOT NULL DEFAULT '',
    requested_at      timestamptz NOT NULL DEFAULT now(),
    deadline          timestamptz,
    revoked_at        timestamptz,
    workflow_id       text NOT NULL DEFAULT ''
);
CREATE INDEX revocations_open_deadline_idx ON revocations (deadline) WHERE revoked_at IS NULL;

-- Once revoked, the revocation time never changes and the reason may only be
-- raised to keyCompromise (1), which the BR allows when compromise is learnt
-- later; anything else would weaken what relying parties were told.
-- +goose StatementBegin
CREATE FUNCTION revocations_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.revoked_at IS DISTINCT FROM OLD.revoked_at THEN
        RAISE EXCEPTION 'revocation of % happened at % and that time cannot change', OLD.serial, OLD.revoked_at
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.reason_code <> OLD.reason_code AND NEW.reason_code <> 1 THEN
        RAISE EXCEPTION 'revocation reason of % is % and may only be changed to keyCompromise (1), not %', OLD.serial, OLD.reason_code, NEW.reason_code
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER revocations_guard BEFORE UPDATE ON revocations
    FOR EACH ROW WHEN (OLD.revoked_at IS NOT NULL) EXECUTE FUNCTION revocations_guard();

-- ───────────────────────────── blocked keys (BR §6.1.1.3) ─────────────────────────────
CREATE TABLE blocked_keys (
    spki_sha256 bytea PRIMARY KEY CHECK (length(spki_sha256) = 32),
    reason      text NOT NULL,
    source      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- ───────────────────────────── corrections (訂正, O5) ─────────────────────────────
CREATE TABLE corrections (
    id                 text PRIMARY KEY CHECK (id <> ''),
    serial             text NOT NULL REFERENCES certificates (serial),
    reseller_id        text NOT NULL REFERENCES resellers (id),
    old_values_enc     bytea NOT NULL,
    new_values_enc     bytea NOT NULL,
    classification     text NOT NULL CHECK (classification IN ('contact', 'printed')),
    status             text NOT NULL DEFAULT 'received' CHECK (status IN ('received', 'applied', 'reissuing', 'completed', 'rejected', 'failed')),
    revocation_serial  text,
    new_application_id text REFERENCES applications (id),
    workflow_id        text NOT NULL DEFAULT '',
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX corrections_serial_idx ON corrections (serial);
CREATE INDEX corrections_reseller_idx ON corrections (reseller_id);
CREATE INDEX corrections_open_idx ON corrections (created_at) WHERE status IN ('received', 'reissuing');

-- ───────────────────────────── disclosure (開示, O6) ─────────────────────────────
CREATE TABLE disclosure_requests (
    id                 text PRIMARY KEY CHECK (id <> ''),
    email_bidx         bytea NOT NULL CHECK (length(email_bidx) = 32),
    name_enc           bytea,
    email_enc          bytea NOT NULL,
    postal_address_enc bytea,
    state              text NOT NULL DEFAULT 'received' CHECK (state IN (
        'received', 'verifying_identity', 'compiling', 'delivering', 'delivered', 'closed')),
    state_reason       text NOT NULL DEFAULT '',
    received_at        timestamptz NOT NULL DEFAULT now(),
    due_at             timestamptz NOT NULL,
    delivery_method    text NOT NULL DEFAULT 'electronic' CHECK (delivery_method IN ('electronic', 'paper')),
    verification_id    text,
    package_ref        text,
    link_token_hash    text UNIQUE CHECK (link_token_hash ~ '^[0-9a-f]{64}$'),
    link_expires_at    timestamptz,
    downloads_left     integer NOT NULL DEFAULT 0 CHECK (downloads_left >= 0),
    -- The O6 clock stops only while waiting for the requester, with the reason.
    paused_reason      text,
    paused_at          timestamptz,
    delivered_at       timestamptz,
    workflow_id        text NOT NULL DEFAULT '',
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (delivery_method = 'electronic' OR postal_address_enc IS NOT NULL),
    CHECK ((paused_reason IS NULL) = (paused_at IS NULL))
);
CREATE INDEX disclosure_requests_email_bidx_idx ON disclosure_requests (email_bidx);
CREATE INDEX disclosure_requests_open_due_idx ON disclosure_requests (due_at) WHERE state NOT IN ('delivered', 'closed');

-- The package is everything held about a person: both renderings are
-- encrypted. The detached CMS signature holds no personal data.
CREATE TABLE disclosure_packages (
    id            text PRIMARY KEY CHECK (id <> ''),
    request_id    text NOT NULL UNIQUE REFERENCES disclosure_requests (id),
    json_enc      bytea NOT NULL,
    html_enc      bytea NOT NULL,
    signature_der bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- ───────────────────────────── inquiries, complaints, stop requests (O9) ─────────────────────────────
CREATE TABLE inquiries (
    id           text PRIMARY KEY CHECK (id <> ''),
    kind         text NOT NULL CHECK (kind IN ('inquiry', 'complaint', 'stop_provision')),
    contact_enc  bytea NOT NULL,
    contact_bidx bytea CHECK (length(contact_bidx) = 32),
    body_enc     bytea NOT NULL,
    status       text NOT NULL DEFAULT 'received' CHECK (status IN ('received', 'in_progress', 'answered', 'closed')),
    answer_enc   bytea,
    due_at       timestamptz NOT NULL,
    answered_at  timestamptz,
    workflow_id  text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inquiries_contact_bidx_idx ON inquiries (contact_bidx) WHERE contact_bidx IS NOT NULL;
CREATE INDEX inquiries_open_due_idx ON inquiries (due_at) WHERE status IN ('received', 'in_progress');

-- ───────────────────────────── email log ─────────────────────────────
-- One row per (workflow id + notice) key, so a retried activity does not
-- send twice after a recorded success. recipient_ref is a subscriber id, a
-- blind index or a role, never an address; last_error is scrubbed of
-- addresses by the store.
CREATE TABLE email_log (
    idempotency_key text PRIMARY KEY CHECK (idempotency_key <> ''),
    notice          text NOT NULL,
    recipient_ref   text NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    message_id      text NOT NULL DEFAULT '',
    last_error      text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);
CREATE INDEX email_log_recipient_idx ON email_log (recipient_ref);
CREATE INDEX email_log_unsent_idx ON email_log (created_at) WHERE status <> 'sent';

-- ───────────────────────────── provision to third parties (第三者提供, O7) ─────────────────────────────
CREATE TABLE third_party_provisions (
    id             text PRIMARY KEY CHECK (id <> ''),
    provided_at    timestamptz NOT NULL,
    recipient_kind text NOT NULL CHECK (recipient_kind IN ('reseller', 'requester', 'authority', 'other')),
    recipient_ref  text NOT NULL CHECK (recipient_ref <> ''),
    person_ref     text NOT NULL CHECK (person_ref <> ''),
    data_items     text[] NOT NULL CHECK (cardinality(data_items) > 0),
    legal_basis    text NOT NULL CHECK (legal_basis <> ''),
    context_ref    text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX third_party_provisions_person_idx ON third_party_provisions (person_ref, provided_at);

-- ───────────────────────────── staff access to personal data (O8) ─────────────────────────────
CREATE TABLE staff_access_log (
    id          bigserial PRIMARY KEY,
    event_key   text UNIQUE,
    staff_id    text NOT NULL CHECK (staff_id <> ''),
    person_ref  text NOT NULL CHECK (person_ref <> ''),
    purpose     text NOT NULL CHECK (purpose <> ''),
    channel     text NOT NULL CHECK (channel <> ''),
    accessed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX staff_access_log_person_idx ON staff_access_log (person_ref, accessed_at);

-- Records of provision and of staff access are evidence: never edited, and
-- kept at least three years (APPI Art. 29/30 and its enforcement rules).
-- TRUNCATE bypasses row triggers, so it is refused separately.
-- +goose StatementBegin
CREATE FUNCTION retained_record_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    at timestamptz;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION '% is an append-only record: rows cannot be updated; record a new row instead', TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    ELSIF TG_OP = 'TRUNCATE' THEN
        RAISE EXCEPTION '% cannot be truncated: its rows must be kept at least 3 years (APPI Art. 29/30)', TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_TABLE_NAME = 'third_party_provisions' THEN
        at := OLD.provided_at;
    ELSE
        at := OLD.accessed_at;
    END IF;
    IF at > now() - interval '3 years' THEN
        RAISE EXCEPTION '% row % is from % and must be kept until %: records are kept at least 3 years (APPI Art. 29/30)',
            TG_TABLE_NAME, OLD.id, at, at + interval '3 years'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN OLD;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER third_party_provisions_guard BEFORE UPDATE OR DELETE ON third_party_provisions
    FOR EACH ROW EXECUTE FUNCTION retained_record_guard();
CREATE TRIGGER third_party_provisions_no_truncate BEFORE TRUNCATE ON third_party_provisions
    FOR EACH STATEMENT EXECUTE FUNCTION retained_record_guard();
CREATE TRIGGER staff_access_log_guard BEFORE UPDATE OR DELETE ON staff_access_log
    FOR EACH ROW EXECUTE FUNCTION retained_record_guard();
CREATE TRIGGER staff_access_log_no_truncate BEFORE TRUNCATE ON staff_access_log
    FOR EACH STATEMENT EXECUTE FUNCTION retained_record_guard();

-- ───────────────────────────── audit chain (O8) ─────────────────────────────
-- hash = SHA-256(prev_hash || canonical JSON of the row), computed by
-- internal/store under an advisory lock; details never hold personal data.
CREATE TABLE audit_events (
    seq        bigserial PRIMARY KEY,
    event_key  text UNIQUE,
    at         timestamptz NOT NULL,
    actor      text NOT NULL,
    action     text NOT NULL,
    object_ref text NOT NULL DEFAULT '',
    details    jsonb NOT NULL DEFAULT '{}',
    prev_hash  bytea NOT NULL CHECK (length(prev_hash) = 32),
    hash       bytea NOT NULL CHECK (length(hash) = 32)
);

-- +goose StatementBegin
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % is refused; correct a mistake by appending a new event', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

-- ───────────────────────────── CRL and OCSP (O14) ─────────────────────────────
-- last_number is the CRLNumber allocator; number/der are the latest CRL
-- published for the shard (a late retry never replaces a newer one).
CREATE TABLE crl_state (
    issuer      text NOT NULL CHECK (issuer <> ''),
    shard       integer NOT NULL CHECK (shard >= 0),
    last_number bigint NOT NULL DEFAULT 0,
    number      bigint,
    this_update timestamptz,
    next_update timestamptz,
    der         bytea,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (issuer, shard),
    CHECK (number IS NULL OR number <= last_number)
);

-- Pre-signed OCSP responses. Only issued serials can have one (the foreign
-- key), so the responder never says "good" for a serial it did not issue.
CREATE TABLE ocsp_responses (
    serial      text PRIMARY KEY REFERENCES certificates (serial),
    der         bytea NOT NULL,
    status      text NOT NULL CHECK (status IN ('good', 'revoked')),
    produced_at timestamptz NOT NULL,
    this_update timestamptz NOT NULL,
    next_update timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ocsp_responses_next_update_idx ON ocsp_responses (next_update);

-- +goose Down
DROP TABLE ocsp_responses;
DROP TABLE crl_state;
DROP TABLE audit_events;
DROP FUNCTION audit_events_append_only();
DROP TABLE staff_access_log;
DROP TABLE third_party_provisions;
DROP FUNCTION retained_record_guard();
DROP TABLE email_log;
DROP TABLE inquiries;
DROP TABLE disclosure_packages;
DROP TABLE disclosure_requests;
DROP TABLE corrections;
DROP TABLE blocked_keys;
DROP TABLE revocations;
DROP FUNCTION revocations_guard();
DROP TABLE certificates;
DROP FUNCTION certificates_keep_revoked();
DROP TABLE issuances;
DROP TABLE identity_verifications;
DROP TABLE domain_validations;
DROP TABLE applications;
DROP TABLE subscribers;
DROP TABLE resellers;
DROP FUNCTION pii_key_id(bytea);
