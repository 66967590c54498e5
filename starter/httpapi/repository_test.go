package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"

	"certdesk/internal/api"
	"certdesk/internal/pki"
)

// TestCRLPartitionList: /repository/crl/<issuer>.json lists the URL of
// every shard of each issuing CA of a bootstrapped CA, as the signer's own
// issuers print them, and refuses anything else.
func TestCRLPartitionList(t *testing.T) {
	dir := t.TempDir()
	base := "http://pki.example.jp:8080"
	keys := &pki.FileKeyStore{Dir: filepath.Join(dir, "keys"), Passphrase: []byte("repository test passphrase"), Iterations: 1000}
	ctx := context.Background()
	if _, err := pki.Bootstrap(ctx, pki.BootstrapConfig{
		Dir: dir, Keys: keys, Organization: "CertDesk Repository Test", Country: "JP",
		URLs:   pki.URLs{Base: base},
		Policy: pki.CAPolicy{OID: []int{1, 3, 6, 1, 4, 1, 32473, 1, 1}, CPSURI: base + "/repository/cps"},
		Issuers: []pki.IssuerSpec{
			{ID: "tls-1", CommonName: "Test TLS CA", Purpose: pki.PurposeTLSServer, CRLShards: 3},
			{ID: "client-1", CommonName: "Test Client CA", Purpose: pki.PurposeClientSign},
		},
	}); err != nil {
		t.Fatal(err)
	}
	// The signer's view of the same CA: what its certificates print.
	ca, err := pki.LoadCA(ctx, dir, keys, pki.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(mustServer(t, Deps{Config: Config{CADir: dir}}).Handler())
	defer ts.Close()

	get := func(path string, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", ts.URL+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	wantShards := map[string]int{"tls-1": 3, "client-1": 16}
	for _, iss := range ca.Issuers() {
		resp, body := get("/repository/crl/" + iss.ID() + ".json")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("ETag") == "" {
			t.Fatalf("%s: %d %v %s", iss.ID(), resp.StatusCode, resp.Header, body)
		}
		var got []string
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("%s: %q: %v", iss.ID(), body, err)
		}
		var want []string
		for n := range wantShards[iss.ID()] {
			want = append(want, fmt.Sprintf("%s/repository/crl/%s/%d.crl", base, iss.ID(), n))
		}
		if !slices.Equal(got, want) || !slices.Equal(got, iss.CRLPartitions()) {
			t.Errorf("%s: got %v\nwant %v", iss.ID(), got, want)
		}
		if r, _ := get("/repository/crl/"+iss.ID()+".json", "If-None-Match", resp.Header.Get("ETag")); r.StatusCode != http.StatusNotModified {
			t.Errorf("%s: conditional GET: %d", iss.ID(), r.StatusCode)
		}
	}
	for _, path := range []string{
		"/repository/crl/nosuch.json",
		"/repository/crl/root.json", // the root is not an issuing CA
		"/repository/crl/tls-1.txt",
		"/repository/crl/tls-1",
		"/repository/crl/TLS-1.json",
		"/repository/crl/tls-1.json.json",
		"/repository/crl/.json",
	} {
		resp, body := get(path)
		if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != api.ContentType {
			t.Errorf("%s: %d %s %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}

	// No CA loaded: 503, not an empty list.
	empty := httptest.NewServer(mustServer(t, Deps{Config: Config{CADir: t.TempDir()}}).Handler())
	defer empty.Close()
	resp, err := http.Get(empty.URL + "/repository/crl/tls-1.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("without a CA: %d", resp.StatusCode)
	}
}
