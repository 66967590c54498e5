//go:build integration

package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	xacme "golang.org/x/crypto/acme"

	"certdesk/internal/pii"
	"certdesk/internal/store"
	"certdesk/internal/testenv"
	"certdesk/starter/acme"
)

// TestResellerEABCommand runs `starter reseller eab` on a real database:
// the kid=… and hmac=… it prints on its last two lines register an ACME
// account (golang.org/x/crypto/acme against the ACME handler) once, the
// products and expiry land on the credential, and bad flags write nothing.
func TestResellerEABCommand(t *testing.T) {
	pool, _ := testenv.NewDatabase(t)
	k1, _ := pii.GenerateKey()
	ring, err := pii.ParseKeyRing("k1:" + k1)
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(pool, ring, nil)
	ctx := context.Background()
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := resellerAdmin(ctx, st, args, &out)
		return out.String(), err
	}
	out, err := run("add", "--name", "Acme", "--id", "rs_eabcli")
	if err != nil {
		t.Fatal(err)
	}

	out, err = run("eab", "--id", "rs_eabcli", "--product", "server-dv,server-ov", "--reference", "cust-9", "--expires", "720h")
	if err != nil {
		t.Fatalf("reseller eab: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	kid, okK := strings.CutPrefix(lines[len(lines)-2], "kid=")
	hmacB64, okH := strings.CutPrefix(lines[len(lines)-1], "hmac=")
	key, derr := base64.RawURLEncoding.DecodeString(hmacB64)
	if !okK || !okH || derr != nil || len(key) != 32 || !strings.HasPrefix(kid, "eab_") {
		t.Fatalf("reseller eab printed %q", out)
	}
	c, err := st.GetEABCredential(ctx, kid)
	if err != nil || !bytes.Equal(c.HMACKey, key) || c.ResellerID != "rs_eabcli" || c.Reference != "cust-9" ||
		strings.Join(c.Products, ",") != "server-dv,server-ov" || c.ExpiresAt == nil ||
		c.ExpiresAt.Sub(time.Now()) < 719*time.Hour || c.ExpiresAt.Sub(time.Now()) > 721*time.Hour {
		t.Fatalf("stored credential %+v (%v)", c, err)
	}

	// The printed credentials make an ACME account, once.
	srv := httptest.NewTLSServer(acme.New(acme.Deps{Store: st}))
	defer srv.Close()
	register := func() error {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		cl := &xacme.Client{Key: k, DirectoryURL: srv.URL + "/acme/directory", HTTPClient: srv.Client()}
		_, err := cl.Register(ctx, &xacme.Account{ExternalAccountBinding: &xacme.ExternalAccountBinding{KID: kid, Key: key}}, xacme.AcceptTOS)
		return err
	}
	if err := register(); err != nil {
		t.Fatalf("newAccount with the printed credentials: %v", err)
	}
	var ae *xacme.Error
	if err := register(); !errors.As(err, &ae) || ae.ProblemType != "urn:ietf:params:acme:error:unauthorized" {
		t.Fatalf("second newAccount with the same credentials: %v", err)
	}

	// The default product is server-dv.
	out, err = run("eab", "--id", "rs_eabcli")
	if err != nil {
		t.Fatal(err)
	}
	lines = strings.Split(strings.TrimSpace(out), "\n")
	c2, err := st.GetEABCredential(ctx, strings.TrimPrefix(lines[len(lines)-2], "kid="))
	if err != nil || strings.Join(c2.Products, ",") != "server-dv" || c2.ExpiresAt != nil {
		t.Fatalf("default credential %+v (%v)", c2, err)
	}

	var before int
	_ = pool.Get(&before, `SELECT count(*) FROM acme_eab_credentials`)
	if _, err := run("disable", "--id", "rs_eabcli"); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"eab"},
		{"eab", "--id", "rs_nobody"},
		{"eab", "--id", "rs_eabcli"}, // disabled
		{"eab", "--id", "rs_eabcli", "--product", "server-ev"},
		{"eab", "--id", "rs_eabcli", "--product", "server-dv,server-dv"},
		{"eab", "--id", "rs_eabcli", "--expires", "-1h"},
		{"eab", "--id", "rs_eabcli", "--expires", "soon"},
	} {
		if _, err := run(args...); err == nil {
			t.Errorf("reseller %v: no error", args)
		}
	}
	var after int
	_ = pool.Get(&after, `SELECT count(*) FROM acme_eab_credentials`)
	if after != before {
		t.Fatalf("refused commands wrote %d credentials", after-before)
	}
}
