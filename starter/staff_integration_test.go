//go:build integration

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"certdesk/internal/codec"
	"certdesk/internal/pii"
	"certdesk/internal/store"
	"certdesk/internal/testenv"
	"certdesk/starter/httpapi"
)

// TestStaffCommand runs `starter staff add`, `list` and `disable` on a real
// database and checks the printed token against the codec endpoints and the
// sign-in: the personal token authenticates and the access log names its
// staff id (not a self-asserted X-Staff-Id), a disabled member's token and
// session are refused, the shared-token-plus-claimed-id sign-in is gone.
func TestStaffCommand(t *testing.T) {
	pool, _ := testenv.NewDatabase(t)
	k1, _ := pii.GenerateKey()
	ring, err := pii.ParseKeyRing("k1:" + k1)
	if err != nil {
		t.Fatal(err)
	}
	bk, _ := pii.GenerateKey()
	bidx, err := pii.ParseBlindIndexKey(bk)
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(pool, ring, bidx)
	ck := make([]byte, 32)
	_, _ = rand.Read(ck)
	cdc, err := codec.ParseKeys(base64.StdEncoding.EncodeToString(ck))
	if err != nil {
		t.Fatal(err)
	}
	shared := "shared-staff-token-0123456789"
	api, err := httpapi.New(httpapi.Deps{DB: pool, Store: st, Codec: cdc,
		Config: httpapi.Config{StaffToken: shared, TemporalNamespace: "default"}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(api.Handler())
	defer ts.Close()
	ctx := context.Background()

	run := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := staffAdmin(ctx, st, args, &out); err != nil {
			t.Fatalf("staff %v: %v", args, err)
		}
		return out.String()
	}
	out := run("add", "--id", "st_alice", "--name", "Alice Example")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	tok, ok := strings.CutPrefix(lines[len(lines)-1], "token=")
	if !ok || !strings.HasPrefix(tok, "cds_") {
		t.Fatalf("staff add printed %q", out)
	}
	if err := staffAdmin(ctx, st, []string{"add", "--id", "st_alice", "--name", "Again"}, &bytes.Buffer{}); err == nil {
		t.Fatal("adding an existing staff id again succeeded")
	}
	list := run("list")
	if !strings.Contains(list, "st_alice\tAlice Example") || !strings.Contains(list, "active") || strings.Contains(list, tok) {
		t.Fatalf("staff list: %q", list)
	}

	// An encrypted payload naming a subscriber, so a decode is logged.
	ref := "sub_staff" + strings.ToLower(base64.RawURLEncoding.EncodeToString(ck[:4]))
	enc, err := cdc.Encode([]*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")},
		Data: []byte(`{"SubscriberID":"` + ref + `"}`)}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := protojson.Marshal(&commonpb.Payloads{Payloads: enc})
	decode := func(auth, cookie, staffHeader string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", ts.URL+"/codec/decode", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		if staffHeader != "" {
			req.Header.Set("X-Staff-Id", staffHeader)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 400 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
			t.Errorf("refusal is %q, not problem+json", resp.Header.Get("Content-Type"))
		}
		return resp.StatusCode
	}
	loggedAs := func() map[string]bool {
		t.Helper()
		acc, err := st.ListStaffAccessByPerson(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]bool{}
		for _, a := range acc {
			ids[a.StaffID] = true
		}
		return ids
	}

	if c := decode(tok, "", "mallory.staff"); c != 200 {
		t.Fatalf("decode with the personal token: %d", c)
	}
	if c := decode(shared, "", "bob.staff"); c != 200 {
		t.Fatalf("decode with the shared token: %d", c)
	}
	if c := decode("cds_not-a-real-token-0123456789", "", ""); c != 401 {
		t.Fatalf("decode with an unknown token: %d", c)
	}
	ids := loggedAs()
	if !ids["st_alice"] || !ids["staff-token"] || ids["mallory.staff"] || ids["bob.staff"] {
		t.Fatalf("access log staff ids %v: want st_alice and staff-token, never a claimed X-Staff-Id", ids)
	}

	// Sign-in: the personal token; the shared token with a claimed id no longer.
	signIn := func(form string) (int, string) {
		t.Helper()
		resp, err := http.Post(ts.URL+"/codec/session", "application/x-www-form-urlencoded", strings.NewReader(form))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, strings.SplitN(resp.Header.Get("Set-Cookie"), ";", 2)[0]
	}
	if c, _ := signIn("staff_id=carol.staff&token=" + url.QueryEscape(shared)); c != 401 {
		t.Fatalf("sign-in with the shared token and a claimed id: %d", c)
	}
	if c, _ := signIn("staff_id=st_bob&token=" + url.QueryEscape(tok)); c != 401 {
		t.Fatalf("sign-in with alice's token claiming st_bob: %d", c)
	}
	c, cookie := signIn("token=" + url.QueryEscape(tok))
	if c != 200 || cookie == "" {
		t.Fatalf("sign-in with the personal token: %d %q", c, cookie)
	}
	if c := decode("", cookie, "mallory.staff"); c != 200 {
		t.Fatalf("decode with alice's session: %d", c)
	}

	// Disabled: token, session and sign-in refused.
	if out := run("disable", "--id", "st_alice"); !strings.Contains(out, "st_alice disabled") {
		t.Fatalf("staff disable printed %q", out)
	}
	if c := decode(tok, "", ""); c != 401 {
		t.Fatalf("decode with a disabled member's token: %d", c)
	}
	if c := decode("", cookie, ""); c != 401 {
		t.Fatalf("decode with a disabled member's session: %d", c)
	}
	if c, _ := signIn("token=" + url.QueryEscape(tok)); c != 401 {
		t.Fatalf("sign-in of a disabled member: %d", c)
	}
	if list := run("list"); !strings.Contains(list, "st_alice\tAlice Example") || !strings.Contains(list, "disabled") {
		t.Fatalf("staff list after disable: %q", list)
	}
	if err := staffAdmin(ctx, st, []string{"disable", "--id", "st_nobody"}, &bytes.Buffer{}); err == nil {
		t.Fatal("disabling an unknown staff id succeeded")
	}
}
