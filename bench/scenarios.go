package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"golang.org/x/crypto/ocsp"

	"certdesk/activities"
	"certdesk/bench/stack"
	"certdesk/internal/mailer"
	"certdesk/internal/pki"
	"certdesk/internal/product"
	"certdesk/internal/revocation"
	"certdesk/internal/status"
	"certdesk/internal/store"
	"certdesk/internal/temporalclient"
	"certdesk/workflows"
)

// Row is one line of the results table.
type Row struct {
	Scenario string  `json:"scenario"`
	Figure   string  `json:"figure"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	Ratio    string  `json:"ratio,omitempty"`
	Target   string  `json:"target,omitempty"`
	Met      *bool   `json:"met,omitempty"`
	Mode     string  `json:"mode"`
	Note     string  `json:"note,omitempty"`
}

func met(b bool) *bool { return &b }

// ---------------------------------------------------------------------------
// (3) CRL generation: Issuer.CRL over n entries in the issuer's shards,
// against raw x509.CreateRevocationList on the same entries with the same key.

func benchCRL(ctx context.Context, ca *pki.CA, keys pki.KeyStore, caDir string, n int) ([]Row, error) {
	iss, err := ca.IssuerFor(product.ServerDV)
	if err != nil {
		return nil, err
	}
	signer, err := issuerSigner(ctx, keys, caDir, iss.ID())
	if err != nil {
		return nil, err
	}
	shards := make([][]pki.CRLEntry, iss.CRLShards())
	raw := make([][]x509.RevocationListEntry, iss.CRLShards())
	all := make([]x509.RevocationListEntry, 0, n)
	reasons := []int{0, 1, 3, 4, 5, 9}
	thisUpdate := time.Now().UTC().Truncate(time.Second)
	for i := 0; i < n; i++ {
		s, err := pki.NewSerial()
		if err != nil {
			return nil, err
		}
		e := pki.CRLEntry{Serial: s, RevokedAt: thisUpdate.Add(-time.Duration(i) * time.Second), Reason: reasons[i%len(reasons)]}
		sh := pki.ShardFor(s, iss.CRLShards())
		shards[sh] = append(shards[sh], e)
		re := x509.RevocationListEntry{SerialNumber: s, RevocationTime: e.RevokedAt, ReasonCode: e.Reason}
		raw[sh] = append(raw[sh], re)
		all = append(all, re)
	}
	runtime.GC()
	var ours, rawSharded time.Duration
	size := 0
	const rounds = 2
	for r := 0; r < rounds; r++ {
		for sh := range shards {
			// Alternate, so both see the same machine load.
			start := time.Now()
			der, err := iss.CRL(ctx, &pki.CRLRequest{Shard: sh, Number: big.NewInt(int64(10*r + sh + 1)), ThisUpdate: thisUpdate, Entries: shards[sh]})
			if err != nil {
				return nil, err
			}
			ours += time.Since(start)
			size += len(der)
			start = time.Now()
			if _, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
				Number: big.NewInt(1), ThisUpdate: thisUpdate, NextUpdate: thisUpdate.Add(7 * 24 * time.Hour), RevokedCertificateEntries: raw[sh],
			}, iss.Certificate(), signer); err != nil {
				return nil, err
			}
			rawSharded += time.Since(start)
		}
	}
	start := time.Now()
	if _, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: thisUpdate, NextUpdate: thisUpdate.Add(7 * 24 * time.Hour), RevokedCertificateEntries: all,
	}, iss.Certificate(), signer); err != nil {
		return nil, err
	}
	rawOne := time.Since(start)
	per1M := func(d time.Duration, rounds int) float64 { return d.Seconds() / float64(rounds) * 1e6 / float64(n) }
	ratio := ours.Seconds() / rawSharded.Seconds()
	return []Row{
		{Scenario: "3 CRL", Figure: fmt.Sprintf("Issuer.CRL, %d entries in %d shards", n, iss.CRLShards()), Value: per1M(ours, rounds), Unit: "s per 1M entries",
			Ratio: fmt.Sprintf("%.2f× raw", ratio), Target: "≤ 1.2× raw", Met: met(ratio <= 1.2),
			Note: fmt.Sprintf("%.1f MB per shard", float64(size)/float64(rounds*len(shards))/1e6)},
		{Scenario: "3 CRL", Figure: "raw x509.CreateRevocationList, same shards and key", Value: per1M(rawSharded, rounds), Unit: "s per 1M entries"},
		{Scenario: "3 CRL", Figure: "raw x509.CreateRevocationList, one list of all entries", Value: per1M(rawOne, 1), Unit: "s per 1M entries",
			Ratio: fmt.Sprintf("%.2f× (Issuer.CRL / this)", ours.Seconds()/rounds/rawOne.Seconds())},
	}, nil
}

// issuerSigner loads the issuing CA's key by its label in ca.json.
func issuerSigner(ctx context.Context, keys pki.KeyStore, caDir, id string) (crypto.Signer, error) {
	b, err := os.ReadFile(filepath.Join(caDir, "ca.json"))
	if err != nil {
		return nil, err
	}
	var man struct {
		Issuers []struct {
			ID  string `json:"id"`
			Key string `json:"key"`
		} `json:"issuers"`
	}
	if err := json.Unmarshal(b, &man); err != nil {
		return nil, err
	}
	for _, i := range man.Issuers {
		if i.ID == id {
			return keys.Load(ctx, i.Key)
		}
	}
	return nil, fmt.Errorf("issuer %s not in ca.json", id)
}

// ---------------------------------------------------------------------------
// (2) Mass revocation of n seeded certificates, CRL publication included
// (the approach of workflows' massRevoke).

func benchMass(ctx context.Context, s *stack.Stack, n int) ([]Row, error) {
	iss, err := s.CA.IssuerFor(product.ServerDV)
	if err != nil {
		return nil, err
	}
	if err := s.Store.CreateReseller(ctx, store.Reseller{ID: "rs_mass", Name: "Mass", APIKeyHash: strings.Repeat("0", 62) + "ab", APIKeyPrefix: "cdk_m"}); err != nil {
		return nil, err
	}
	t0 := time.Now()
	if err := s.Store.SeedCertificates(ctx, store.SeedSpec{N: n, Issuer: iss.ID(), Shards: iss.CRLShards(), SerialBase: 0x1000000000000000,
		ResellerID: "rs_mass", NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour)}); err != nil {
		return nil, err
	}
	seed := time.Since(t0)
	stack.Logf("mass: seeded %d certificates in %s", n, seed.Round(time.Millisecond))
	incident := "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	dry := false
	start := time.Now()
	run, err := s.TC.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.MassRevocationWorkflowID(incident), TaskQueue: workflows.TaskQueue},
		workflows.MassRevocation, workflows.MassRevocationInput{Incident: incident, Selector: activities.Selector{Issuer: iss.ID(), ResellerID: "rs_mass"},
			Reason: revocation.CessationOfOperation.String(), DryRun: &dry, BatchSize: 5000})
	if err != nil {
		return nil, err
	}
	var p workflows.MassProgress
	if err := run.Get(ctx, &p); err != nil {
		return nil, err
	}
	took := time.Since(start)
	if p.Status != workflows.MassDone || p.Revoked != int64(n) {
		return nil, fmt.Errorf("mass revocation ended %+v", p)
	}
	var revoked int
	if err := s.Pool.GetContext(ctx, &revoked, `SELECT count(*) FROM certificates WHERE status = 'revoked' AND issuer = $1 AND reseller_id = 'rs_mass'`, iss.ID()); err != nil {
		return nil, err
	}
	listed := 0
	for shard := 0; shard < iss.CRLShards(); shard++ {
		c, err := s.Store.LatestCRL(ctx, iss.ID(), shard)
		if err != nil {
			return nil, err
		}
		rl, err := x509.ParseRevocationList(c.DER)
		if err != nil {
			return nil, err
		}
		if err := rl.CheckSignatureFrom(iss.Certificate()); err != nil {
			return nil, fmt.Errorf("CRL shard %d: %w", shard, err)
		}
		listed += len(rl.RevokedCertificateEntries)
	}
	if revoked != n || listed != n {
		return nil, fmt.Errorf("%d revoked in PostgreSQL, %d in the CRL shards, want %d", revoked, listed, n)
	}
	projected := took.Seconds() * 1e6 / float64(n)
	return []Row{
		{Scenario: "2 mass revocation", Figure: fmt.Sprintf("%d certificates revoked, CRL shards published and checked", n), Value: took.Seconds(), Unit: "s",
			Target: "1M in ≤ 600 s", Met: met(projected <= 600), Mode: s.Mode,
			Note: fmt.Sprintf("%d batches, %d CRL publications, %d runs; seeding %.1f s not counted", p.Batches, p.CRLs, p.Runs, seed.Seconds())},
		{Scenario: "2 mass revocation", Figure: "rate", Value: float64(n) / took.Seconds(), Unit: "certificates/s", Mode: s.Mode,
			Ratio: fmt.Sprintf("1M in %.0f s", projected)},
	}, nil
}

// ---------------------------------------------------------------------------
// (4) OCSP from the starter's pre-signed path: GET /ocsp/<base64> from a
// local load generator with conns connections, for d.

func benchOCSP(ctx context.Context, s *stack.Stack, conns int, d time.Duration) ([]Row, error) {
	iss, err := s.CA.IssuerFor(product.ServerDV)
	if err != nil {
		return nil, err
	}
	resp, ok := s.CA.Responder(iss.ID())
	if !ok {
		return nil, fmt.Errorf("no OCSP responder for %s", iss.ID())
	}
	const n = 10_000
	const base = 0x2000000000000000
	if err := s.Store.CreateReseller(ctx, store.Reseller{ID: "rs_ocsp", Name: "OCSP", APIKeyHash: strings.Repeat("0", 62) + "cd", APIKeyPrefix: "cdk_o"}); err != nil {
		return nil, err
	}
	if err := s.Store.SeedCertificates(ctx, store.SeedSpec{N: n, Issuer: iss.ID(), Shards: iss.CRLShards(), SerialBase: base,
		ResellerID: "rs_ocsp", NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour)}); err != nil {
		return nil, err
	}
	// Pre-sign as the signing worker does, store, and build the requests.
	reqs := make([]string, n)
	batch := make([]store.OCSPResponse, 0, 1000)
	now := time.Now()
	presigned := map[string][]byte{}
	var reqDERs [][]byte
	for i := 0; i < n; i++ {
		serial := new(big.Int).SetInt64(base + int64(i))
		signed, err := resp.Sign(pki.CertStatus{Serial: serial}, now)
		if err != nil {
			return nil, err
		}
		batch = append(batch, store.OCSPResponse{Serial: serial.Text(16), DER: signed.DER, Status: "good", ProducedAt: now, ThisUpdate: signed.ThisUpdate, NextUpdate: signed.NextUpdate})
		presigned[serial.Text(16)] = signed.DER
		if len(batch) == cap(batch) {
			if _, err := s.Store.UpsertOCSPBatch(ctx, batch); err != nil {
				return nil, err
			}
			batch = batch[:0]
		}
		der, err := ocsp.CreateRequest(&x509.Certificate{SerialNumber: serial}, iss.Certificate(), nil)
		if err != nil {
			return nil, err
		}
		reqDERs = append(reqDERs, der)
		reqs[i] = s.StarterURL + "/ocsp/" + base64.StdEncoding.EncodeToString(der)
	}
	// Check one answer end to end.
	if r, err := http.Get(reqs[0]); err != nil {
		return nil, err
	} else {
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		pr, err := ocsp.ParseResponse(b, iss.Certificate())
		if err != nil || pr.Status != ocsp.Good {
			return nil, fmt.Errorf("starter OCSP answer for a pre-signed serial: %v (HTTP %d)", err, r.StatusCode)
		}
	}

	starterPid := 0
	if s.Starter != nil && s.Starter.Cmd != nil && s.Starter.Cmd.Process != nil {
		starterPid = s.Starter.Cmd.Process.Pid
	}
	load, err := ocspLoad(ctx, reqs, conns, d, starterPid)
	if err != nil {
		return nil, err
	}
	rps := float64(load.Requests) / load.Seconds
	note := fmt.Sprintf("%d requests, %d failed; %d distinct serials; load generator: %s, on the same 2 cores", load.Requests, load.Failed, n, load.Generator)
	if load.Note != "" {
		note += "; " + load.Note
	}
	if load.CPU != "" {
		note += "; " + load.CPU
	}
	rows := []Row{
		{Scenario: "4 OCSP", Figure: fmt.Sprintf("starter GET /ocsp, pre-signed, %d connections, %s", conns, d), Value: rps, Unit: "responses/s",
			Target: "≥ 20,000/s", Met: met(rps >= 20000), Note: note},
		{Scenario: "4 OCSP", Figure: "latency p50", Value: ms(load.P50), Unit: "ms"},
		{Scenario: "4 OCSP", Figure: "latency p99", Value: ms(load.P99), Unit: "ms"},
	}
	if load.StarterCPUPerResponse > 0 {
		rows = append(rows, Row{Scenario: "4 OCSP", Figure: "starter CPU per response", Value: float64(load.StarterCPUPerResponse.Nanoseconds()) / 1000, Unit: "µs",
			Note: "the starter's user+system CPU over the measured run divided by its responses"})
	}

	// The same path in-process (no HTTP, no PostgreSQL): the ceiling.
	idx, err := s.CA.OCSPIndex()
	if err != nil {
		return nil, err
	}
	lookup := mapLookup(presigned)
	start := time.Now()
	count := 0
	for time.Since(start) < 3*time.Second {
		for _, der := range reqDERs[:1000] {
			if _, err := pki.RespondOCSP(ctx, der, idx, lookup); err != nil {
				return nil, err
			}
			count++
		}
	}
	rows = append(rows, Row{Scenario: "4 OCSP", Figure: "pki.RespondOCSP in-process, pre-signed map, 1 goroutine", Value: float64(count) / time.Since(start).Seconds(), Unit: "responses/s"})
	return rows, nil
}

type mapLookup map[string][]byte

func (m mapLookup) OCSPResponse(_ context.Context, _ string, s *big.Int) ([]byte, error) {
	if b, ok := m[s.Text(16)]; ok {
		return b, nil
	}
	return nil, pki.ErrNotIssued
}

func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return sorted[i]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// ---------------------------------------------------------------------------
// (5) Bulk notices to MailDev: the mailer's Outbox with the email log in
// PostgreSQL, one SMTP connection per batch of 200 (the mailer's approach).

func benchMail(ctx context.Context, s *stack.Stack, n int) ([]Row, error) {
	sender, err := mailer.NewSender(mailer.FromConfig(s.Cfg))
	if err != nil {
		return nil, err
	}
	ob := mailer.NewOutbox(sender, s.Store)
	var rows []Row
	for _, conns := range []int{1, 4} {
		domain := fmt.Sprintf("bulk%d-%s.certdesk.jp", conns, stack.RandHex(3))
		data := mailer.PolicyRevisionData{Version: "2.0", EffectiveDate: time.Now().AddDate(0, 1, 0), URL: "https://certdesk.example/repository/handling-2.0.html"}
		msgs := make([]mailer.Message, n)
		for i := range msgs {
			msgs[i] = mailer.Message{To: fmt.Sprintf("subscriber-%05d@%s", i, domain), RecipientRef: fmt.Sprintf("sub-%d", i),
				Notice: mailer.PolicyRevision, Data: data, IdempotencyKey: mailer.Key("policy-notice/"+domain, mailer.PolicyRevision, strconv.Itoa(i))}
		}
		start := time.Now()
		res, err := ob.SendBulk(ctx, msgs, mailer.BulkOptions{BatchSize: 200, Connections: conns})
		took := time.Since(start)
		if err != nil || res.Sent != n {
			return nil, fmt.Errorf("bulk send: %+v %v", res, err)
		}
		// Count what MailDev received.
		got := 0
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			all, err := s.Mail.Messages(ctx)
			got = 0
			if err == nil {
				for _, e := range all {
					if len(e.To) == 1 && strings.HasSuffix(e.To[0].Address, "@"+domain) {
						got++
					}
				}
			}
			if got >= n {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		rate := float64(n) / took.Seconds()
		rows = append(rows, Row{Scenario: "5 bulk notices", Figure: fmt.Sprintf("%d policy notices, %d SMTP connection(s), email log in PostgreSQL", n, conns),
			Value: rate, Unit: "emails/s", Target: "≥ 200/s", Met: met(rate >= 200), Note: fmt.Sprintf("%d of %d in MailDev", got, n)})
		_ = s.Mail.DeleteAll(ctx)
	}
	return rows, nil
}

// ---------------------------------------------------------------------------
// (1) DV issuance end to end through the starter API, against a bare
// workflow with as many no-op activities on the same Temporal.

type appResponse struct {
	ID         string `json:"id"`
	WorkflowID string `json:"workflow_id"`
	Status     string `json:"status"`
}

// benchDV issues n DV applications through the API with conc clients and
// compares the rate with a bare workflow of the same activity mix. With
// withoutCT the starter is restarted under CERTDESK_CT_DISABLED (no
// precertificate, no SCTs) for the comparison row, and back after.
func benchDV(ctx context.Context, s *stack.Stack, n, conc int, withoutCT bool) ([]Row, error) {
	if withoutCT {
		if err := restartStarter(ctx, s, "true"); err != nil {
			return nil, err
		}
		defer func() {
			if err := restartStarter(ctx, s, ""); err != nil {
				stack.Logf("dv: restarting the starter with CT: %v", err)
			}
		}()
	}
	type app struct {
		id        string
		wid       string
		submitted time.Time
		closed    time.Time
		status    string
	}
	apps := make([]app, n)
	csrs := make([]string, n)
	for i := range csrs {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, k)
		if err != nil {
			return nil, err
		}
		csrs[i] = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	}
	tr := &http.Transport{MaxIdleConnsPerHost: conc}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	tag := stack.RandHex(3)
	submit := func(i int) error {
		body, _ := json.Marshal(map[string]any{
			"product": product.ServerDV, "csr": csrs[i], "domains": []string{fmt.Sprintf("dv%05d-%s.%s", i, tag, s.DCVZone)},
			"subscriber":  map[string]any{"name": "Bench Taro", "email": fmt.Sprintf("sub%05d@bench.certdesk.jp", i), "country": "JP"},
			"attestation": map[string]any{"terms_version": "2026-01", "truthful": true},
		})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.StarterURL+"/v1/applications", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+s.ResellerKey)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", fmt.Sprintf("bench-%s-%d", tag, i))
		apps[i].submitted = time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("POST /v1/applications: %s: %s", resp.Status, b)
		}
		var ar appResponse
		if err := json.Unmarshal(b, &ar); err != nil {
			return err
		}
		apps[i].id, apps[i].wid = ar.ID, ar.WorkflowID
		return nil
	}
	wait := func(i int) error {
		var res workflows.ApplicationResult
		if err := s.TC.GetWorkflow(ctx, apps[i].wid, "").Get(ctx, &res); err != nil {
			return fmt.Errorf("%s: %w", apps[i].wid, err)
		}
		apps[i].status = res.Status
		d, err := s.TC.DescribeWorkflowExecution(ctx, apps[i].wid, "")
		if err != nil {
			return err
		}
		apps[i].closed = d.WorkflowExecutionInfo.CloseTime.AsTime()
		return nil
	}
	// A first application alone: it must issue, and its history gives the
	// number of activities the bare workflow runs.
	if err := submit(0); err != nil {
		return nil, err
	}
	if err := wait(0); err != nil {
		return nil, err
	}
	if apps[0].status != status.AppIssued {
		return nil, fmt.Errorf("first DV application ended %q, not issued (starter log: %s)", apps[0].status, stack.TailLog(s.Starter.LogPath, 5))
	}
	// The row says whether CT was on: what the first certificate carries.
	var ctState string
	var nSCT int
	if err := s.Pool.QueryRowContext(ctx, `SELECT c.ct_state, (SELECT count(*) FROM certificate_scts s WHERE s.serial = c.serial)
		FROM certificates c WHERE c.application_id = $1`, apps[0].id).Scan(&ctState, &nSCT); err != nil {
		return nil, fmt.Errorf("the first DV certificate: %w", err)
	}
	if (ctState == "final") == withoutCT {
		return nil, fmt.Errorf("the first DV certificate has ct_state %q with CT %s", ctState, map[bool]string{true: "off", false: "on"}[withoutCT])
	}
	ctNote := fmt.Sprintf("CT on: precertificate, %d SCTs from %d local logs, final certificate", nSCT, len(s.CTLogs.Logs))
	if withoutCT {
		ctNote = "CT off (CERTDESK_CT_DISABLED, comparison only): no precertificate, no SCTs"
	}
	mix, err := activityMix(ctx, s.TC, apps[0].wid)
	if err != nil {
		return nil, err
	}
	acts, locals := countMix(mix)
	stack.Logf("dv: one application runs %d activities and %d local activities; submitting %d more with %d clients", acts, locals, n-1, conc)

	start := time.Now()
	if err := parallel(n-1, conc, func(i int) error { return submit(i + 1) }); err != nil {
		return nil, err
	}
	submitTook := time.Since(start)
	if err := parallel(n-1, 64, func(i int) error { return wait(i + 1) }); err != nil {
		return nil, err
	}
	var lats []time.Duration
	var last time.Time
	issued := 0
	for _, a := range apps[1:] {
		if a.status == status.AppIssued {
			issued++
		}
		lats = append(lats, a.closed.Sub(a.submitted))
		if a.closed.After(last) {
			last = a.closed
		}
	}
	slices.Sort(lats)
	dvRate := float64(n-1) / last.Sub(start).Seconds()
	note := fmt.Sprintf("%d of %d issued; submitting took %.1f s; %s", issued, n-1, submitTook.Seconds(), ctNote)
	if issued != n-1 {
		note += " (NOT all issued)"
	}
	if withoutCT {
		// The comparison row: the same issuance without CT, no bare run.
		return []Row{{Scenario: "1 DV issuance", Figure: fmt.Sprintf("%d DV applications, same stack and clients, CT off", n-1), Value: dvRate, Unit: "certificates/s",
			Mode: s.Mode, Note: fmt.Sprintf("%s; p50 %.1f s, p99 %.1f s; %d activities + %d local activities", note, pct(lats, 0.5).Seconds(), pct(lats, 0.99).Seconds(), acts, locals)}}, nil
	}

	// The bare workflow: as many no-op activities, same Temporal, same
	// number of concurrent starts (through the client: there is no API).
	bare, bareLat, bareStart, err := benchBare(ctx, s, n-1, mix, conc)
	if err != nil {
		return nil, err
	}
	ratio := dvRate / bare
	return []Row{
		{Scenario: "1 DV issuance", Figure: fmt.Sprintf("%d DV applications through POST /v1/applications, %d clients, CT on", n-1, conc), Value: dvRate, Unit: "certificates/s",
			Ratio: fmt.Sprintf("%.2f× bare", ratio), Target: "≥ 100/s and ≥ 0.8× bare", Met: met(dvRate >= 100 && ratio >= 0.8), Mode: s.Mode, Note: note},
		{Scenario: "1 DV issuance", Figure: "latency p50 (submit → workflow closed)", Value: pct(lats, 0.5).Seconds(), Unit: "s", Mode: s.Mode},
		{Scenario: "1 DV issuance", Figure: "latency p99", Value: pct(lats, 0.99).Seconds(), Unit: "s", Mode: s.Mode},
		{Scenario: "1 DV issuance", Figure: fmt.Sprintf("bare workflow, %d no-op activities + %d no-op local activities, same order", acts, locals), Value: bare, Unit: "workflows/s", Mode: s.Mode,
			Note: fmt.Sprintf("p50 %.2f s, p99 %.2f s; starting took %.1f s", pct(bareLat, 0.5).Seconds(), pct(bareLat, 0.99).Seconds(), bareStart.Seconds())},
	}, nil
}

// activityMix lists, in history order, the activities a workflow ran: "a"
// for an activity task, "l" for a local activity (its marker).
func activityMix(ctx context.Context, tc client.Client, wid string) ([]string, error) {
	it := tc.GetWorkflowHistory(ctx, wid, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var mix []string
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return nil, err
		}
		switch {
		case e.GetEventType() == enums.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			mix = append(mix, "a")
		case e.GetEventType() == enums.EVENT_TYPE_MARKER_RECORDED && e.GetMarkerRecordedEventAttributes().GetMarkerName() == "LocalActivity":
			mix = append(mix, "l")
		}
	}
	return mix, nil
}

func countMix(mix []string) (acts, locals int) {
	for _, k := range mix {
		if k == "l" {
			locals++
		} else {
			acts++
		}
	}
	return acts, locals
}

const bareQueue = "certdesk-bench-bare"

// BareWorkflow runs no-op activities one after another, in the order and of
// the kinds of mix ("a" activity, "l" local activity).
func BareWorkflow(ctx workflow.Context, mix []string) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: time.Minute})
	for _, k := range mix {
		// One step, one activity: scheduling the activity before choosing
		// the kind ran an unwaited activity beside every local one, and the
		// reference did 26 activities for a "14 + 12" mix.
		var f workflow.Future
		if k == "l" {
			f = workflow.ExecuteLocalActivity(ctx, NoopActivity)
		} else {
			f = workflow.ExecuteActivity(ctx, NoopActivity)
		}
		if err := f.Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

// NoopActivity does nothing.
func NoopActivity(context.Context) error { return nil }

func benchBare(ctx context.Context, s *stack.Stack, n int, mix []string, conc int) (float64, []time.Duration, time.Duration, error) {
	// Same worker options as bin/worker, so the ratio compares like with
	// like; BENCH_BARE_POLLERS fixes the pollers instead, to show what
	// autoscaling gives.
	wo := temporalclient.WorkerOptions()
	if n := envInt("BENCH_BARE_POLLERS", 0); n > 0 {
		wo.WorkflowTaskPollerBehavior, wo.ActivityTaskPollerBehavior = nil, nil
		wo.MaxConcurrentWorkflowTaskPollers, wo.MaxConcurrentActivityTaskPollers = n, n
	}
	w := worker.New(s.TC, bareQueue, wo)
	w.RegisterWorkflow(BareWorkflow)
	w.RegisterActivity(NoopActivity)
	if err := w.Start(); err != nil {
		return 0, nil, 0, err
	}
	defer w.Stop()
	tag := stack.RandHex(3)
	runs := make([]client.WorkflowRun, n)
	submitted := make([]time.Time, n)
	start := time.Now()
	if err := parallel(n, conc, func(i int) error {
		submitted[i] = time.Now()
		r, err := s.TC.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fmt.Sprintf("bench-bare/%s-%d", tag, i), TaskQueue: bareQueue}, BareWorkflow, mix)
		runs[i] = r
		return err
	}); err != nil {
		return 0, nil, 0, err
	}
	startTook := time.Since(start)
	lats := make([]time.Duration, n)
	var mu sync.Mutex
	var last time.Time
	if err := parallel(n, 64, func(i int) error {
		if err := runs[i].Get(ctx, nil); err != nil {
			return err
		}
		d, err := s.TC.DescribeWorkflowExecution(ctx, runs[i].GetID(), runs[i].GetRunID())
		if err != nil {
			return err
		}
		c := d.WorkflowExecutionInfo.CloseTime.AsTime()
		lats[i] = c.Sub(submitted[i])
		mu.Lock()
		if c.After(last) {
			last = c
		}
		mu.Unlock()
		return nil
	}); err != nil {
		return 0, nil, 0, err
	}
	slices.Sort(lats)
	return float64(n) / last.Sub(start).Seconds(), lats, startTook, nil
}

// parallel runs f(0..n-1) on conc goroutines; the first error wins.
func parallel(n, conc int, f func(int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for c := 0; c < conc; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { first = err })
					next.Store(int64(n))
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// restartStarter restarts the starter with CERTDESK_CT_DISABLED=v (empty:
// unset) and waits for it.
func restartStarter(ctx context.Context, s *stack.Stack, v string) error {
	s.Starter.Kill(syscall.SIGTERM, 10*time.Second)
	if v == "" {
		delete(s.Env, "CERTDESK_CT_DISABLED")
	} else {
		s.Env["CERTDESK_CT_DISABLED"] = v
	}
	return s.StartStarter(ctx)
}
