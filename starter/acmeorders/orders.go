// Package acmeorders is the ACME server's Orders backend on CertDesk's own
// workflows (issue 16): each ACME order is one Application workflow
// (application/<id>), started at newOrder; a challenge response and the
// finalize CSR are Updates to it, and the workflow validates (DCV, MPIC,
// CAA), signs (with Certificate Transparency) and records the outcome in the
// ACME store itself. Revocation goes through the revocation workflow.
package acmeorders

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"certdesk/activities"
	"certdesk/internal/cases"
	"certdesk/internal/pki"
	"certdesk/internal/product"
	"certdesk/internal/revocation"
	"certdesk/internal/status"
	"certdesk/internal/store"
	"certdesk/starter/acme"
	"certdesk/workflows"
)

// Marker is how staff recognise an ACME order among applications: the
// workflow summary starts with it and the memo key "acme" holds the order.
const Marker = "[ACME]"

// TermsVersion is the attestation recorded for an ACME order: the account
// agreed to the terms at newAccount, bound to the reseller by EAB.
const TermsVersion = "acme-eab"

// Store is what the backend reads.
type Store interface {
	GetACMEAuthz(ctx context.Context, accountID, id string) (store.ACMEAuthz, error)
	GetReseller(ctx context.Context, id string) (store.Reseller, error)
	GetACMEAccount(ctx context.Context, id string) (store.ACMEAccount, error)
	// EABOrganization is the verified organisation an account's EAB
	// credentials are bound to, checked as of now (server-ov orders).
	EABOrganization(ctx context.Context, kid string) (store.VerifiedOrganization, error)
}

// Backend implements acme.Orders and acme.OrderStarter.
type Backend struct {
	Temporal client.Client
	Store    Store
	// Profiles gives the validity of each product (default pki.DefaultProfiles).
	Profiles *pki.ProfileSet
	// ValidityDays is the lifetime of ACME certificates; 0 means
	// DefaultValidityDays. Capped by the profile's maximum.
	ValidityDays int
	Now          func() time.Time
}

// DefaultValidityDays is the lifetime of a certificate ordered through
// ACME: clients renew by machine, so the short end (as Let's Encrypt),
// which stays under the 100-day limit of 2027-03-15 (ballot SC-081).
const DefaultValidityDays = 90

var (
	_ acme.Orders       = (*Backend)(nil)
	_ acme.OrderStarter = (*Backend)(nil)
)

// ApplicationID is the application id of ACME order orderID.
func ApplicationID(orderID string) string { return "app_acme_" + strings.TrimPrefix(orderID, "ord_") }

func (b *Backend) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

func problem(status int, typ, format string, a ...any) error {
	return &acme.Error{Status: status, Type: typ, Detail: fmt.Sprintf(format, a...)}
}

// Allow refuses what CertDesk does not issue through ACME: server-ov only
// for accounts whose EAB credentials are bound to an organisation CertDesk
// verified already (such an order then waits for staff review), client
// products not at all, and names the TLS profile forbids.
func (b *Backend) Allow(ctx context.Context, acct store.ACMEAccount, profile string, ids []store.ACMEIdentifier) error {
	switch profile {
	case product.ServerDV:
	case product.ServerOV:
		if _, err := b.organization(ctx, acct); err != nil {
			return err
		}
	case product.ClientSign:
		return problem(http.StatusForbidden, "unauthorized",
			"profile %q (S/MIME) is not offered through ACME: CertDesk has no ACME email identifier challenge (RFC 8823); use the reseller API", profile)
	default:
		return problem(http.StatusForbidden, "unauthorized", "profile %q is not offered through ACME", profile)
	}
	names := make([]string, 0, len(ids))
	for _, id := range ids {
		names = append(names, id.Value)
	}
	if err := pki.CheckDomains(names); err != nil {
		return problem(http.StatusBadRequest, "rejectedIdentifier", "%v", err)
	}
	return nil
}

// organization is the verified organisation acct's EAB is bound to; an
// account without one (or whose organisation's verification no longer
// holds) is unauthorized with the reason.
func (b *Backend) organization(ctx context.Context, acct store.ACMEAccount) (store.VerifiedOrganization, error) {
	org, err := b.Store.EABOrganization(ctx, acct.EABKID)
	switch {
	case errors.Is(err, store.ErrNotVerified):
		return org, problem(http.StatusForbidden, "unauthorized",
			"profile %q needs EAB credentials bound to an organisation CertDesk has verified already (POST /v1/acme/eab with organization_from): %s",
			product.ServerOV, strings.TrimPrefix(err.Error(), store.ErrNotVerified.Error()+": "))
	case errors.Is(err, store.ErrNotFound):
		return org, problem(http.StatusForbidden, "unauthorized",
			"profile %q needs EAB credentials bound to an organisation CertDesk has verified already: the bound application is gone", product.ServerOV)
	}
	return org, err
}

// StartOrder starts the order's Application workflow. A server-ov order
// carries the bound organisation's subject (O, L, ST, C, as its verified
// certificate printed them) in the subscriber data, encrypted by the payload
// codec as any OV application's, and only references in the ACME part.
func (b *Backend) StartOrder(ctx context.Context, acct store.ACMEAccount, o store.ACMEOrder) error {
	in := workflows.ACMEOrderInput{OrderID: o.ID, AccountID: acct.ID, ExpiresAt: o.ExpiresAt, AccountURI: acme.AccountURL(ctx, acct.ID)}
	var domains []string
	for _, id := range o.AuthzIDs {
		az, err := b.Store.GetACMEAuthz(ctx, acct.ID, id)
		if err != nil {
			return err
		}
		d := az.Identifier.Value
		if az.Wildcard {
			d = "*." + d
		}
		in.Authorizations = append(in.Authorizations, workflows.ACMEAuthorization{ID: az.ID, Domain: d})
		domains = append(domains, d)
	}
	profiles := b.Profiles
	if profiles == nil {
		profiles = pki.DefaultProfiles
	}
	prof, err := profiles.Get(o.Profile)
	if err != nil {
		return problem(http.StatusBadRequest, "invalidProfile", "%v", err)
	}
	now := b.now().UTC()
	days := b.ValidityDays
	if days == 0 {
		days = DefaultValidityDays
	}
	if max := int(prof.MaxValidityAt(now) / pki.Day); days > max {
		days = max
	}
	email, err := b.contact(ctx, acct)
	if err != nil {
		return err
	}
	sub := activities.SubscriberData{Name: "ACME account " + acct.ID, Email: email}
	review := ""
	if o.Profile == product.ServerOV {
		org, err := b.organization(ctx, acct)
		if err != nil {
			return err
		}
		sub.Organization, sub.Locality, sub.Province, sub.Country = org.Organization, org.Locality, org.Province, org.Country
		in.Organization = &workflows.ACMEOrganization{ApplicationID: org.ApplicationID, VerificationID: org.VerificationID}
		review = fmt.Sprintf("\nOrganisation: verified by application %s (identity verification %s); the order waits for the staff %s Update after finalize.",
			org.ApplicationID, org.VerificationID, workflows.ReviewUpdate)
	}
	appID := ApplicationID(o.ID)
	wid := workflows.ApplicationWorkflowID(appID)
	_, err = b.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       wid,
		TaskQueue:                workflows.TaskQueue,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		StaticSummary:            fmt.Sprintf("%s Application %s: ACME order %s, %s certificate for reseller %s", Marker, appID, o.ID, o.Profile, acct.ResellerID),
		StaticDetails: fmt.Sprintf("ACME order: %s\nACME account: %s\nEAB key id: %s\nProduct: %s\nReseller: %s\nDomains: %d\nValidity: %d days\nOrdered through the ACME server (RFC 8555): the client's challenge responses and finalize arrive as the %s and %s Updates.",
			o.ID, acct.ID, acct.EABKID, o.Profile, acct.ResellerID, len(domains), days, workflows.ACMEChallengeUpdate, workflows.ACMEFinalizeUpdate) + review,
		Memo: map[string]any{"acme": map[string]string{"order": o.ID, "account": acct.ID}},
		TypedSearchAttributes: temporal.NewSearchAttributes(
			cases.CaseType.ValueSet(cases.TypeApplication),
			cases.ResellerID.ValueSet(acct.ResellerID),
			cases.CaseStatus.ValueSet(status.AppReceived),
		),
	}, workflows.Application, workflows.ApplicationInput{
		ApplicationID: appID, ResellerID: acct.ResellerID, Product: o.Profile, Domains: domains, ValidityDays: days,
		Subscriber:  sub,
		Attestation: activities.Attestation{TermsVersion: TermsVersion, Truthful: true, AttestedAt: now},
		ACME:        &in,
	})
	return err
}

// contact is the account's first mailto: contact, or else the reseller's
// contact address (the subscriber's notices go there).
func (b *Backend) contact(ctx context.Context, acct store.ACMEAccount) (string, error) {
	for _, c := range strings.Split(acct.Contact, "\n") {
		if e, ok := strings.CutPrefix(strings.TrimSpace(c), "mailto:"); ok && e != "" {
			return e, nil
		}
	}
	rs, err := b.Store.GetReseller(ctx, acct.ResellerID)
	if err != nil {
		return "", err
	}
	if rs.ContactEmail == "" {
		return "", problem(http.StatusBadRequest, "invalidContact", "the account has no mailto: contact and its reseller none either")
	}
	return rs.ContactEmail, nil
}

// UpdateTimeout bounds how long a challenge response or finalize waits for
// the order's workflow to take it.
var UpdateTimeout = 20 * time.Second

// update sends one Update and waits until the workflow has taken it (its
// handler only queues the work); a refusal by the workflow is an ACME
// problem, anything else (Temporal or the workers unreachable in time)
// acme.ErrUnavailable, so the client can try again: the Update id makes a
// repeat a no-op if the first one did arrive.
func (b *Backend) update(ctx context.Context, orderID, updateID, name string, arg any) error {
	ctx, cancel := context.WithTimeout(ctx, UpdateTimeout)
	defer cancel()
	h, err := b.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: workflows.ApplicationWorkflowID(ApplicationID(orderID)), UpdateID: updateID, UpdateName: name,
		Args: []any{arg}, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, nil)
	}
	var (
		nf  *serviceerror.NotFound
		app *temporal.ApplicationError
	)
	switch {
	case err == nil:
	case errors.As(err, &app):
		// The workflow's validator refused it.
		return problem(http.StatusForbidden, "orderNotReady", "%s", app.Message())
	case errors.As(err, &nf):
		return problem(http.StatusForbidden, "orderNotReady", "the order is closed")
	default:
		return fmt.Errorf("%w: %s: %v", acme.ErrUnavailable, name, err)
	}
	return acme.ErrPending
}

// Validate hands the challenge to the order's workflow, which validates it
// and records the result (acme.ErrPending).
func (b *Backend) Validate(ctx context.Context, _ store.ACMEAccount, ch acme.Challenge, method, _, keyAuthorization string) error {
	return b.update(ctx, ch.OrderID, "acme-challenge/"+ch.ID, workflows.ACMEChallengeUpdate, workflows.ACMEChallenge{
		AuthzID: ch.AuthzID, ChallengeID: ch.ID, Method: method, KeyAuthorization: keyAuthorization,
	})
}

// Issue hands the CSR to the order's workflow, which issues and records the
// certificate on the order (acme.ErrPending).
func (b *Backend) Issue(ctx context.Context, _ store.ACMEAccount, o store.ACMEOrder, csr *x509.CertificateRequest) (string, *x509.Certificate, error) {
	p := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr.Raw}))
	return "", nil, b.update(ctx, o.ID, "acme-finalize/"+o.ID, workflows.ACMEFinalizeUpdate, workflows.ACMEFinalize{CSRPEM: p})
}

// Revoke starts (or joins) the certificate's revocation workflow, as the
// reseller API does. The requester is the subscriber, except for
// keyCompromise signed by the ordering account rather than the
// certificate key: that claim is unproven, so it counts as the reseller's
// (the account's EAB binds it to its reseller) and staff confirm it before
// the key is blocked.
func (b *Backend) Revoke(ctx context.Context, o store.ACMEOrder, _ *x509.Certificate, reason int, byCertKey bool) error {
	r := revocation.Reason(reason)
	req := workflows.Requester{Kind: workflows.RequesterSubscriber, ID: "acme:" + o.AccountID}
	switch {
	case byCertKey:
		req.ID = "acme-key-proof:" + o.AccountID
	case r == revocation.KeyCompromise:
		acct, err := b.Store.GetACMEAccount(ctx, o.AccountID)
		if err != nil {
			return err
		}
		req = workflows.Requester{Kind: workflows.RequesterReseller, ID: acct.ResellerID}
	}
	in := workflows.RevocationInput{
		Serial: o.CertSerial, Reason: r.String(), RequestedAt: b.now().UTC().Truncate(time.Second),
		Requester: req, Comment: "revoked through ACME by account " + o.AccountID + " (order " + o.ID + ")",
	}
	_, deadline, err := workflows.RevocationPolicy(in.Reason, in.Requester.Kind, in.Ground)
	if err != nil {
		return problem(http.StatusBadRequest, "badRevocationReason", "%v", err)
	}
	wid := workflows.RevocationWorkflowID(in.Serial)
	_, err = b.Temporal.SignalWithStartWorkflow(ctx, wid, workflows.RequestSignal, in, client.StartWorkflowOptions{
		ID:            wid,
		TaskQueue:     workflows.TaskQueue,
		StaticSummary: fmt.Sprintf("Revocation of %s (%s), requested by %s through ACME", in.Serial, in.Reason, in.Requester.Kind),
		StaticDetails: fmt.Sprintf("Serial: %s\nReason: %s\nRequester: ACME account %s\nACME order: %s\nDeadline (BR 4.9.1.1): %s",
			in.Serial, in.Reason, o.AccountID, o.ID, in.RequestedAt.Add(deadline).Format(time.RFC3339)),
		TypedSearchAttributes: temporal.NewSearchAttributes(
			cases.CaseType.ValueSet(cases.TypeRevocation),
			cases.CaseStatus.ValueSet(workflows.RevRequested),
			cases.CertificateSerial.ValueSet(in.Serial),
			cases.DueAt.ValueSet(in.RequestedAt.Add(deadline)),
		),
	}, workflows.Revocation, in)
	return err
}
