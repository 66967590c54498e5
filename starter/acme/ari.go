package acme

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"time"

	"certdesk/internal/store"
)

// ARI (RFC 9773): the renewalInfo resource tells a client when to renew a
// certificate; newOrder's "replaces" names the certificate an order renews.

// ARI polling intervals (Retry-After of renewalInfo, RFC 9773 §4.3): every
// six hours normally, hourly once the window has been moved to now.
const (
	ariRetryAfter       = 6 * time.Hour
	ariRetryAfterUrgent = time.Hour
)

// certID is the RFC 9773 §4.1 unique identifier of a certificate:
// base64url(AKI keyIdentifier) "." base64url(serial DER content octets).
type certID struct {
	aki    []byte
	serial *big.Int
}

// parseCertID decodes a certID; malformed ones are a malformed problem.
func parseCertID(s string) (certID, error) {
	a, b, ok := strings.Cut(s, ".")
	if !ok || a == "" || b == "" || strings.Contains(b, ".") {
		return certID{}, fail(http.StatusBadRequest, "malformed", "certID must be base64url(keyIdentifier).base64url(serial)")
	}
	aki, err1 := base64.RawURLEncoding.DecodeString(strings.TrimRight(a, "="))
	ser, err2 := base64.RawURLEncoding.DecodeString(strings.TrimRight(b, "="))
	if err1 != nil || err2 != nil || len(ser) > 20 {
		return certID{}, fail(http.StatusBadRequest, "malformed", "certID is not two base64url parts (a serial is at most 20 octets)")
	}
	// DER INTEGER content: a positive serial has its high bit clear, and
	// no superfluous leading zero octet.
	if ser[0]&0x80 != 0 || (len(ser) > 1 && ser[0] == 0 && ser[1]&0x80 == 0) {
		return certID{}, fail(http.StatusBadRequest, "malformed", "certID serial is not the DER encoding of a positive integer")
	}
	return certID{aki: aki, serial: new(big.Int).SetBytes(ser)}, nil
}

// CertID returns the RFC 9773 certID of a certificate.
func CertID(cert *x509.Certificate) string {
	ser := cert.SerialNumber.Bytes()
	if len(ser) == 0 || ser[0]&0x80 != 0 {
		ser = append([]byte{0}, ser...)
	}
	return base64.RawURLEncoding.EncodeToString(cert.AuthorityKeyId) + "." + base64.RawURLEncoding.EncodeToString(ser)
}

// lookupCertID finds the ACME order and leaf certificate a certID names;
// an unknown serial or a keyIdentifier other than the leaf's is 404.
func (s *server) lookupCertID(ctx context.Context, raw string) (store.ACMEOrder, *x509.Certificate, error) {
	id, err := parseCertID(raw)
	if err != nil {
		return store.ACMEOrder{}, nil, err
	}
	o, err := s.d.Store.ACMEOrderBySerial(ctx, fmt.Sprintf("%x", id.serial))
	if err != nil {
		return store.ACMEOrder{}, nil, notFoundOr(err, "certificate issued through ACME")
	}
	blk, _ := pem.Decode([]byte(o.CertPEM))
	if blk == nil {
		return store.ACMEOrder{}, nil, fail(http.StatusNotFound, "malformed", "no such certificate issued through ACME")
	}
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil || !bytes.Equal(leaf.AuthorityKeyId, id.aki) {
		return store.ACMEOrder{}, nil, fail(http.StatusNotFound, "malformed", "no such certificate issued through ACME")
	}
	return o, leaf, nil
}

// DefaultRenewalWindow is the suggested window of a certificate nobody has
// moved: from two thirds of its validity to halfway through the last third,
// so a client renewing at a random time in it keeps at least a sixth of the
// lifetime for retries.
func DefaultRenewalWindow(cert *x509.Certificate) (start, end time.Time) {
	life := cert.NotAfter.Sub(cert.NotBefore)
	return cert.NotBefore.Add(life * 2 / 3), cert.NotAfter.Add(-life / 6)
}

// renewalInfo serves GET <base>/renewal-info/<certID> (RFC 9773 §4.2). It
// is not authenticated: anyone with the certificate may ask.
func (s *server) renewalInfo(w http.ResponseWriter, r *http.Request) {
	_, leaf, err := s.lookupCertID(r.Context(), r.PathValue("certID"))
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	start, end := DefaultRenewalWindow(leaf)
	retry := ariRetryAfter
	// A mass revocation moves the window to now (store.SetRenewalWindowNow).
	ws, we, moved, err := s.d.Store.RenewalWindow(r.Context(), fmt.Sprintf("%x", leaf.SerialNumber))
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	if moved {
		start, end, retry = ws, we, ariRetryAfterUrgent
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(retry.Seconds())))
	w.Header().Set("Link", `<`+s.base(r)+`/directory>;rel="index"`)
	writeJSON(w, http.StatusOK, map[string]any{
		"suggestedWindow": map[string]string{
			"start": start.UTC().Format(time.RFC3339),
			"end":   end.UTC().Format(time.RFC3339),
		},
	})
}

// checkReplaces vets newOrder's "replaces" (RFC 9773 §5): the certificate
// must have been issued to this account and share an identifier with the
// new order. It returns the serial (hex) to record; a certificate already
// replaced is refused by the store (alreadyReplaced).
func (s *server) checkReplaces(ctx context.Context, acct store.ACMEAccount, ids []store.ACMEIdentifier, raw string) (string, error) {
	o, leaf, err := s.lookupCertID(ctx, raw)
	var ae *Error
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return "", fail(http.StatusBadRequest, "malformed", "replaces does not name a certificate issued through ACME")
	}
	if err != nil {
		return "", err
	}
	if o.AccountID != acct.ID {
		return "", fail(http.StatusBadRequest, "malformed", "replaces names a certificate of another account")
	}
	names := map[string]bool{}
	for _, n := range leaf.DNSNames {
		names[strings.ToLower(n)] = true
	}
	for _, id := range ids {
		if names[id.Value] {
			return fmt.Sprintf("%x", leaf.SerialNumber), nil
		}
	}
	return "", fail(http.StatusBadRequest, "malformed", "the order shares no identifier with the certificate it replaces")
}
