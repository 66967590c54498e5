package httpapi

import (
	"context"
	"net/netip"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"certdesk/internal/challenge"
	"certdesk/internal/config"
	"certdesk/internal/store"
)

// Store is the part of the repository the HTTP API reads and writes: the
// methods of *store.Store the handlers call, and nothing else, so what the
// API can touch is visible here and a test can stand in for any of it.
type Store interface {
	// Authentication and Idempotency-Key.
	ResellerByKeyHash(ctx context.Context, hash string) (store.Reseller, error)
	ReserveIdempotencyKey(ctx context.Context, scope, key string, hash []byte, ttl, lease time.Duration) (store.IdempotencyRecord, bool, error)
	CompleteIdempotencyKey(ctx context.Context, scope, key string, reservedAt time.Time, status int, contentType, location string, body []byte) error
	ReleaseIdempotencyKey(ctx context.Context, scope, key string, reservedAt time.Time) error
	PurgeIdempotencyKeys(ctx context.Context, age time.Duration) (int64, error)

	// Applications and certificates of the calling reseller.
	GetApplicationForReseller(ctx context.Context, id, resellerID string) (store.Application, error)
	ListDomainValidations(ctx context.Context, applicationID string) ([]store.DomainValidation, error)
	GetCertificateForReseller(ctx context.Context, serial, resellerID string) (store.Certificate, error)
	ListSCTs(ctx context.Context, serial string) ([]store.SCT, error)
	GetCertificate(ctx context.Context, serial string) (store.Certificate, error)
	GetCertificateRef(ctx context.Context, serial string) (store.CertificateRef, error)
	IsKeyBlocked(ctx context.Context, spkiSHA256 []byte) (store.BlockedKey, bool, error)

	// Key compromise reported by proof of possession alone.
	BlockKey(ctx context.Context, spkiSHA256 []byte, reason, source string) error
	ListCertificatesBySPKI(ctx context.Context, spkiSHA256 []byte) ([]store.CertificateRef, error)

	// ACME External Account Binding credentials of the calling reseller.
	CreateEABCredentialWith(ctx context.Context, resellerID string, opt store.EABOptions) (store.EABCredential, error)
	GetEABCredential(ctx context.Context, kid string) (store.EABCredential, error)
	RevokeEABCredential(ctx context.Context, resellerID, kid string) (store.EABCredential, error)

	// The personal-data ledgers (O3, O7, O8): no record, no data.
	RecordProvision(ctx context.Context, p store.Provision) error
	RecordStaffAccess(ctx context.Context, a store.StaffAccess) error

	// The keyed digest of a submitted one-time value (the submit-code
	// Update carries it instead of the value).
	ChallengeDigest(verificationID string, kind challenge.Kind, value string) (string, error)

	// Disclosure downloads (O6), and the compiled draft staff check first.
	ConsumeDisclosureDownload(ctx context.Context, token string, now time.Time) (store.DisclosurePackage, error)
	GetDisclosureDraft(ctx context.Context, requestID string) (store.DisclosureDraft, error)

	// The CA repository: CRLs and pre-signed OCSP responses.
	LatestCRL(ctx context.Context, issuer string, shard int) (store.CRL, error)
	GetOCSPForIssuer(ctx context.Context, issuer, serial string) (store.OCSPForIssuer, error)
	GetOCSPForIssuerBatch(ctx context.Context, issuer string, serials []string) (map[string]store.OCSPForIssuer, error)
}

// Temporal is the part of the Temporal client the HTTP API uses: it starts,
// signals, queries and updates cases, and checks the frontend for /readyz.
// client.Client satisfies it.
type Temporal interface {
	ExecuteWorkflow(ctx context.Context, options client.StartWorkflowOptions, workflow any, args ...any) (client.WorkflowRun, error)
	SignalWithStartWorkflow(ctx context.Context, workflowID, signalName string, signalArg any, options client.StartWorkflowOptions, workflow any, workflowArgs ...any) (client.WorkflowRun, error)
	SignalWorkflow(ctx context.Context, workflowID, runID, signalName string, arg any) error
	DescribeWorkflow(ctx context.Context, workflowID, runID string) (*client.WorkflowExecutionDescription, error)
	QueryWorkflow(ctx context.Context, workflowID, runID, queryType string, args ...any) (converter.EncodedValue, error)
	UpdateWorkflow(ctx context.Context, options client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error)
	GetWorkflow(ctx context.Context, workflowID, runID string) client.WorkflowRun
	CheckHealth(ctx context.Context, request *client.CheckHealthRequest) (*client.CheckHealthResponse, error)
}

// Pinger is the database as /readyz sees it; *sqlx.DB and *sql.DB satisfy it.
type Pinger interface {
	PingContext(ctx context.Context) error
}

// PayloadCodec encrypts and decrypts Temporal payloads for the /codec
// endpoints; *codec.Codec satisfies it.
type PayloadCodec interface {
	Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error)
	Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error)
}

// Config holds the configuration values the HTTP API reads.
type Config struct {
	// CADir holds the CA manifest (ca.json) and certificates served under
	// /repository/ca and used to answer OCSP; empty serves neither.
	CADir string
	// StaffToken admits staff to /codec (at least 16 characters, else the
	// codec endpoints are disabled).
	StaffToken string
	// PublicBaseURL is where clients reach this server (the sign-in form
	// names it; an https:// one makes the session cookie Secure).
	PublicBaseURL string
	// TemporalUIURL is the Temporal Web UI, the only origin CORS admits.
	TemporalUIURL string
	// TemporalNamespace is recorded in the staff access log for decodes
	// that do not name one.
	TemporalNamespace string
	// TrustedProxies are the reverse proxies in front of the server: from
	// a peer in one of them the client address is read from
	// X-Forwarded-For (see clientIPFrom); empty trusts no proxy and the
	// header is ignored.
	TrustedProxies []netip.Prefix
	// WithoutCT starts TLS applications that skip Certificate
	// Transparency (config.CTDisabled: benchmark comparison only).
	WithoutCT bool
}

// ConfigFrom takes the HTTP API's values out of the process configuration.
func ConfigFrom(c *config.Config) Config {
	return Config{
		CADir: c.CADir, StaffToken: c.StaffToken, PublicBaseURL: c.PublicBaseURL,
		TemporalUIURL: c.TemporalUIURL, TemporalNamespace: c.TemporalNamespace,
		TrustedProxies: c.TrustedProxies, WithoutCT: c.CTDisabled,
	}
}
