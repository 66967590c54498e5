// Package ct is CertDesk's Certificate Transparency domain logic: the log
// list (Chrome's v3 log_list.json format), the root programs' CT policies
// (which logs to submit a precertificate to, and when the SCTs collected are
// enough), submission of precertificates to logs with verification of every
// SCT against the log's key, and the SCT list extension value embedded in the
// final certificate (RFC 6962).
//
// Parsing, SCT verification and TLS encoding are certificate-transparency-go's
// (the library Chrome's and Google's own tooling use), not reimplemented here.
package ct

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/google/certificate-transparency-go/loglist3"
)

// Kind is the API a log speaks for reading; both kinds accept submissions
// through RFC 6962's add-pre-chain.
type Kind string

const (
	// RFC6962 logs serve get-sth/get-entries (the list's "logs").
	RFC6962 Kind = "rfc6962"
	// StaticCT logs serve the Static CT API's checkpoint and tiles at a
	// separate monitoring URL (the list's "tiled_logs"; c2sp.org/static-ct-api).
	StaticCT Kind = "static-ct"
)

// State is a log's state in the log list (Chrome's log lifecycle).
type State string

// Log states, as named in log_list.json.
const (
	Pending   State = "pending"
	Qualified State = "qualified"
	Usable    State = "usable"
	ReadOnly  State = "readonly"
	Retired   State = "retired"
	Rejected  State = "rejected"
)

// Log is one CT log of the list.
type Log struct {
	Description string
	Operator    string
	Kind        Kind
	// ID is the log ID: SHA-256 of Key.
	ID [sha256.Size]byte
	// Key is the log's DER SubjectPublicKeyInfo; PublicKey the parsed key.
	Key       []byte
	PublicKey crypto.PublicKey
	// SubmissionURL is the base to which /ct/v1/add-pre-chain is appended
	// (the "url" of an RFC 6962 log). MonitoringURL is a Static CT log's
	// read prefix; for an RFC 6962 log it equals SubmissionURL.
	SubmissionURL string
	MonitoringURL string
	// MMD is the maximum merge delay.
	MMD time.Duration
	// State and StateSince: the current state and when it began.
	State      State
	StateSince time.Time
	// NotAfterStart (inclusive) and NotAfterEnd (exclusive) bound the
	// notAfter of the certificates the log accepts (a temporal shard); both
	// zero for an unsharded log.
	NotAfterStart, NotAfterEnd time.Time
}

// AcceptsNotAfter reports whether notAfter falls in the log's temporal
// interval (always, for an unsharded log).
func (l *Log) AcceptsNotAfter(notAfter time.Time) bool {
	if l.NotAfterStart.IsZero() && l.NotAfterEnd.IsZero() {
		return true
	}
	return !notAfter.Before(l.NotAfterStart) && notAfter.Before(l.NotAfterEnd)
}

// UsableAt reports whether the log was Usable or Qualified at t: the states in
// which it may be given new submissions and its SCTs count as from a
// currently approved log (Chrome requirement 1 and 2, Apple "currently
// approved").
func (l *Log) UsableAt(t time.Time) bool {
	return (l.State == Usable || l.State == Qualified) && !t.Before(l.StateSince)
}

// LogList is a parsed, validated log list.
type LogList struct {
	Version   string
	Timestamp time.Time
	Logs      []*Log
}

// ByID returns the log with the given ID, or nil.
func (ll *LogList) ByID(id [sha256.Size]byte) *Log {
	for _, l := range ll.Logs {
		if l.ID == id {
			return l
		}
	}
	return nil
}

// LoadLogList reads and parses a log list file (CERTDESK_CT_LOG_LIST).
func LoadLogList(path string) (*LogList, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("CT log list: %w", err)
	}
	ll, err := ParseLogList(b)
	if err != nil {
		return nil, fmt.Errorf("CT log list %s: %w", path, err)
	}
	return ll, nil
}

// ParseLogList parses a v3 log_list.json (the format Chrome publishes at
// gstatic.com/ct/log_list/v3/) and checks every log: the key parses, the
// log ID is the SHA-256 of the key, URLs are absolute http(s), IDs are
// unique and every log has an operator and a state.
func ParseLogList(data []byte) (*LogList, error) {
	raw, err := loglist3.NewFromJSON(data)
	if err != nil {
		return nil, err
	}
	out := &LogList{Version: raw.Version, Timestamp: raw.LogListTimestamp}
	seen := map[[sha256.Size]byte]string{}
	var errs []error
	add := func(op, desc string, kind Kind, id, key []byte, sub, mon string, mmd int32, st *loglist3.LogStates, ti *loglist3.TemporalInterval) {
		l, err := newLog(op, desc, kind, id, key, sub, mon, mmd, st, ti)
		if err != nil {
			errs = append(errs, fmt.Errorf("log %q of operator %q: %w", desc, op, err))
			return
		}
		if prev, dup := seen[l.ID]; dup {
			errs = append(errs, fmt.Errorf("log %q of operator %q has the same log ID as %q", desc, op, prev))
			return
		}
		seen[l.ID] = desc
		out.Logs = append(out.Logs, l)
	}
	for _, op := range raw.Operators {
		if strings.TrimSpace(op.Name) == "" {
			errs = append(errs, errors.New("an operator has no name (policies count distinct operators)"))
			continue
		}
		for _, l := range op.Logs {
			add(op.Name, l.Description, RFC6962, l.LogID, l.Key, l.URL, l.URL, l.MMD, l.State, l.TemporalInterval)
		}
		for _, l := range op.TiledLogs {
			add(op.Name, l.Description, StaticCT, l.LogID, l.Key, l.SubmissionURL, l.MonitoringURL, l.MMD, l.State, l.TemporalInterval)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(out.Logs) == 0 {
		return nil, errors.New("the list names no logs")
	}
	return out, nil
}

func newLog(op, desc string, kind Kind, id, key []byte, sub, mon string, mmd int32, st *loglist3.LogStates, ti *loglist3.TemporalInterval) (*Log, error) {
	pub, err := x509.ParsePKIXPublicKey(key)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	sum := sha256.Sum256(key)
	if !bytes.Equal(sum[:], id) {
		return nil, fmt.Errorf("log_id %x is not the SHA-256 of its key (%x)", id, sum)
	}
	for _, u := range []string{sub, mon} {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			return nil, fmt.Errorf("URL %q: want an absolute http(s) URL", u)
		}
	}
	l := &Log{
		Description: desc, Operator: op, Kind: kind, ID: sum, Key: key, PublicKey: pub,
		SubmissionURL: strings.TrimSuffix(sub, "/"), MonitoringURL: strings.TrimSuffix(mon, "/"),
		MMD: time.Duration(mmd) * time.Second,
	}
	if st == nil {
		return nil, errors.New("no state")
	}
	switch {
	case st.Pending != nil:
		l.State, l.StateSince = Pending, st.Pending.Timestamp
	case st.Qualified != nil:
		l.State, l.StateSince = Qualified, st.Qualified.Timestamp
	case st.Usable != nil:
		l.State, l.StateSince = Usable, st.Usable.Timestamp
	case st.ReadOnly != nil:
		l.State, l.StateSince = ReadOnly, st.ReadOnly.Timestamp
	case st.Retired != nil:
		l.State, l.StateSince = Retired, st.Retired.Timestamp
	case st.Rejected != nil:
		l.State, l.StateSince = Rejected, st.Rejected.Timestamp
	default:
		return nil, errors.New("no state")
	}
	if ti != nil {
		if !ti.StartInclusive.Before(ti.EndExclusive) {
			return nil, fmt.Errorf("temporal interval %s..%s is empty", ti.StartInclusive, ti.EndExclusive)
		}
		l.NotAfterStart, l.NotAfterEnd = ti.StartInclusive, ti.EndExclusive
	}
	return l, nil
}
