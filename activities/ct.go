package activities

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"

	"certdesk/internal/config"
	"certdesk/internal/ct"
	"certdesk/internal/pki"
	"certdesk/internal/store"
)

// CTSubmitStore is what the submitter reads and writes.
type CTSubmitStore interface {
	CTStore
	SaveSCT(ctx context.Context, serial string, sct store.SCT) error
}

// CTActivities submit precertificates to Certificate Transparency logs.
// They hold no CA key: they run on the general task queue, with the public
// CA certificates (the issuer is the second certificate of each
// submission) and the log list.
type CTActivities struct {
	Store     CTSubmitStore
	CA        *pki.PublicCA
	Logs      *CTLogs
	Submitter *ct.Submitter
	Log       *slog.Logger
}

// NewCT builds the submitter from cfg: nil, nil without a log list (the
// workflow then never reaches it: the signer refuses the precertificate).
func NewCT(cfg *config.Config, st *store.Store, log *slog.Logger) (*CTActivities, error) {
	logs, err := LoadCTLogs(cfg.CTLogList, cfg.CTPolicy)
	if err != nil || logs == nil {
		return nil, err
	}
	ca, err := pki.ReadPublicCA(cfg.CADir)
	if err != nil {
		return nil, fmt.Errorf("CT submitter: %w", err)
	}
	// A list that cannot log the longest TLS certificate leaves such
	// applications waiting at the precertificate: say so at start, where
	// the operator looks, not only in each activity's retry.
	now := time.Now()
	if _, err := logs.Policy.Candidates(logs.List, now, now.Add(pki.TLSMaxValidityAt(now)), now); err != nil {
		log.Warn("CT: the log list cannot satisfy the CT policy for the longest TLS validity; such applications will wait at the precertificate until CERTDESK_CT_LOG_LIST lists enough usable logs",
			"list", cfg.CTLogList, "error", err)
	}
	return &CTActivities{Store: st, CA: ca, Logs: logs, Log: log,
		Submitter: &ct.Submitter{Timeout: 20 * time.Second, UserAgent: "CertDesk CT submitter"}}, nil
}

// SubmitPrecertInput names the precertificate to log.
type SubmitPrecertInput struct {
	ApplicationID string
	Serial        string
}

// SubmitPrecertResult says which logs returned an SCT.
type SubmitPrecertResult struct {
	Required int
	Logs     []string
}

// SubmitPrecertificate gathers SCTs for the stored precertificate until
// they satisfy the CT policy: it submits to the candidate logs that have
// not answered yet, a few at a time, verifies each SCT against the log's
// key (ct.Submitter) and stores it before the next. A log that fails is
// skipped for the next one; when the candidates run out the activity fails
// (retryable, naming every log's error) and Temporal tries again later. A
// retry asks only the logs whose SCT is missing.
func (a *CTActivities) SubmitPrecertificate(ctx context.Context, in SubmitPrecertInput) (SubmitPrecertResult, error) {
	c, err := a.Store.GetCertificate(ctx, in.Serial)
	if err != nil {
		return SubmitPrecertResult{}, storeErr(err, "precertificate "+in.Serial)
	}
	if c.ApplicationID != in.ApplicationID || c.CTState == store.CTNone {
		return SubmitPrecertResult{}, nonRetryable(ErrTypeInvalid, "certificate "+c.Serial+" is not the precertificate of application "+in.ApplicationID, nil)
	}
	issuer, ok := a.CA.Issuers[c.Issuer]
	if !ok {
		return SubmitPrecertResult{}, nonRetryable(ErrTypeInvalid, "issuing CA "+c.Issuer+" is not in the CA directory", nil)
	}
	chain := [][]byte{c.PrecertDER, issuer.Raw}
	have := map[[32]byte]ct.SCT{}
	rows, err := a.Store.ListSCTs(ctx, c.Serial)
	if err != nil {
		return SubmitPrecertResult{}, err
	}
	for _, r := range rows {
		if s, ok := toSCT(r); ok {
			if l := a.Logs.List.ByID(s.LogID); l != nil && ct.Verify(l, chain, s) == nil {
				have[s.LogID] = s
			}
		}
	}
	result := func() SubmitPrecertResult {
		res := SubmitPrecertResult{Required: a.Logs.Policy.Required(c.NotBefore, c.NotAfter)}
		for id := range have {
			res.Logs = append(res.Logs, a.Logs.List.ByID(id).Description)
		}
		return res
	}
	satisfied := func() error {
		scts := make([]ct.SCT, 0, len(have))
		for _, s := range have {
			scts = append(scts, s)
		}
		return a.Logs.Policy.Satisfied(a.Logs.List, scts, c.NotBefore, c.NotAfter)
	}
	if satisfied() == nil {
		return result(), nil
	}
	cands, err := a.Logs.Policy.Candidates(a.Logs.List, c.NotBefore, c.NotAfter, time.Now())
	if err != nil {
		return SubmitPrecertResult{}, fmt.Errorf("CT: %w (fix the log list CERTDESK_CT_LOG_LIST)", err)
	}
	var pending []*ct.Log
	for _, l := range cands {
		if _, ok := have[l.ID]; !ok {
			pending = append(pending, l)
		}
	}
	var failures []string
	for len(pending) > 0 {
		n := max(1, result().Required-len(have))
		wave := pending[:min(n, len(pending))]
		pending = pending[len(wave):]
		got, errs := a.submitWave(ctx, wave, chain)
		for i, l := range wave {
			if errs[i] != nil {
				failures = append(failures, errs[i].Error())
				a.Log.Warn("CT log did not return an SCT", "log", l.Description, "serial", c.Serial, "error", errs[i])
				continue
			}
			if err := a.Store.SaveSCT(ctx, c.Serial, store.SCT{LogID: got[i].LogID[:], Timestamp: got[i].Time(), Raw: got[i].Raw}); err != nil {
				return SubmitPrecertResult{}, err
			}
			have[l.ID] = got[i]
		}
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx, len(have))
		}
		if satisfied() == nil {
			return result(), nil
		}
	}
	return SubmitPrecertResult{}, fmt.Errorf("CT: %d SCTs, the policy needs more (%v); failed logs: %s",
		len(have), satisfied(), strings.Join(failures, "; "))
}

// submitWave submits chain to each log at once.
func (a *CTActivities) submitWave(ctx context.Context, logs []*ct.Log, chain [][]byte) ([]ct.SCT, []error) {
	got := make([]ct.SCT, len(logs))
	errs := make([]error, len(logs))
	var wg sync.WaitGroup
	for i, l := range logs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = a.Submitter.Submit(ctx, l, chain)
		}()
	}
	wg.Wait()
	return got, errs
}
