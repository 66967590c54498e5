package httpapi

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"certdesk/internal/api"
	"certdesk/internal/product"
	"certdesk/internal/revocation"
	"certdesk/internal/status"
)

func mustServer(t testing.TB, d Deps) *Server {
	t.Helper()
	s, err := New(d)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// openapiPath turns a ServeMux pattern into its OpenAPI path template.
func openapiPath(pattern string) string {
	return strings.ReplaceAll(pattern, "...}", "}")
}

// TestOpenAPICoversRoutes keeps /openapi.yaml true: every registered route
// is documented with its method, and every documented operation is a
// registered route.
func TestOpenAPICoversRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                               `yaml:"openapi"`
		Paths   map[string]map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(openapiYAML, &doc); err != nil {
		t.Fatalf("openapi.yaml does not parse: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	s := mustServer(t, Deps{})
	registered := map[string]bool{}
	for _, rt := range s.routes {
		p := openapiPath(rt.Pattern)
		key := strings.ToLower(rt.Method) + " " + p
		registered[key] = true
		op, ok := doc.Paths[p][strings.ToLower(rt.Method)]
		if !ok {
			t.Errorf("route %s %s is not in openapi.yaml", rt.Method, rt.Pattern)
			continue
		}
		if _, ok := op["responses"]; !ok {
			t.Errorf("%s %s documents no responses", rt.Method, p)
		}
		for _, param := range pathParams(p) {
			if strings.HasPrefix(p, "/v1/") || strings.HasPrefix(p, "/repository/") || strings.HasPrefix(p, "/ocsp/") {
				if !strings.Contains(yamlString(op["parameters"]), "name: "+param) {
					t.Errorf("%s %s does not document path parameter %s", rt.Method, p, param)
				}
			}
		}
	}
	var extra []string
	for p, ops := range doc.Paths {
		for m := range ops {
			if !registered[m+" "+p] {
				extra = append(extra, m+" "+p)
			}
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Errorf("openapi.yaml documents operations that are not routes: %v", extra)
	}
}

func pathParams(p string) []string {
	var out []string
	for _, seg := range strings.Split(p, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			out = append(out, strings.Trim(seg, "{}"))
		}
	}
	return out
}

func yamlString(v any) string {
	b, _ := yaml.Marshal(v)
	return string(b)
}

// TestServedOpenAPI checks the document is served and unknown routes and
// methods answer problem+json.
func TestServedOpenAPIAndUnknownRoutes(t *testing.T) {
	ts := httptest.NewServer(mustServer(t, Deps{}).Handler())
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/openapi.yaml")
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/yaml" {
		t.Fatalf("GET /openapi.yaml: %v %v", resp, err)
	}
	resp.Body.Close()
	for _, tc := range []struct {
		method, path string
		code         int
		typ          string
	}{
		{"GET", "/nope", 404, api.TypeNotFound},
		{"DELETE", "/v1/applications", 405, api.TypeMethodNotAllowed},
		{"PUT", "/ocsp", 405, api.TypeMethodNotAllowed},
	} {
		req, _ := http.NewRequest(tc.method, ts.URL+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code || resp.Header.Get("Content-Type") != api.ContentType {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
}

// TestOpenAPIEnumsMatchVocabulary keeps the enums the document lists for
// resellers equal to the vocabulary packages the handlers check against.
func TestOpenAPIEnumsMatchVocabulary(t *testing.T) {
	type schema struct {
		Enum       []string `yaml:"enum"`
		Properties map[string]struct {
			Enum []string `yaml:"enum"`
		} `yaml:"properties"`
	}
	var doc struct {
		Components struct {
			Schemas map[string]schema `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(openapiYAML, &doc); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]string{
		"Product":                  product.All(),
		"ResellerRevocationReason": revocation.Names(revocation.ResellerAllowed()),
	} {
		if got := doc.Components.Schemas[name].Enum; !slices.Equal(got, want) {
			t.Errorf("openapi.yaml components.schemas.%s.enum = %v, want %v", name, got, want)
		}
	}
	// The statuses the API reports: the application statuses (and the
	// API's own withdrawal_requested), the certificate statuses.
	apps := []string{status.AppReceived, status.AppValidating, status.AppVerifyingIdentity, status.AppAwaitingReview,
		status.AppIssuing, status.AppIssued, status.AppRejected, status.AppWithdrawn, status.AppExpired, status.AppFailed,
		statusWithdrawalRequested}
	for _, tc := range []struct {
		schema string
		want   []string
	}{
		{"Application", apps},
		{"Certificate", []string{status.CertValid, status.CertRevoked}},
	} {
		got := doc.Components.Schemas[tc.schema].Properties["status"].Enum
		if !slices.Equal(got, tc.want) {
			t.Errorf("openapi.yaml components.schemas.%s.properties.status.enum = %v, want %v", tc.schema, got, tc.want)
		}
	}
}
