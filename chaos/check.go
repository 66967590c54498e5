package main

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"golang.org/x/crypto/ocsp"

	"certdesk/bench/stack"
	"certdesk/internal/cases"
	"certdesk/internal/mailer"
	"certdesk/internal/status"
	"certdesk/internal/testenv"
	"certdesk/workflows"
)

type invariant struct {
	name   string
	ok     bool
	detail string
}

type report struct {
	inv     []invariant
	figures []string
}

func (r *report) add(name string, ok bool, format string, args ...any) {
	r.inv = append(r.inv, invariant{name, ok, fmt.Sprintf(format, args...)})
}

func (r *report) figure(format string, args ...any) {
	r.figures = append(r.figures, fmt.Sprintf(format, args...))
}

func (r *report) failed() bool {
	for _, i := range r.inv {
		if !i.ok {
			return true
		}
	}
	return false
}

func waitEmails(ctx context.Context, s *stack.Stack, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		var n int
		if err := s.Pool.GetContext(ctx, &n, `SELECT count(*) FROM email_log WHERE status <> 'sent'`); err == nil && n == 0 {
			return true
		}
		if !sleepCtx(ctx, 3*time.Second) {
			break
		}
	}
	return false
}

// expectedKeys are the email_log keys a case that ended as expected must
// have, each with the address it goes to ("" for the reseller or staff,
// whose addresses are shared by every case).
func expectedKeys(k *kase) map[string]string {
	out := map[string]string{}
	if k.wid == "" {
		return out
	}
	if k.kind == kindDisclosure {
		out[mailer.Key(k.verWID, mailer.VerificationCode)] = k.email
		if k.variant != discPaper {
			out[mailer.Key(k.wid, mailer.StaffReminder, "package-check")] = "" // the staff check of the package
		}
		switch k.variant {
		case discHeldDocs:
			out[mailer.Key(k.wid, mailer.DisclosureDocuments, "documents", "1")] = k.email
			out[mailer.Key(k.wid, mailer.DisclosureReady)] = k.email
		case discHeld:
			out[mailer.Key(k.wid, mailer.DisclosureReady)] = k.email
		case discNone:
			out[mailer.Key(k.wid, mailer.DisclosureNothing)] = k.email
		case discPaper:
			out[mailer.Key(k.wid, mailer.StaffReminder, "paper-task")] = ""
		}
		return out
	}
	out[mailer.Key(k.wid, mailer.ApplicationReceived)] = k.email
	if k.verWID != "" {
		out[mailer.Key(k.verWID, mailer.VerificationCode)] = k.email
	}
	if k.issuedKind() {
		out[mailer.Key(k.wid, mailer.ReviewIssued)] = k.email
		out[mailer.Key(k.wid, mailer.ReviewIssued, "reseller")] = ""
	}
	if k.kind == kindRevoke && k.revWID != "" {
		out[mailer.Key(k.revWID, mailer.RevocationAccepted, "request", "1")] = ""
		// The reseller's keyCompromise is unproven: a staff task to confirm it.
		out[mailer.Key(k.revWID, mailer.StaffEscalation, "confirm-key-compromise")] = ""
		out[mailer.Key(k.revWID, mailer.RevocationDone, "subscriber")] = k.email
		out[mailer.Key(k.revWID, mailer.RevocationDone, "reseller")] = ""
	}
	return out
}

type emailRow struct {
	Key       string `db:"idempotency_key"`
	Notice    string `db:"notice"`
	Status    string `db:"status"`
	Attempts  int    `db:"attempts"`
	MessageID string `db:"message_id"`
	Error     string `db:"last_error"`
}

func check(ctx context.Context, s *stack.Stack, ks []*kase, drained bool, msgs []testenv.Email) *report {
	r := &report{}

	// 1. End states: as the harness saw them, and in PostgreSQL.
	appSt := map[string]string{}
	discSt := map[string]string{}
	verRes := map[string]string{}
	var rows []struct {
		ID string `db:"id"`
		St string `db:"st"`
	}
	qerr := s.Pool.SelectContext(ctx, &rows, `SELECT id, status AS st FROM applications`)
	for _, x := range rows {
		appSt[x.ID] = x.St
	}
	rows = nil
	if err := s.Pool.SelectContext(ctx, &rows, `SELECT id, state AS st FROM disclosure_requests WHERE delivered_at IS NOT NULL OR state <> 'delivered'`); err != nil && qerr == nil {
		qerr = err
	}
	for _, x := range rows {
		discSt[x.ID] = x.St
	}
	rows = nil
	if err := s.Pool.SelectContext(ctx, &rows, `SELECT id, result AS st FROM identity_verifications`); err != nil && qerr == nil {
		qerr = err
	}
	for _, x := range rows {
		verRes[x.ID] = x.St
	}
	var bad, badPG, badVer []string
	verified := 0
	for _, k := range ks {
		want := k.wantStatus()
		if !k.done || k.status != want {
			bad = append(bad, fmt.Sprintf("#%d %s: %q %s", k.i, k.kind, k.status, k.note))
		}
		pg := appSt[k.id]
		if k.kind == kindDisclosure {
			pg = discSt[k.id]
		}
		if k.id == "" || pg != want {
			badPG = append(badPG, fmt.Sprintf("#%d %s %s: %q", k.i, k.kind, k.id, pg))
		}
		if k.verWID != "" {
			id := strings.TrimPrefix(k.verWID, cases.TypeVerification+"/")
			if verRes[id] != "passed" {
				badVer = append(badVer, fmt.Sprintf("#%d %s %s: %q", k.i, k.kind, id, verRes[id]))
			} else {
				verified++
			}
		}
	}
	r.add("every case reached its expected end state", len(bad) == 0, "%d of %d wrong%s", len(bad), len(ks), listSome(bad))
	if qerr != nil {
		badPG = append(badPG, "query: "+qerr.Error())
	}
	r.add("… and PostgreSQL agrees (applications.status, disclosure_requests.state with delivered_at)", len(badPG) == 0,
		"%d wrong%s", len(badPG), listSome(badPG))
	r.add("every identity verification passed (identity_verifications)", len(badVer) == 0, "%d passed, %d wrong%s", verified, len(badVer), listSome(badVer))

	// 2. Certificates: exactly one per issued application, none for any
	// other (withdrawn, rejected, failed, expired, still open).
	var certs []struct {
		ID     string `db:"id"`
		Status string `db:"status"`
		N      int    `db:"n"`
	}
	var certBad []string
	issued, others := 0, 0
	if err := s.Pool.SelectContext(ctx, &certs, `SELECT a.id, a.status, count(c.serial) AS n FROM applications a
		LEFT JOIN certificates c ON c.application_id = a.id GROUP BY a.id, a.status`); err != nil {
		certBad = append(certBad, "query: "+err.Error())
	}
	for _, c := range certs {
		want := 0
		if c.Status == status.AppIssued {
			want = 1
			issued++
		} else {
			others++
		}
		if c.N != want {
			certBad = append(certBad, fmt.Sprintf("%s (%s): %d certificates", c.ID, c.Status, c.N))
		}
	}
	var orphans int
	_ = s.Pool.GetContext(ctx, &orphans, `SELECT count(*) FROM certificates c WHERE NOT EXISTS (SELECT 1 FROM applications a WHERE a.id = c.application_id)`)
	if orphans > 0 {
		certBad = append(certBad, fmt.Sprintf("%d certificates without an application", orphans))
	}
	r.add("exactly one certificate per issued application, none for any other", len(certBad) == 0,
		"%d issued, %d not issued, %d wrong%s", issued, others, len(certBad), listSome(certBad))

	// 3. Revocations: PostgreSQL, CRL shard, OCSP.
	var revBad []string
	revoked := 0
	crls := map[string]map[string]bool{} // issuer/shard -> serials
	for _, k := range ks {
		if k.kind != kindRevoke || k.serial == "" {
			continue
		}
		revoked++
		var row struct {
			Status string `db:"status"`
			Issuer string `db:"issuer"`
			Shard  int    `db:"crl_shard"`
		}
		if err := s.Pool.GetContext(ctx, &row, `SELECT status, issuer, crl_shard FROM certificates WHERE serial = $1`, k.serial); err != nil {
			revBad = append(revBad, k.serial+": "+err.Error())
			continue
		}
		if row.Status != "revoked" {
			revBad = append(revBad, k.serial+": status "+row.Status)
			continue
		}
		key := fmt.Sprintf("%s/%d", row.Issuer, row.Shard)
		if crls[key] == nil {
			crls[key] = map[string]bool{}
			c, err := s.Store.LatestCRL(ctx, row.Issuer, row.Shard)
			if err == nil {
				if rl, err := x509.ParseRevocationList(c.DER); err == nil {
					for _, e := range rl.RevokedCertificateEntries {
						crls[key][e.SerialNumber.Text(16)] = true
					}
				}
			}
		}
		sn, _ := new(big.Int).SetString(k.serial, 16)
		if sn == nil || !crls[key][sn.Text(16)] {
			revBad = append(revBad, k.serial+": not in CRL shard "+key)
			continue
		}
		if st, err := ocspStatus(s, row.Issuer, sn); err != nil || st != ocsp.Revoked {
			revBad = append(revBad, fmt.Sprintf("%s: OCSP status %d (%v)", k.serial, st, err))
		}
	}
	r.add("revoked: in PostgreSQL, in the CRL shard, OCSP revoked", len(revBad) == 0, "%d revoked, %d wrong%s", revoked, len(revBad), listSome(revBad))

	// 4. No failed, terminated or timed-out workflow; none of the cases'
	// workflows still running (visibility may lag a little: ask again).
	if resp, err := s.TC.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: "default",
		Query: `ExecutionStatus = "Failed" OR ExecutionStatus = "Terminated" OR ExecutionStatus = "TimedOut"`}); err == nil {
		r.add("no workflow failed, terminated or timed out", resp.GetCount() == 0, "%d", resp.GetCount())
	} else {
		r.add("no workflow failed, terminated or timed out", false, "count: %v", err)
	}
	runningQ := fmt.Sprintf(`ExecutionStatus = "Running" AND %s IN ("%s", "%s", "%s", "%s")`, cases.CaseType.GetName(),
		cases.TypeApplication, cases.TypeVerification, cases.TypeDisclosure, cases.TypeRevocation)
	var running int64 = -1
	var runErr error
	for i := 0; i < 10; i++ {
		resp, err := s.TC.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: "default", Query: runningQ})
		runErr = err
		if err == nil {
			running = resp.GetCount()
			if running == 0 {
				break
			}
		}
		sleepCtx(ctx, 3*time.Second)
	}
	r.add("no application, verification, disclosure or revocation workflow still running", running == 0, "%d running %v", running, errOrNil(runErr))

	// 5. Email.
	var log []emailRow
	if err := s.Pool.SelectContext(ctx, &log, `SELECT idempotency_key, notice, status, attempts, message_id, last_error FROM email_log`); err != nil {
		r.add("email_log readable", false, "%v", err)
	}
	var unsent []string
	for _, u := range log {
		if u.Status != "sent" {
			unsent = append(unsent, fmt.Sprintf("%s %s %s attempts=%d %s", u.Key, u.Notice, u.Status, u.Attempts, firstLine(u.Error)))
		}
	}
	r.add("email outbox drained (no pending or failed rows)", drained && len(unsent) == 0, "%d not sent%s", len(unsent), listSome(unsent))

	// MailDev, by Message-ID.
	copies := map[string]int{} // Message-ID -> physical copies
	msgNotice := map[string]string{}
	noID := 0
	for _, m := range msgs {
		id, _ := m.Headers["message-id"].(string)
		id = strings.Trim(strings.TrimSpace(id), "<>")
		if id == "" {
			noID++
			continue
		}
		copies[id]++
		n, _ := m.Headers["x-certdesk-notice"].(string)
		msgNotice[id] = n
	}

	// 5a. Every row: sent, Message-ID derived from its key, in MailDev.
	rowByID := map[string]emailRow{}
	var rowBad []string
	for _, u := range log {
		id := strings.Trim(u.MessageID, "<>")
		if u.Status != "sent" {
			continue // reported above
		}
		_, domain, _ := strings.Cut(id, "@")
		if want := strings.Trim(mailer.MessageIDFor(u.Key, domain), "<>"); id != want {
			rowBad = append(rowBad, fmt.Sprintf("%s: Message-ID %s, derived %s", u.Key, id, want))
			continue
		}
		rowByID[id] = u
		if copies[id] == 0 {
			rowBad = append(rowBad, fmt.Sprintf("%s: %s not in MailDev", u.Key, id))
		}
	}
	r.add("every email_log row is sent, with the Message-ID derived from its key, and is in MailDev", len(rowBad) == 0,
		"%d rows, %d wrong%s", len(log), len(rowBad), listSome(rowBad))

	// 5b. Every message in MailDev has its row, with the same notice.
	var stray []string
	for id, n := range copies {
		u, ok := rowByID[id]
		switch {
		case !ok:
			stray = append(stray, fmt.Sprintf("%s (%s, %d copies): no email_log row", id, msgNotice[id], n))
		case msgNotice[id] != u.Notice:
			stray = append(stray, fmt.Sprintf("%s: X-CertDesk-Notice %q, row %q", id, msgNotice[id], u.Notice))
		}
	}
	if noID > 0 {
		stray = append(stray, fmt.Sprintf("%d messages without a Message-ID", noID))
	}
	r.add("no message in MailDev without its email_log row", len(stray) == 0, "%d messages (%d distinct Message-IDs), %d wrong%s",
		len(msgs), len(copies), len(stray), listSome(stray))

	// 5c. Exactly one email per (case, notice, recipient part): the keys
	// each finished case must have, and no others under its workflows.
	owner := map[string]*kase{} // workflow ID -> case
	for _, k := range ks {
		for _, w := range []string{k.wid, k.verWID, k.revWID} {
			if w != "" {
				owner[w] = k
			}
		}
	}
	rowByKey := map[string]emailRow{}
	for _, u := range log {
		rowByKey[u.Key] = u
	}
	var keyBad []string
	checked, expectedN := 0, 0
	for _, k := range ks {
		if !k.done {
			continue // its end state is already a violation
		}
		checked++
		for key := range expectedKeys(k) {
			expectedN++
			u, ok := rowByKey[key]
			if !ok {
				keyBad = append(keyBad, fmt.Sprintf("#%d %s: no %s", k.i, k.kind, key))
			} else if u.Status != "sent" || copies[strings.Trim(u.MessageID, "<>")] == 0 {
				keyBad = append(keyBad, fmt.Sprintf("#%d %s: %s %s, not delivered", k.i, k.kind, key, u.Status))
			}
		}
	}
	otherRows := map[string]int{}
	for _, u := range log {
		wid, _, _ := strings.Cut(u.Key, "|")
		k := owner[wid]
		if k == nil {
			otherRows[u.Notice]++
			continue
		}
		if !k.done {
			continue
		}
		if _, ok := expectedKeys(k)[u.Key]; !ok {
			keyBad = append(keyBad, fmt.Sprintf("#%d %s: unexpected %s", k.i, k.kind, u.Key))
		}
	}
	r.add("exactly one email per (case, notice): each finished case has its kind's notices, no others", len(keyBad) == 0,
		"%d cases, %d notices expected, %d wrong%s", checked, expectedN, len(keyBad), listSome(keyBad))

	// 5d. The same from MailDev alone, by address: per subscriber or data
	// subject address and notice, as many distinct Message-IDs as cases
	// owe that address that notice (one, but a disclosure subject who is
	// also a subscriber gets both cases' notices).
	addrCases := map[string][]*kase{}
	for _, k := range ks {
		addrCases[strings.ToLower(k.email)] = append(addrCases[strings.ToLower(k.email)], k)
	}
	want := map[string]map[string]int{} // address -> notice -> count
	for addr, kk := range addrCases {
		all := true
		for _, k := range kk {
			all = all && k.done
		}
		if !all {
			continue
		}
		want[addr] = map[string]int{}
		for _, k := range kk {
			for key, to := range expectedKeys(k) {
				if to != "" {
					parts := strings.Split(key, "|")
					want[addr][parts[1]]++
				}
			}
		}
	}
	got := map[string]map[string]map[string]bool{} // address -> notice -> Message-IDs
	for _, m := range msgs {
		id, _ := m.Headers["message-id"].(string)
		n, _ := m.Headers["x-certdesk-notice"].(string)
		for _, t := range m.To {
			a := strings.ToLower(t.Address)
			if want[a] == nil {
				continue
			}
			if got[a] == nil {
				got[a] = map[string]map[string]bool{}
			}
			if got[a][n] == nil {
				got[a][n] = map[string]bool{}
			}
			got[a][n][strings.Trim(id, "<>")] = true
		}
	}
	var addrBad []string
	pairs := 0
	for a, wn := range want {
		seen := map[string]bool{}
		for n, c := range wn {
			seen[n] = true
			pairs++
			if g := len(got[a][n]); g != c {
				addrBad = append(addrBad, fmt.Sprintf("%s %s: %d distinct, want %d", a, n, g, c))
			}
		}
		for n, ids := range got[a] {
			if !seen[n] {
				addrBad = append(addrBad, fmt.Sprintf("%s %s: %d unexpected", a, n, len(ids)))
			}
		}
	}
	sort.Strings(addrBad)
	r.add("MailDev: one distinct Message-ID per (subscriber address, notice), no other notices", len(addrBad) == 0,
		"%d addresses, %d (address, notice) pairs, %d wrong%s", len(want), pairs, len(addrBad), listSome(addrBad))

	// Figures.
	extra, dupMsgs := 0, 0
	dupNotices := map[string]int{}
	for id, n := range copies {
		if n > 1 {
			extra += n - 1
			dupMsgs++
			dupNotices[msgNotice[id]] += n - 1
		}
	}
	r.figure("duplicate copies: %d extra physical copies of %d messages%s — a send repeated after a kill -9 between the SMTP server's 250 and the email_log update; each copy carries the key's Message-ID, so receivers drop it (at-least-once delivery, not a second email)",
		extra, dupMsgs, mapSome(dupNotices))
	if len(otherRows) > 0 {
		r.figure("email_log rows outside the cases (staff notices of other workflows): %s", mapSome(otherRows))
	}

	// 6. The audit chain.
	cmd := exec.CommandContext(ctx, filepath.Join(s.AppBin, "worker"), "verify-audit")
	cmd.Env = os.Environ()
	for k, v := range s.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	r.add("audit hash chain verifies", err == nil, "%s", firstLine(strings.TrimSpace(string(out))))
	return r
}

func errOrNil(err error) string {
	if err == nil {
		return ""
	}
	return "(" + err.Error() + ")"
}

func mapSome(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(parts)
	return " (" + strings.Join(parts, " ") + ")"
}

func listSome(xs []string) string {
	if len(xs) == 0 {
		return ""
	}
	if len(xs) > 5 {
		return ": " + strings.Join(xs[:5], "; ") + fmt.Sprintf("; … (%d more)", len(xs)-5)
	}
	return ": " + strings.Join(xs, "; ")
}

// ocspStatus asks the starter's OCSP endpoint, as a relying party would.
func ocspStatus(s *stack.Stack, issuerID string, serial *big.Int) (int, error) {
	iss, ok := s.CA.Issuer(issuerID)
	if !ok {
		return -1, fmt.Errorf("unknown issuer %s", issuerID)
	}
	der, err := ocsp.CreateRequest(&x509.Certificate{SerialNumber: serial}, iss.Certificate(), nil)
	if err != nil {
		return -1, err
	}
	resp, err := http.Get(s.StarterURL + "/ocsp/" + base64.StdEncoding.EncodeToString(der))
	if err != nil {
		return -1, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r, err := ocsp.ParseResponse(b, iss.Certificate())
	if err != nil {
		return -1, err
	}
	return r.Status, nil
}

func printReport(w io.Writer, ks []*kase, f *faultLog, st *staffStats, r *report, took time.Duration) {
	byKind := map[string]map[string]int{}
	total := map[string]int{}
	for _, k := range ks {
		kind := k.kind
		if byKind[kind] == nil {
			byKind[kind] = map[string]int{}
		}
		s := k.status
		if s == "" {
			s = "(none)"
		}
		byKind[kind][s]++
		total[kind]++
	}
	fmt.Fprintf(w, "\nchaos: %d cases in %s\n\ncases:\n", len(ks), took.Round(time.Second))
	for _, kind := range kinds {
		parts := []string{}
		for s, n := range byKind[kind] {
			parts = append(parts, s+"="+strconv.Itoa(n))
		}
		sort.Strings(parts)
		fmt.Fprintf(w, "  %-11s %3d  %s\n", kind, total[kind], strings.Join(parts, " "))
	}
	variants := map[string]int{}
	pkg := 0
	revoked := 0
	for _, k := range ks {
		if k.kind == kindDisclosure {
			variants[k.variant]++
			if k.pkgOK {
				pkg++
			}
		}
		if k.revSt == workflows.RevRevoked {
			revoked++
		}
	}
	fmt.Fprintf(w, "  disclosure variants%s; packages downloaded and checked %d; revocations revoked %d\n", mapSome(variants), pkg, revoked)
	fmt.Fprintf(w, "\nstaff and subject actions: %d Updates applied (%d on the first attempt), %d attempts failed transiently (timeout or unavailable), %d refused by the validator, %d retries recognised as already applied; %d one-time codes read from MailDev\n",
		st.updates.Load(), st.firstTry.Load(), st.transient.Load(), st.rejected.Load(), st.recognised.Load(), st.codes.Load())
	fmt.Fprintf(w, "\nfaults: worker kills %d, Temporal restarts %d, PostgreSQL restarts %d, MailDev outages %d, harness errors %d\n",
		f.counts["worker"], f.counts["temporal"], f.counts["postgres"], f.counts["maildev"], f.counts["error"])
	for _, e := range f.events {
		if !strings.Contains(e, "worker killed") {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
	fmt.Fprintln(w, "\ninvariants:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, i := range r.inv {
		res := "ok"
		if !i.ok {
			res = "VIOLATED"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", res, i.name, i.detail)
	}
	tw.Flush()
	if len(r.figures) > 0 {
		fmt.Fprintln(w, "\nfigures (not invariants):")
		for _, f := range r.figures {
			fmt.Fprintf(w, "  %s\n", f)
		}
	}
}
