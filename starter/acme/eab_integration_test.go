//go:build integration

package acme

import (
	"net/http"
	"strings"
	"testing"

	xacme "golang.org/x/crypto/acme"
)

// TestRevokedEABDeactivatesAccount: once the reseller revokes the EAB
// credentials (DELETE /v1/acme/eab/{kid} calls RevokeEABCredential), every
// request of the account made with them is refused as unauthorized, and
// newAccount with its key does not bring it back.
func TestRevokedEABDeactivatesAccount(t *testing.T) {
	e := newOrderEnv(t)
	c, a := e.account(t)
	if _, err := c.AuthorizeOrder(bg, xacme.DomainIDs("before.example.test")); err != nil {
		t.Fatalf("order before revocation: %v", err)
	}
	acct, err := e.st.GetACMEAccount(bg, a.URI[strings.LastIndex(a.URI, "/")+1:])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.RevokeEABCredential(bg, "rs_acme", acct.EABKID); err != nil {
		t.Fatal(err)
	}
	_, err = c.AuthorizeOrder(bg, xacme.DomainIDs("after.example.test"))
	wantProblem(t, err, http.StatusUnauthorized, "unauthorized")
	_, err = c.GetReg(bg, a.URI)
	wantProblem(t, err, http.StatusUnauthorized, "unauthorized")
	_, err = c.Register(bg, &xacme.Account{}, xacme.AcceptTOS)
	wantProblem(t, err, http.StatusUnauthorized, "unauthorized")
}
