package httpapi

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"certdesk/activities"
	"certdesk/internal/api"
	"certdesk/internal/codec"
	"certdesk/internal/store"
)

// maxCodecBody bounds a codec request: the UI decodes a page of history at
// once, which can exceed the API's 1 MiB.
const maxCodecBody = 8 << 20

var staffIDPattern = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)

// staffOnly admits requests bearing a personal staff token (Authorization:
// Bearer, as the `temporal` CLI sends TEMPORAL_CODEC_AUTH or --codec-auth)
// or a staff session cookie (what the Temporal Web UI sends with "include
// cross-origin credentials"; see /codec/session), and adds the CORS headers
// the UI needs. The staff id in the access log (O8) is always the one the
// credential proves, never a header the caller chose. The shared
// CERTDESK_STAFF_TOKEN, when set, still admits scripts but is logged as
// "staff-token" (nobody in particular).
func (s *Server) staffOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.cors(w, r)
		if !s.codecEnabled() {
			s.problem(w, r, api.New(http.StatusServiceUnavailable, api.TypeUnavailable,
				"the codec endpoints are disabled: set CERTDESK_CODEC_KEY and add staff with `starter staff add`"))
			return
		}
		staff, refused := "", ""
		if tok, ok := bearer(r); ok {
			switch id, err := s.authenticateStaff(r.Context(), tok); {
			case err == nil:
				staff = id
			case errors.Is(err, ErrStaffRefused):
				refused = "this staff token is unknown or its staff member is disabled"
			default:
				s.internalError(w, r, "authenticate staff", err)
				return
			}
		} else if c, err := r.Cookie(staffCookie); err == nil {
			if id, ok := s.openSession(c.Value); ok {
				active, err := s.staffActive(r.Context(), id)
				if err != nil {
					s.internalError(w, r, "check staff session", err)
					return
				}
				if active {
					staff = id
				} else {
					refused = "this staff member is disabled"
				}
			}
		}
		if staff == "" {
			if !s.allow(w, r, s.publicLimiter, s.clientIP(r)) {
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="certdesk-staff"`)
			if refused == "" {
				refused = "send your personal staff token as Authorization: Bearer <token> (TEMPORAL_CODEC_AUTH), or sign in at /codec/session"
			}
			s.problem(w, r, api.New(http.StatusUnauthorized, api.TypeUnauthorized, refused))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxStaff, staff)))
	})
}

func (s *Server) codecEnabled() bool {
	return s.codec != nil && (s.staff != nil || len(s.cfg.StaffToken) >= 16)
}

// authenticateStaff returns the staff id a bearer token proves.
func (s *Server) authenticateStaff(ctx context.Context, tok string) (string, error) {
	if len(s.cfg.StaffToken) >= 16 && s.staffTokenOK(tok) {
		return sharedStaffID, nil
	}
	if s.staff == nil {
		return "", ErrStaffRefused
	}
	return s.staff.Authenticate(ctx, tok)
}

// staffActive: may a signed-in staff member still act?
func (s *Server) staffActive(ctx context.Context, id string) (bool, error) {
	if s.staff == nil {
		return false, nil
	}
	return s.staff.Active(ctx, id)
}

// sharedStaffID is how the shared CERTDESK_STAFF_TOKEN appears in the access
// log: it proves no person, so no person is named.
const sharedStaffID = "staff-token"

func (s *Server) staffTokenOK(tok string) bool {
	want := sha256.Sum256([]byte(s.cfg.StaffToken))
	got := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(want[:], got[:]) == 1
}

// Staff sessions for the Web UI: a cookie "<base64url(staff|expiry)>.<mac>"
// signed with the server's session key (derived from CERTDESK_STAFF_TOKEN
// when set, else random per process). Each request re-checks that the staff
// member is still active. HttpOnly, SameSite=Lax, Path=/codec: sent by the UI's
// cross-origin fetch when UI and starter are the same site (same host, or
// subdomains of one domain), never by cross-site forms.
const (
	staffCookie     = "certdesk_staff"
	staffSessionTTL = 8 * time.Hour
)

func (s *Server) sessionMAC(payload string) []byte {
	m := hmac.New(sha256.New, s.sessionKey)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

func (s *Server) sealSession(staff string, exp time.Time) string {
	payload := staff + "|" + strconv.FormatInt(exp.Unix(), 10)
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(s.sessionMAC(payload))
}

// openSession returns the staff id of a valid, unexpired session cookie.
func (s *Server) openSession(v string) (string, bool) {
	p64, m64, ok := strings.Cut(v, ".")
	if !ok {
		return "", false
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p64)
	mac, err2 := base64.RawURLEncoding.DecodeString(m64)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, s.sessionMAC(string(payload))) {
		return "", false
	}
	staff, exp, ok := strings.Cut(string(payload), "|")
	n, err := strconv.ParseInt(exp, 10, 64)
	if !ok || err != nil || s.now().Unix() > n || !staffIDPattern.MatchString(staff) {
		return "", false
	}
	return staff, true
}

const sessionForm = `<!doctype html>
<html lang="en"><meta charset="utf-8"><title>CertDesk codec sign-in</title>
<body style="font-family:sans-serif;max-width:36em;margin:3em auto">
<h1>CertDesk codec sign-in</h1>
<p>Sign in so the Temporal Web UI can decrypt workflow payloads through this codec server.
Then, in the UI's codec settings, set the endpoint to <code>%s/codec</code> and turn on
"include cross-origin credentials". Every decode is recorded in the staff access log under your staff id.</p>
<form method="post" action="/codec/session">
<p><label>Your personal staff token (from <code>starter staff add</code>) <input name="token" type="password" required></label></p>
<p><button>Sign in for 8 hours</button></p>
</form>
</body></html>
`

// codecSessionForm serves the sign-in form.
func (s *Server) codecSessionForm(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
	w.Header().Set("X-Frame-Options", "DENY")
	_, _ = fmt.Fprintf(w, sessionForm, html.EscapeString(s.cfg.PublicBaseURL))
}

// codecSession checks the staff token and sets the session cookie.
func (s *Server) codecSession(w http.ResponseWriter, r *http.Request) {
	if !s.codecEnabled() {
		s.problem(w, r, api.New(http.StatusServiceUnavailable, api.TypeUnavailable, "the codec endpoints are disabled"))
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		s.problem(w, r, api.New(http.StatusUnsupportedMediaType, api.TypeUnsupportedMedia, "post the sign-in form"))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		s.problem(w, r, api.New(http.StatusBadRequest, api.TypeMalformedRequest, "the form could not be read"))
		return
	}
	// Only a personal token signs in: the session names whom it proves. A
	// staff_id field (the old form) must agree with it.
	staff, err := "", error(nil)
	if s.staff != nil {
		staff, err = s.staff.Authenticate(r.Context(), r.PostForm.Get("token"))
	} else {
		err = ErrStaffRefused
	}
	if err == nil {
		if claimed := r.PostForm.Get("staff_id"); claimed != "" && claimed != staff {
			err = ErrStaffRefused
		}
	}
	if err != nil && !errors.Is(err, ErrStaffRefused) {
		s.internalError(w, r, "authenticate staff", err)
		return
	}
	if err != nil || !staffIDPattern.MatchString(staff) {
		if !s.allow(w, r, s.publicLimiter, s.clientIP(r)) {
			return
		}
		s.problem(w, r, api.New(http.StatusUnauthorized, api.TypeUnauthorized, "this is not the personal token of an active staff member"))
		return
	}
	exp := s.now().Add(staffSessionTTL)
	http.SetCookie(w, &http.Cookie{Name: staffCookie, Value: s.sealSession(staff, exp), Path: "/codec",
		Expires: exp, MaxAge: int(staffSessionTTL / time.Second), HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: r.TLS != nil || strings.HasPrefix(s.cfg.PublicBaseURL, "https://")})
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = fmt.Fprintf(w, "signed in as %s until %s; the Temporal UI can now use %s/codec\n", staff, exp.UTC().Format(time.RFC3339), s.cfg.PublicBaseURL)
}

// uiOrigin is the origin of the Temporal Web UI, the only origin CORS admits.
func (s *Server) uiOrigin() string {
	u, err := url.Parse(s.cfg.TemporalUIURL)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// cors answers the Temporal UI's origin only.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	w.Header().Add("Vary", "Origin")
	if origin == "" || origin != s.uiOrigin() {
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Namespace")
	h.Set("Access-Control-Max-Age", "600")
}

// codecPreflight answers CORS preflight requests of the Temporal UI.
func (s *Server) codecPreflight(w http.ResponseWriter, r *http.Request) {
	s.cors(w, r)
	if w.Header().Get("Access-Control-Allow-Origin") == "" {
		s.problem(w, r, api.New(http.StatusForbidden, api.TypeForbidden, "this origin may not use the codec; set CERTDESK_TEMPORAL_UI_URL to the UI's address"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// readPayloads reads the remote codec protocol's {"payloads": [...]}.
func (s *Server) readPayloads(w http.ResponseWriter, r *http.Request) ([]*commonpb.Payload, bool) {
	body, p := api.ReadBody(w, r, maxCodecBody)
	if p == nil {
		p = api.CheckJSONContentType(r, len(body), false)
	}
	if p != nil {
		s.problem(w, r, p)
		return nil, false
	}
	var in commonpb.Payloads
	if err := protojson.Unmarshal(body, &in); err != nil {
		s.problem(w, r, api.New(http.StatusBadRequest, api.TypeMalformedRequest, `send {"payloads": [{"metadata": {...}, "data": "<base64>"}]}`))
		return nil, false
	}
	return in.Payloads, true
}

func writePayloads(w http.ResponseWriter, ps []*commonpb.Payload) {
	b, err := protojson.Marshal(&commonpb.Payloads{Payloads: ps})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}

func (s *Server) codecEncode(w http.ResponseWriter, r *http.Request) {
	ps, ok := s.readPayloads(w, r)
	if !ok {
		return
	}
	out, err := s.codec.Encode(ps)
	if err != nil {
		s.problem(w, r, api.New(http.StatusBadRequest, api.TypeMalformedRequest, "the payloads could not be encoded"))
		return
	}
	writePayloads(w, out)
}

// codecDecode decrypts payloads for a staff tool and records the access in
// the staff access log (O8): who (the authenticated staff id),
// whose data (the subscriber and case ids found in the payloads, never the
// data itself), through which channel.
func (s *Server) codecDecode(w http.ResponseWriter, r *http.Request) {
	ps, ok := s.readPayloads(w, r)
	if !ok {
		return
	}
	out, err := s.codec.Decode(ps)
	if err != nil {
		s.problem(w, r, api.New(http.StatusBadRequest, api.TypeMalformedRequest, err.Error()))
		return
	}
	decrypted := 0
	refs := map[string]bool{}
	for i, p := range ps {
		if codec.IsEncrypted(p) {
			decrypted++
			collectRefs(out[i].GetData(), refs)
		}
	}
	if decrypted > 0 {
		if err := s.recordDecode(r, decrypted, refs); err != nil {
			// No record, no data (O8).
			s.internalError(w, r, "record staff access", err)
			return
		}
	}
	writePayloads(w, out)
}

func (s *Server) recordDecode(r *http.Request, n int, refs map[string]bool) error {
	staff, _ := r.Context().Value(ctxStaff).(string)
	if staff == "" {
		staff = "staff-token"
	}
	channel := "temporal codec /codec/decode (CLI or API)"
	if r.Header.Get("Origin") != "" {
		channel = "temporal codec /codec/decode (Web UI " + s.uiOrigin() + ")"
	}
	ns := r.Header.Get("X-Namespace")
	if !staffIDPattern.MatchString(ns) {
		ns = s.cfg.TemporalNamespace
	}
	list := make([]string, 0, len(refs))
	for ref := range refs {
		list = append(list, ref)
	}
	sort.Strings(list)
	if len(list) == 0 {
		list = []string{"unattributed:temporal-payload"}
	}
	if len(list) > 50 {
		list = list[:50]
	}
	now := s.now()
	for _, ref := range list {
		if err := s.st.RecordStaffAccess(r.Context(), store.StaffAccess{
			StaffID: staff, PersonRef: ref, Channel: channel, AccessedAt: now,
			Purpose: "decoded " + strconv.Itoa(n) + " Temporal payload(s) in namespace " + ns + " (request " + requestIDOf(r) + ")",
		}); err != nil {
			return err
		}
	}
	return nil
}

// collectRefs finds who a decoded JSON payload is about, by the ids
// CertDesk's payloads carry: SubscriberID, SubjectRef, and ApplicationID
// (whose subscriber id is derived from it).
func collectRefs(data []byte, refs map[string]bool) {
	var v any
	if json.Unmarshal(data, &v) != nil {
		return
	}
	var walk func(any, int)
	walk = func(v any, depth int) {
		if depth > 4 {
			return
		}
		switch t := v.(type) {
		case map[string]any:
			for k, x := range t {
				str, _ := x.(string)
				switch {
				case str == "" || len(str) > 128:
				case k == "SubscriberID" || k == "SubjectRef":
					refs[str] = true
				case k == "ApplicationID":
					refs[activities.SubscriberIDFor(str)] = true
				}
				walk(x, depth+1)
			}
		case []any:
			for _, x := range t {
				walk(x, depth+1)
			}
		}
	}
	walk(v, 0)
}

func requestIDOf(r *http.Request) string {
	id, _ := r.Context().Value(ctxRequestID).(string)
	return id
}
