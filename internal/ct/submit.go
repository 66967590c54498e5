package ct

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	ctgo "github.com/google/certificate-transparency-go"
	"github.com/google/certificate-transparency-go/client"
	"github.com/google/certificate-transparency-go/ctutil"
	"github.com/google/certificate-transparency-go/jsonclient"
	"github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
)

// SCT is a verified signed certificate timestamp, in the form stored and
// embedded: its TLS encoding (RFC 6962 §3.2), plus the log it came from.
// JSON-friendly (an activity result).
type SCT struct {
	LogID [sha256.Size]byte `json:"log_id"`
	// Timestamp is the SCT's, in milliseconds since the epoch.
	Timestamp uint64 `json:"timestamp"`
	// Raw is the TLS-encoded SignedCertificateTimestamp.
	Raw []byte `json:"raw"`
}

// Time is the SCT's timestamp.
func (s SCT) Time() time.Time { return time.UnixMilli(int64(s.Timestamp)).UTC() }

// Parse decodes Raw.
func (s SCT) Parse() (*ctgo.SignedCertificateTimestamp, error) {
	var out ctgo.SignedCertificateTimestamp
	rest, err := tls.Unmarshal(s.Raw, &out)
	if err != nil {
		return nil, fmt.Errorf("SCT: %w", err)
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("SCT: %d trailing bytes", len(rest))
	}
	return &out, nil
}

// Submitter submits precertificates to logs.
type Submitter struct {
	// HTTP is the client; nil means http.DefaultClient.
	HTTP *http.Client
	// Timeout bounds one submission including the client's retries on 429,
	// 503 and connection errors (certificate-transparency-go retries those
	// until its context ends); 0 means 30 s. A log that is down thus costs
	// this long, not the caller's whole deadline.
	Timeout time.Duration
	// UserAgent is sent with each request.
	UserAgent string
}

// Submit sends the precertificate chain (chain[0] the precertificate, DER,
// chain[1] its issuer, then any further intermediates) to the log's
// add-pre-chain and returns the SCT once its signature verifies against the
// log's public key over the precertificate entry (the issuer key hash and
// the TBS without poison), as certificate-transparency-go's ctutil.VerifySCT
// rebuilds it. An SCT that does not verify is an error, never returned.
func (s *Submitter) Submit(ctx context.Context, log *Log, chain [][]byte) (SCT, error) {
	if len(chain) < 2 {
		return SCT{}, errors.New("CT submission: the chain needs the precertificate and its issuer")
	}
	parsed := make([]*ctx509.Certificate, len(chain))
	asn1Chain := make([]ctgo.ASN1Cert, len(chain))
	for i, der := range chain {
		c, err := ctx509.ParseCertificate(der)
		if ctx509.IsFatal(err) {
			return SCT{}, fmt.Errorf("CT submission: chain[%d]: %w", i, err)
		}
		parsed[i] = c
		asn1Chain[i] = ctgo.ASN1Cert{Data: der}
	}
	if !parsed[0].IsPrecertificate() {
		return SCT{}, errors.New("CT submission: chain[0] is not a precertificate (no critical poison extension)")
	}
	hc := s.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	last := &lastLine{}
	lc, err := client.New(log.SubmissionURL, hc, jsonclient.Options{PublicKeyDER: log.Key, UserAgent: s.UserAgent, Logger: last})
	if err != nil {
		return SCT{}, fmt.Errorf("CT log %q: %w", log.Description, err)
	}
	timeout := s.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sct, err := lc.AddPreChain(ctx, asn1Chain)
	if err != nil {
		if l := last.get(); l != "" && ctx.Err() != nil {
			err = fmt.Errorf("%w (last: %s)", err, l)
		}
		return SCT{}, fmt.Errorf("CT log %q: add-pre-chain: %w", log.Description, err)
	}
	if err := verify(log, parsed, sct); err != nil {
		return SCT{}, err
	}
	raw, err := tls.Marshal(*sct)
	if err != nil {
		return SCT{}, err
	}
	return SCT{LogID: sct.LogID.KeyID, Timestamp: sct.Timestamp, Raw: raw}, nil
}

// Verify checks an SCT (for instance one read back from storage) against
// the log's key and the precertificate chain it was issued for.
func Verify(log *Log, chain [][]byte, s SCT) error {
	parsed := make([]*ctx509.Certificate, len(chain))
	for i, der := range chain {
		c, err := ctx509.ParseCertificate(der)
		if ctx509.IsFatal(err) {
			return fmt.Errorf("chain[%d]: %w", i, err)
		}
		parsed[i] = c
	}
	sct, err := s.Parse()
	if err != nil {
		return err
	}
	return verify(log, parsed, sct)
}

func verify(log *Log, chain []*ctx509.Certificate, sct *ctgo.SignedCertificateTimestamp) error {
	if sct.SCTVersion != ctgo.V1 {
		return fmt.Errorf("CT log %q: SCT version %v, want v1", log.Description, sct.SCTVersion)
	}
	if sct.LogID.KeyID != log.ID {
		return fmt.Errorf("CT log %q: the SCT names log %x, not this log", log.Description, sct.LogID.KeyID[:8])
	}
	if err := ctutil.VerifySCT(log.PublicKey, chain, sct, false); err != nil {
		return fmt.Errorf("CT log %q: the SCT does not verify against the log's key: %w", log.Description, err)
	}
	return nil
}

// lastLine keeps the client's last retry message, so that a submission that
// timed out says why (connection refused, 503...).
type lastLine struct {
	mu sync.Mutex
	s  string
}

func (l *lastLine) Printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.s = fmt.Sprintf(format, args...)
}

func (l *lastLine) get() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s
}
