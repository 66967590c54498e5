package pki

import (
	"context"
	"fmt"
	"math/big"
	"time"
)

// OCSPStatusSource gives the status of a serial, or ErrNotIssued.
type OCSPStatusSource interface {
	CertStatus(ctx context.Context, issuerID string, serial *big.Int) (CertStatus, error)
}

// LiveOCSP is an OCSPLookup that signs on demand with the issuers'
// responders: the tests' stand-in for the stored, pre-signed responses.
type LiveOCSP struct {
	responders map[string]*OCSPResponder
	Status     OCSPStatusSource
	// Now defaults to time.Now.
	Now func() time.Time
}

// NewLiveOCSP returns a LiveOCSP over responders.
func NewLiveOCSP(status OCSPStatusSource, responders ...*OCSPResponder) *LiveOCSP {
	l := &LiveOCSP{responders: map[string]*OCSPResponder{}, Status: status}
	for _, r := range responders {
		l.responders[r.issuerID] = r
	}
	return l
}

// OCSPResponse implements OCSPLookup.
func (l *LiveOCSP) OCSPResponse(ctx context.Context, issuerID string, serial *big.Int) ([]byte, error) {
	r := l.responders[issuerID]
	if r == nil {
		return nil, ErrNotIssued
	}
	st, err := l.Status.CertStatus(ctx, issuerID, serial)
	if err != nil {
		return nil, err
	}
	if st.Serial == nil || st.Serial.Cmp(serial) != 0 {
		return nil, fmt.Errorf("status source returned serial %v for %x", st.Serial, serial)
	}
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	s, err := r.Sign(st, now())
	if err != nil {
		return nil, err
	}
	return s.DER, nil
}
