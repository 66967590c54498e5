package httpapi

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"certdesk/internal/store"
)

// ErrStaffRefused: the credential names no active staff member (unknown,
// wrong or disabled, not told apart).
var ErrStaffRefused = errors.New("httpapi: staff credential refused")

// StaffAuthenticator decides who a staff request comes from. The token
// implementation checks personal bearer tokens (`starter staff add`); a
// later identity provider (OIDC sign-in) implements the same two methods,
// so the codec endpoints and the access log (O8) do not change.
type StaffAuthenticator interface {
	// Authenticate returns the staff id a credential proves, or
	// ErrStaffRefused.
	Authenticate(ctx context.Context, credential string) (string, error)
	// Active reports whether a staff id signed in earlier may still act
	// (a disabled member's session stops working at once).
	Active(ctx context.Context, id string) (bool, error)
}

// StaffStore is what the token authenticator reads; *store.Store has it.
type StaffStore interface {
	StaffByToken(ctx context.Context, token string) (store.Staff, error)
	GetStaff(ctx context.Context, id string) (store.Staff, error)
}

// TokenStaffAuth authenticates personal staff tokens against the staff table.
type TokenStaffAuth struct{ Store StaffStore }

// Authenticate implements StaffAuthenticator.
func (a TokenStaffAuth) Authenticate(ctx context.Context, token string) (string, error) {
	m, err := a.Store.StaffByToken(ctx, token)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "", ErrStaffRefused
	case err != nil:
		return "", err
	}
	return m.ID, nil
}

// Active implements StaffAuthenticator.
func (a TokenStaffAuth) Active(ctx context.Context, id string) (bool, error) {
	m, err := a.Store.GetStaff(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return m.Active(), nil
}

// staffAuthFor picks the authenticator: the one given, else personal
// tokens from the store when it has the staff table's methods.
func staffAuthFor(d Deps) StaffAuthenticator {
	if d.StaffAuth != nil {
		return d.StaffAuth
	}
	if ss, ok := d.Store.(StaffStore); ok {
		return TokenStaffAuth{Store: ss}
	}
	return nil
}

// newSessionKey is the session MAC key when no shared staff token is set:
// random per process, so a restart ends every session (sign in again).
func newSessionKey() []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // does not fail on supported platforms
	}
	return b
}
