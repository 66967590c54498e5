package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"certdesk/internal/api"
	"certdesk/internal/product"
	"certdesk/internal/store"
)

// maxEABLifetime bounds expires_at: credentials are for a customer about
// to set up a client, not standing secrets.
const maxEABLifetime = 366 * 24 * time.Hour

// eabRequest is the body of POST /v1/acme/eab.
type eabRequest struct {
	Products  []string   `json:"products"`
	ExpiresAt *time.Time `json:"expires_at"`
	Reference string     `json:"reference"`
	// OrganizationFrom is the id of the reseller's issued server-ov
	// application whose verified organisation the credentials are bound to
	// (issue 16): the account may then order server-ov for it.
	OrganizationFrom string `json:"organization_from"`
}

// Validate wants one or more distinct products, an expiry in the future
// (within maxEABLifetime) if any, and a short reference.
func (r *eabRequest) Validate(now time.Time) *api.Validation {
	var v api.Validation
	if v.Required("products", len(r.Products) == 0) {
		for i, p := range r.Products {
			if !product.Valid(p) || slices.Index(r.Products, p) != i {
				v.Add("products", "one_of", "distinct values out of "+strings.Join(product.All(), ", "))
				break
			}
		}
	}
	if r.ExpiresAt != nil && (!r.ExpiresAt.After(now) || r.ExpiresAt.Sub(now) > maxEABLifetime) {
		v.Add("expires_at", "out_of_range", "must be in the future and at most 366 days ahead")
	}
	textField(&v, "reference", r.Reference, 200, false)
	if r.OrganizationFrom != "" {
		switch {
		case !idPattern.MatchString(r.OrganizationFrom):
			v.Add("organization_from", "invalid", "an application id (app_…)")
		case !slices.Contains(r.Products, product.ServerOV):
			v.Add("organization_from", "needs_product", "binds an organisation for "+product.ServerOV+" orders: list "+product.ServerOV+" in products")
		}
	}
	return &v
}

// eabResponse is a credential as the reseller sees it. HMAC is set only in
// the answer that made it (and in its idempotent replay while unspent).
type eabResponse struct {
	KID       string     `json:"kid"`
	HMAC      string     `json:"hmac,omitempty"`
	Status    string     `json:"status"`
	Products  []string   `json:"products"`
	Reference string     `json:"reference"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	AccountID string     `json:"account_id,omitempty"`
	// OrganizationFrom is the application whose verified organisation the
	// credentials are bound to.
	OrganizationFrom string `json:"organization_from,omitempty"`
}

// organizationProblem is the 422 for an organization_from that names no
// verified organisation of the reseller, or nil for any other err.
func organizationProblem(err error, from string) *api.Problem {
	var v api.Validation
	switch {
	case from == "":
	case errors.Is(err, store.ErrNotFound):
		v.Add("organization_from", "not_found", "no such application managed by this reseller")
	case errors.Is(err, store.ErrNotVerified):
		v.Add("organization_from", "not_verified", strings.TrimPrefix(err.Error(), store.ErrNotVerified.Error()+": "))
	}
	return v.Problem()
}

// eabStatus is unused, used, expired or revoked.
func eabStatus(c store.EABCredential, now time.Time) string {
	switch {
	case c.RevokedAt != nil:
		return "revoked"
	case c.UsedAt != nil:
		return "used"
	case c.ExpiresAt != nil && !c.ExpiresAt.After(now):
		return "expired"
	}
	return "unused"
}

func eabJSON(c store.EABCredential, now time.Time) eabResponse {
	return eabResponse{KID: c.KID, Status: eabStatus(c, now), Products: c.Products, Reference: c.Reference,
		ExpiresAt: c.ExpiresAt, CreatedAt: c.CreatedAt.UTC(), RevokedAt: c.RevokedAt, AccountID: c.AccountID,
		OrganizationFrom: c.OrganizationFrom}
}

// createEAB makes single-use External Account Binding credentials (RFC 8555
// §7.3.4) for one of the reseller's customers. The HMAC key is in this
// answer only; the store keeps it sealed, and the idempotent copy of the
// answer is kept without it (eabReplay puts it back).
func (s *Server) createEAB(w http.ResponseWriter, r *http.Request) {
	var req eabRequest
	if p := api.DecodeJSON(bodyOf(r), &req, false); p != nil {
		s.problem(w, r, p)
		return
	}
	if p := req.Validate(s.now()).Problem(); p != nil {
		s.problem(w, r, p)
		return
	}
	c, err := s.st.CreateEABCredentialWith(r.Context(), resellerOf(r), store.EABOptions{
		Products: req.Products, Reference: req.Reference, ExpiresAt: req.ExpiresAt, OrganizationFrom: req.OrganizationFrom})
	if p := organizationProblem(err, req.OrganizationFrom); p != nil {
		s.problem(w, r, p)
		return
	}
	if err != nil {
		s.internalError(w, r, "create EAB credential", err)
		return
	}
	resp := eabJSON(c, s.now())
	kept, _ := json.Marshal(resp)
	storeInstead(r, append(kept, '\n'))
	resp.HMAC = base64.RawURLEncoding.EncodeToString(c.HMACKey)
	w.Header().Set("Location", "/v1/acme/eab/"+c.KID)
	writeJSON(w, http.StatusCreated, resp)
}

// eabReplay puts the HMAC key, read from the sealed store, back into an
// idempotent replay of createEAB while the credential is unused.
func (s *Server) eabReplay(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bw := &bufferWriter{header: http.Header{}}
		next.ServeHTTP(bw, r)
		body := bw.buf.Bytes()
		if bw.header.Get("Idempotent-Replayed") == "true" && bw.code == http.StatusCreated {
			var resp eabResponse
			if json.Unmarshal(body, &resp) == nil {
				if c, err := s.st.GetEABCredential(r.Context(), resp.KID); err == nil && c.ResellerID == resellerOf(r) {
					resp = eabJSON(c, s.now())
					if resp.Status == "unused" {
						resp.HMAC = base64.RawURLEncoding.EncodeToString(c.HMACKey)
					}
					b, _ := json.Marshal(resp)
					body = append(b, '\n')
				}
			}
		}
		for k, v := range bw.header {
			w.Header()[k] = v
		}
		if bw.code == 0 {
			bw.code = http.StatusOK
		}
		w.WriteHeader(bw.code)
		_, _ = w.Write(body)
	})
}

// bufferWriter holds an answer back so a wrapper can rewrite it.
type bufferWriter struct {
	header http.Header
	code   int
	buf    bytes.Buffer
}

func (w *bufferWriter) Header() http.Header { return w.header }
func (w *bufferWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *bufferWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.buf.Write(b)
}

var kidPattern = regexp.MustCompile(`^eab_[A-Za-z0-9_-]{1,64}$`)

// revokeEAB revokes a credential of the reseller and deactivates the ACME
// account made with it: its requests are then refused (unauthorized).
// Revoking again answers the same.
func (s *Server) revokeEAB(w http.ResponseWriter, r *http.Request) {
	kid := r.PathValue("kid")
	if !kidPattern.MatchString(kid) {
		s.notFound(w, r, "EAB credential")
		return
	}
	c, err := s.st.RevokeEABCredential(r.Context(), resellerOf(r), kid)
	if errors.Is(err, store.ErrNotFound) {
		s.notFound(w, r, "EAB credential")
		return
	}
	if err != nil {
		s.internalError(w, r, "revoke EAB credential", err)
		return
	}
	writeJSON(w, http.StatusOK, eabJSON(c, s.now()))
}
