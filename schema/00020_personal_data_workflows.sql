-- Personal-data workflows (issue "Personal-data workflows"): disclosure
-- package drafts and the register of requests to stop provision to third
-- parties.

-- +goose Up

-- A disclosure package is compiled on the "certdesk" queue and signed on the
-- signing queue. The draft carries the compiled JSON and HTML from one to the
-- other without putting everything held about a person into workflow
-- history; the signer checks the digest the workflow holds, signs, saves the
-- package (disclosure_packages) and deletes the draft. Insert-once: a retried
-- compilation keeps the first draft, so the digest does not move.
CREATE TABLE disclosure_drafts (
    request_id text PRIMARY KEY REFERENCES disclosure_requests (id),
    json_enc   bytea NOT NULL,
    html_enc   bytea NOT NULL,
    sha256     text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Requests to stop provision to third parties (O9, APPI Art. 35). Not rows of
-- third_party_provisions: that ledger records provisions that happened (O7)
-- and is disclosed as such; a stop request is a decision about future
-- provisions. The person is found through the inquiry's contact blind index
-- (inquiries.contact_bidx). status: requested on receipt (no effect yet:
-- anyone can write in), then stopped or refused when staff answer.
CREATE TABLE provision_stops (
    inquiry_id   text PRIMARY KEY REFERENCES inquiries (id),
    status       text NOT NULL DEFAULT 'requested' CHECK (status IN ('requested', 'stopped', 'refused')),
    decided_by   text NOT NULL DEFAULT '',
    requested_at timestamptz NOT NULL DEFAULT now(),
    decided_at   timestamptz,
    CHECK ((status = 'requested') = (decided_at IS NULL))
);
CREATE INDEX provision_stops_stopped_idx ON provision_stops (inquiry_id) WHERE status = 'stopped';

-- The policy notice walks subscribers by email blind index (one notice per
-- address, whatever the number of subscriber records) among those with a
-- valid certificate.
CREATE INDEX certificates_valid_subscriber_idx ON certificates (subscriber_id, not_after) WHERE status = 'valid';

-- +goose Down
DROP INDEX certificates_valid_subscriber_idx;
DROP TABLE provision_stops;
DROP TABLE disclosure_drafts;
