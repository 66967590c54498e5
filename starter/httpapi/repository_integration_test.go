//go:build integration

package httpapi

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"certdesk/starter/httpapi/apiclient"
	"certdesk/workflows"
)

var oidIssuingDistributionPoint = asn1.ObjectIdentifier{2, 5, 29, 28}

// TestCRLPartitionListOnRealStack: once the CRL refresh workflow has run
// on the real workers, every URL in each issuing CA's
// /repository/crl/<issuer>.json (read with the generated client) answers
// 200 with a DER CRL that parses, is signed by that issuer and names that
// URL as its issuing distribution point.
func TestCRLPartitionListOnRealStack(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	run, err := s.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "crl-partitions-" + randomID(6), TaskQueue: workflows.TaskQueue}, workflows.PublishCRLs)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	var res workflows.PublishResult
	if err := run.Get(wctx, &res); err != nil {
		t.Fatal(err)
	}
	c, err := apiclient.NewClientWithResponses(s.url)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	// The stack bootstraps the default CA: two issuing CAs of 16 shards.
	for _, id := range []string{"tls-1", "client-1"} {
		resp, err := c.GetCRLPartitionsWithResponse(ctx, id+".json")
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode() != 200 || resp.JSON200 == nil || resp.HTTPResponse.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: %d %s", id, resp.StatusCode(), resp.Body)
		}
		urls := *resp.JSON200
		var want []string
		for n := range 16 {
			want = append(want, fmt.Sprintf("%s/repository/crl/%s/%d.crl", s.url, id, n))
		}
		if !slices.Equal(urls, want) {
			t.Fatalf("%s: %v\nwant %v", id, urls, want)
		}
		issuer, err := x509.ParseCertificate(s.do("GET", "/repository/ca/"+id+".der", "", nil, nil).body)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range urls {
			r := doURL(t, "GET", u, "", nil, nil)
			if r.code != 200 || r.hdr.Get("Content-Type") != "application/pkix-crl" {
				t.Fatalf("%s: %d %s", u, r.code, r.body)
			}
			crl, err := x509.ParseRevocationList(r.body)
			if err != nil {
				t.Fatalf("%s: %v", u, err)
			}
			if err := crl.CheckSignatureFrom(issuer); err != nil {
				t.Fatalf("%s: not signed by %s: %v", u, id, err)
			}
			var idp []byte
			for _, e := range crl.Extensions {
				if e.Id.Equal(oidIssuingDistributionPoint) {
					idp = e.Value
				}
			}
			if !bytes.Contains(idp, []byte(u)) {
				t.Errorf("%s: the CRL's issuing distribution point does not name its URL", u)
			}
			total++
		}
	}
	if res.Shards < total {
		t.Errorf("the refresh published %d shards, the lists name %d", res.Shards, total)
	}
	if resp, err := c.GetCRLPartitionsWithResponse(ctx, "nosuch.json"); err != nil || resp.StatusCode() != 404 || resp.ApplicationproblemJSON404 == nil {
		t.Errorf("unknown issuer: %v %v", resp.StatusCode(), err)
	}
}
