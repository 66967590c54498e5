// Package problem defines the refusal errors of the CA core.
//
// A refusal is the CA saying "no" to a request, as opposed to a failure
// (a token that is unreachable, a lookup that timed out). The difference
// matters to the caller: a refusal is final and is shown to the reseller,
// a failure is retried. Every refusal is an *Error whose Kind is one of the
// exported sentinels of packages pki and goodkey; the Kind's Code is stable
// and is meant to become the RFC 9457 problem "type" of the HTTP API.
package problem

import (
	"errors"
	"fmt"
)

// Kind is a class of refusal. Compare with errors.Is against the exported
// sentinels; Code is stable across releases.
type Kind struct {
	// Code is a short stable identifier such as "rsa-key-too-small".
	Code string
	// Title is a one-line human summary of the class.
	Title string
}

// Error implements error so a Kind can be used as an errors.Is target.
func (k *Kind) Error() string { return k.Title }

// Error is a refusal: a Kind plus a detail saying what exactly is wrong and
// what the requester should do about it. Details never contain private keys
// or personal data beyond what the requester submitted.
type Error struct {
	Kind   *Kind
	Detail string
}

// Error returns the detail, which already reads as a full sentence.
func (e *Error) Error() string { return e.Detail }

// Unwrap makes errors.Is(err, pki.ErrSomething) work.
func (e *Error) Unwrap() error { return e.Kind }

// New returns a refusal of the given kind.
func New(kind *Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

// CodeOf returns the stable code of the refusal in err's chain, or "" when
// err is not a refusal (then it is a failure and may be retried).
func CodeOf(err error) string {
	var k *Kind
	if errors.As(err, &k) {
		return k.Code
	}
	return ""
}

// IsRefusal reports whether err is a final refusal rather than a failure.
func IsRefusal(err error) bool { return CodeOf(err) != "" }
