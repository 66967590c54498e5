package ct

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/google/certificate-transparency-go/loglist3"
	"github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	"github.com/google/certificate-transparency-go/x509util"
)

var t0 = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

type testLog struct {
	op, name string
	tiled    bool
	state    State
	from, to time.Time // temporal interval; zero: none
}

func listJSON(t *testing.T, logs []testLog, mutate func(*loglist3.LogList)) []byte {
	t.Helper()
	ll := &loglist3.LogList{Version: "1", LogListTimestamp: t0}
	ops := map[string]*loglist3.Operator{}
	for _, tl := range logs {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
		id := sha256.Sum256(der)
		st := &loglist3.LogStates{}
		ls := &loglist3.LogState{Timestamp: t0.AddDate(-1, 0, 0)}
		switch tl.state {
		case Usable, "":
			st.Usable = ls
		case Qualified:
			st.Qualified = ls
		case Pending:
			st.Pending = ls
		case Retired:
			st.Retired = ls
		case ReadOnly:
			st.ReadOnly = &loglist3.ReadOnlyLogState{LogState: *ls}
		}
		var ti *loglist3.TemporalInterval
		if !tl.from.IsZero() {
			ti = &loglist3.TemporalInterval{StartInclusive: tl.from, EndExclusive: tl.to}
		}
		op := ops[tl.op]
		if op == nil {
			op = &loglist3.Operator{Name: tl.op, Email: []string{"ct@" + tl.op + ".test"}}
			ops[tl.op] = op
			ll.Operators = append(ll.Operators, op)
		}
		url := "https://" + tl.name + ".test/"
		if tl.tiled {
			op.TiledLogs = append(op.TiledLogs, &loglist3.TiledLog{Description: tl.name, LogID: id[:], Key: der,
				SubmissionURL: url, MonitoringURL: "https://mon." + tl.name + ".test/", MMD: 60, State: st, TemporalInterval: ti})
		} else {
			op.Logs = append(op.Logs, &loglist3.Log{Description: tl.name, LogID: id[:], Key: der, URL: url, MMD: 86400, State: st, TemporalInterval: ti})
		}
	}
	if mutate != nil {
		mutate(ll)
	}
	b, err := json.Marshal(ll)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustList(t *testing.T, logs []testLog) *LogList {
	t.Helper()
	ll, err := ParseLogList(listJSON(t, logs, nil))
	if err != nil {
		t.Fatal(err)
	}
	return ll
}

func TestParseLogList(t *testing.T) {
	ll := mustList(t, []testLog{
		{op: "A", name: "a1", from: t0, to: t0.AddDate(1, 0, 0)},
		{op: "B", name: "b1", tiled: true, state: Qualified},
	})
	if len(ll.Logs) != 2 {
		t.Fatalf("%d logs", len(ll.Logs))
	}
	a, b := ll.Logs[0], ll.Logs[1]
	if a.Kind != RFC6962 || a.Operator != "A" || a.SubmissionURL != "https://a1.test" || a.MonitoringURL != a.SubmissionURL || a.MMD != 24*time.Hour || a.State != Usable {
		t.Errorf("a1 = %+v", a)
	}
	if b.Kind != StaticCT || b.MonitoringURL != "https://mon.b1.test" || b.State != Qualified || !b.AcceptsNotAfter(t0.AddDate(5, 0, 0)) {
		t.Errorf("b1 = %+v", b)
	}
	if !a.AcceptsNotAfter(t0) || a.AcceptsNotAfter(t0.AddDate(1, 0, 0)) || a.AcceptsNotAfter(t0.Add(-time.Second)) {
		t.Error("temporal interval: start inclusive, end exclusive")
	}
	if ll.ByID(a.ID) != a || ll.ByID([32]byte{}) != nil {
		t.Error("ByID")
	}
}

func TestParseLogListRefusals(t *testing.T) {
	logs := []testLog{{op: "A", name: "a1"}, {op: "B", name: "b1"}}
	for name, mutate := range map[string]func(*loglist3.LogList){
		"log_id not the key's hash": func(ll *loglist3.LogList) { ll.Operators[0].Logs[0].LogID[0] ^= 1 },
		"bad key":                   func(ll *loglist3.LogList) { ll.Operators[0].Logs[0].Key = []byte{1, 2, 3} },
		"no operator name":          func(ll *loglist3.LogList) { ll.Operators[1].Name = "" },
		"relative url":              func(ll *loglist3.LogList) { ll.Operators[0].Logs[0].URL = "/ct/" },
		"no state":                  func(ll *loglist3.LogList) { ll.Operators[0].Logs[0].State = nil },
		"duplicate log": func(ll *loglist3.LogList) {
			ll.Operators[1].Logs = append(ll.Operators[1].Logs, ll.Operators[0].Logs[0])
		},
		"empty interval": func(ll *loglist3.LogList) {
			ll.Operators[0].Logs[0].TemporalInterval = &loglist3.TemporalInterval{StartInclusive: t0, EndExclusive: t0}
		},
		"no logs": func(ll *loglist3.LogList) { ll.Operators = nil },
	} {
		if _, err := ParseLogList(listJSON(t, logs, mutate)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ParseLogList([]byte("{")); err == nil {
		t.Error("bad JSON accepted")
	}
}

func TestRequired(t *testing.T) {
	nb := t0
	for _, c := range []struct {
		validity time.Duration
		want     int
	}{
		{90 * 24 * time.Hour, 2},
		// Inclusive counting: notAfter = notBefore + 180 days − 1 s is exactly 180 days.
		{180*24*time.Hour - time.Second, 2},
		{180 * 24 * time.Hour, 3},
		{398*24*time.Hour - time.Second, 3},
	} {
		if got := Default.Required(nb, nb.Add(c.validity)); got != c.want {
			t.Errorf("Required(%v) = %d, want %d", c.validity, got, c.want)
		}
	}
}

// sctsFrom fakes SCTs for the policy's counting (no signatures: Satisfied
// does not check them).
func sctsFrom(logs ...*Log) []SCT {
	var out []SCT
	for _, l := range logs {
		out = append(out, SCT{LogID: l.ID, Timestamp: uint64(t0.UnixMilli())})
	}
	return out
}

func TestSatisfied(t *testing.T) {
	ll := mustList(t, []testLog{
		{op: "A", name: "a1"}, {op: "A", name: "a2", tiled: true}, {op: "A", name: "a3", tiled: true},
		{op: "B", name: "b1", tiled: true}, {op: "B", name: "b2", tiled: true},
		{op: "C", name: "old", state: Retired},
		{op: "C", name: "shard25", from: t0.AddDate(-1, 0, 0), to: t0},
	})
	a1, a2, a3, b1, b2, old, shard := ll.Logs[0], ll.Logs[1], ll.Logs[2], ll.Logs[3], ll.Logs[4], ll.Logs[5], ll.Logs[6]
	short, long := t0.Add(90*24*time.Hour), t0.Add(397*24*time.Hour)
	static, _ := ParsePolicy("chrome-static,apple-static")
	for _, c := range []struct {
		name     string
		p        Policy
		scts     []SCT
		notAfter time.Time
		wantErr  string // "" = satisfied
	}{
		{"two operators, short", Default, sctsFrom(a1, b1), short, ""},
		{"one operator, short", Default, sctsFrom(a1, a2), short, "Chrome: SCTs from 1 log operator"},
		{"Apple caps one per operator, short", Policy{Apple}, sctsFrom(a1, a2), short, "Apple: 1 SCTs from distinct logs, counting at most 1 per operator, need 2"},
		{"long needs three", Default, sctsFrom(a1, b1), long, "need 3 for a lifetime of over 180 days"},
		{"long, three from two operators", Default, sctsFrom(a1, a2, b1), long, ""},
		{"long, Apple counts two per operator", Policy{Apple}, sctsFrom(a1, a2, a3), long, "Apple: 2 SCTs"},
		{"same log twice counts once", Default, sctsFrom(a1, b1, b1), long, "a second SCT from \"b1\""},
		{"no RFC 6962 log", Policy{Apple}, sctsFrom(a2, b1), short, "no SCT from an RFC 6962 log"},
		{"no RFC 6962 log, Chrome after 2026-04-15", Policy{Chrome}, sctsFrom(a2, b1), short, ""},
		{"static policy", static, sctsFrom(a2, b1), short, ""},
		{"retired log not counted", Default, sctsFrom(a1, old), short, "not counted: the SCT from \"old\" (retired"},
		{"shard not covering notAfter", Default, sctsFrom(a1, shard), short, "its shard does not cover notAfter"},
		{"unknown log", Default, []SCT{{LogID: [32]byte{1}}, sctsFrom(a1)[0]}, short, "not in the list"},
		{"b2 fine too", Default, sctsFrom(b2, a1), short, ""},
	} {
		err := c.p.Satisfied(ll, c.scts, t0, c.notAfter)
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr) || !errors.Is(err, ErrPolicy)):
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.wantErr)
		}
	}
}

func TestCandidates(t *testing.T) {
	ll := mustList(t, []testLog{
		{op: "A", name: "a-static", tiled: true}, {op: "A", name: "a-rfc"},
		{op: "B", name: "b1", tiled: true}, {op: "B", name: "b2", tiled: true},
		{op: "C", name: "pending", state: Pending},
		{op: "C", name: "expired-shard", from: t0.AddDate(-1, 0, 0), to: t0},
	})
	notAfter := t0.Add(90 * 24 * time.Hour)
	got, err := Default.Candidates(ll, t0, notAfter, t0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range got {
		names = append(names, l.Description)
	}
	// RFC 6962 first, then operators alternate; pending and out-of-shard logs left out.
	if want := "a-rfc b1 a-static b2"; strings.Join(names, " ") != want {
		t.Errorf("candidates %q, want %q", names, want)
	}
	// The first Required() of them satisfy the policy.
	if err := Default.Satisfied(ll, sctsFrom(got[:Default.Required(t0, notAfter)]...), t0, notAfter); err != nil {
		t.Errorf("the first candidates do not satisfy the policy: %v", err)
	}
	// Only one operator left usable: refused up front.
	one := mustList(t, []testLog{{op: "A", name: "a1"}, {op: "A", name: "a2"}, {op: "B", name: "b", state: Pending}})
	if _, err := Default.Candidates(one, t0, notAfter, t0); err == nil || !errors.Is(err, ErrPolicy) || !strings.Contains(err.Error(), "operator") {
		t.Errorf("one operator: %v", err)
	}
}

func TestParsePolicy(t *testing.T) {
	p, err := ParsePolicy("Chrome, apple")
	if err != nil || len(p) != 2 || p[0].Name != "Chrome" || p[1].Name != "Apple" {
		t.Errorf("%v %v", p, err)
	}
	if _, err := ParsePolicy("firefox"); err == nil {
		t.Error("unknown policy accepted")
	}
}

func TestEncodeSCTList(t *testing.T) {
	// Two SCTs as a log would encode them; the list must parse back with
	// certificate-transparency-go.
	raw1 := []byte{0x00, // v1
		1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
		0, 0, 1, 0x90, 0, 0, 0, 0, // timestamp
		0, 0, // no extensions
		4, 3, 0, 2, 0xAB, 0xCD, // ecdsa-sha256, 2-byte signature
	}
	raw2 := append([]byte{}, raw1...)
	raw2[1] = 0xFF
	list, err := EncodeSCTList([]SCT{{Raw: raw1}, {Raw: raw2}})
	if err != nil {
		t.Fatal(err)
	}
	var back ctx509.SignedCertificateTimestampList
	if rest, err := tls.Unmarshal(list, &back); err != nil || len(rest) > 0 {
		t.Fatalf("list does not parse back: %v", err)
	}
	scts, err := x509util.ParseSCTsFromSCTList(&back)
	if err != nil || len(scts) != 2 || scts[0].LogID.KeyID[0] != 1 || scts[1].LogID.KeyID[0] != 0xFF || scts[0].Timestamp != 0x19000000000 {
		t.Fatalf("parsed back %+v, %v", scts, err)
	}
	if _, err := EncodeSCTList(nil); err == nil {
		t.Error("empty list encoded")
	}
	if _, err := EncodeSCTList([]SCT{{Raw: []byte{0}}}); err == nil {
		t.Error("garbage SCT encoded")
	}
}

func TestSubmitRefusesBadChains(t *testing.T) {
	ll := mustList(t, []testLog{{op: "A", name: "a1"}})
	s := &Submitter{}
	if _, err := s.Submit(t.Context(), ll.Logs[0], [][]byte{{1}}); err == nil || !strings.Contains(err.Error(), "issuer") {
		t.Errorf("one-certificate chain: %v", err)
	}
	if _, err := s.Submit(t.Context(), ll.Logs[0], [][]byte{{1, 2}, {3}}); err == nil {
		t.Error("garbage chain accepted")
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: t0, NotAfter: t0.Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Submit(t.Context(), ll.Logs[0], [][]byte{der, der}); err == nil || !strings.Contains(err.Error(), "not a precertificate") {
		t.Errorf("final certificate submitted as a precertificate: %v", err)
	}
}
