package httpapi

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"certdesk/internal/api"
	"certdesk/internal/pki"
	"certdesk/internal/store"
)

// caRepository holds the CA certificates the starter publishes. It is read
// from the CA directory's manifest (ca.json) and the certificate files it
// names; the starter never opens a key file (it reads only the names the
// manifest gives as certificates, and only PEM CERTIFICATE blocks).
type caRepository struct {
	certs  map[string]*x509.Certificate // issuer id (and the root id) → certificate
	rootID string
	shards map[string]int // issuing CA id → CRL shards
	// urls builds the repository URLs exactly as the certificates print
	// them (the manifest's base URL is the one the signer uses).
	urls  pki.URLs
	index *pki.OCSPIndex
}

// caManifest is the part of pki's ca.json the starter needs.
type caManifest struct {
	Version int    `json:"version"`
	BaseURL string `json:"base_url"`
	Root    struct {
		ID   string `json:"id"`
		Cert string `json:"cert"`
	} `json:"root"`
	Issuers []struct {
		ID        string `json:"id"`
		Cert      string `json:"cert"`
		CRLShards int    `json:"crl_shards"`
	} `json:"issuers"`
}

var issuerIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

func loadCARepository(dir string) (*caRepository, error) {
	data, err := os.ReadFile(filepath.Join(dir, "ca.json"))
	if err != nil {
		return nil, err
	}
	var man caManifest
	if err := json.Unmarshal(data, &man); err != nil {
		return nil, fmt.Errorf("ca.json: %w", err)
	}
	if man.Version != 1 {
		return nil, fmt.Errorf("ca.json version %d not supported", man.Version)
	}
	if man.BaseURL == "" {
		return nil, errors.New("ca.json: no base_url; the repository cannot name the URLs printed in certificates")
	}
	repo := &caRepository{certs: map[string]*x509.Certificate{}, rootID: man.Root.ID, shards: map[string]int{},
		urls: pki.URLs{Base: man.BaseURL}}
	read := func(id, name string) (*x509.Certificate, error) {
		if !issuerIDPattern.MatchString(id) {
			return nil, fmt.Errorf("ca.json: CA id %q", id)
		}
		if name != filepath.Base(name) || !strings.HasSuffix(name, ".pem") || strings.HasSuffix(name, ".key.pem") {
			return nil, fmt.Errorf("ca.json: certificate file name %q", name)
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		blk, _ := pem.Decode(b)
		if blk == nil || blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s: no CERTIFICATE block", name)
		}
		return x509.ParseCertificate(blk.Bytes)
	}
	root, err := read(man.Root.ID, man.Root.Cert)
	if err != nil {
		return nil, err
	}
	repo.certs[man.Root.ID] = root
	issuers := map[string]*x509.Certificate{}
	for _, mi := range man.Issuers {
		c, err := read(mi.ID, mi.Cert)
		if err != nil {
			return nil, err
		}
		if err := c.CheckSignatureFrom(root); err != nil {
			return nil, fmt.Errorf("issuer %s is not signed by the root: %w", mi.ID, err)
		}
		repo.certs[mi.ID] = c
		repo.shards[mi.ID] = mi.CRLShards
		issuers[mi.ID] = c
	}
	if repo.index, err = pki.NewOCSPIndex(issuers); err != nil {
		return nil, err
	}
	return repo, nil
}

// caCertificate serves /repository/ca/<id>.pem (the issuing CA followed by
// the root, PEM; the root alone for the root) and /repository/ca/<id>.der
// (the one certificate, DER: the AIA caIssuers URL).
func (s *Server) caCertificate(w http.ResponseWriter, r *http.Request) {
	file := r.PathValue("file")
	id, ext, _ := strings.Cut(file, ".")
	if !issuerIDPattern.MatchString(id) || (ext != "pem" && ext != "der") {
		s.problem(w, r, api.New(http.StatusNotFound, api.TypeNotFound, "CA certificates are /repository/ca/<issuer>.pem or .der"))
		return
	}
	if s.repo == nil {
		s.problem(w, r, api.New(http.StatusServiceUnavailable, api.TypeUnavailable, "the CA repository is not loaded"))
		return
	}
	c, ok := s.repo.certs[id]
	if !ok {
		s.problem(w, r, api.New(http.StatusNotFound, api.TypeNotFound, "no CA "+id))
		return
	}
	var body []byte
	ctype := "application/pkix-cert"
	if ext == "der" {
		body = c.Raw
	} else {
		ctype = "application/pem-certificate-chain"
		body = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
		if id != s.repo.rootID {
			body = append(body, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.repo.certs[s.repo.rootID].Raw})...)
		}
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Cache-Control", "public, max-age=86400")
	h.Set("ETag", etag(body))
	http.ServeContent(w, r, "", c.NotBefore, bytes.NewReader(body))
}

// crl serves /repository/crl/<issuer>/<shard>.crl, the latest DER CRL of a
// shard as stored by the signer (crl_state).
func (s *Server) crl(w http.ResponseWriter, r *http.Request) {
	issuer := r.PathValue("issuer")
	num, ok := strings.CutSuffix(r.PathValue("shard"), ".crl")
	shard, err := strconv.Atoi(num)
	if !ok || err != nil || shard < 0 || shard > 4095 || strconv.Itoa(shard) != num || !issuerIDPattern.MatchString(issuer) {
		s.problem(w, r, api.New(http.StatusNotFound, api.TypeNotFound, "CRLs are /repository/crl/<issuer>/<shard>.crl"))
		return
	}
	if s.repo != nil {
		if n, known := s.repo.shards[issuer]; !known || (n > 0 && shard >= n) {
			s.problem(w, r, api.New(http.StatusNotFound, api.TypeNotFound, "no such CRL"))
			return
		}
	}
	c, err := s.st.LatestCRL(r.Context(), issuer, shard)
	if errors.Is(err, store.ErrNotFound) {
		s.problem(w, r, api.New(http.StatusNotFound, api.TypeNotFound, "no CRL published for this shard yet"))
		return
	}
	if err != nil {
		s.internalError(w, r, "read CRL", err)
		return
	}
	now := s.now()
	maxAge := int64(c.NextUpdate.Sub(now) / time.Second)
	// Relying parties refetch at least hourly: a revocation republishes the
	// shard within minutes, and BR §4.9.7 allows 24 hours.
	if maxAge > 3600 {
		maxAge = 3600
	}
	if maxAge < 0 {
		maxAge = 0
	}
	h := w.Header()
	h.Set("Content-Type", "application/pkix-crl")
	h.Set("Cache-Control", "public, no-transform, max-age="+strconv.FormatInt(maxAge, 10))
	h.Set("Expires", c.NextUpdate.UTC().Format(http.TimeFormat))
	h.Set("ETag", etag(c.DER))
	http.ServeContent(w, r, "", c.ThisUpdate, bytes.NewReader(c.DER))
}

// crlPartitions serves /repository/crl/<issuer>.json: the JSON array of the
// full URL of every CRL shard of an issuing CA, in shard order, which is
// what the CCADB "JSON Array of Partitioned CRLs" field of the CA's record
// holds (Apple and Chrome require it when a CA publishes partitioned CRLs
// instead of one full CRL). The URLs come from pki.URLs.CRLPartitions, the
// builder of the distribution points printed in certificates, and the
// shard count from the manifest the signer uses, so the list cannot drift
// from the certificates; it is fixed for the issuer's lifetime.
func (s *Server) crlPartitions(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutSuffix(r.PathValue("file"), ".json")
	if !ok || !issuerIDPattern.MatchString(id) {
		s.problem(w, r, api.New(http.StatusNotFound, api.TypeNotFound, "CRL partition lists are /repository/crl/<issuer>.json"))
		return
	}
	if s.repo == nil {
		s.problem(w, r, api.New(http.StatusServiceUnavailable, api.TypeUnavailable, "the CA repository is not loaded"))
		return
	}
	n, known := s.repo.shards[id]
	if !known {
		s.problem(w, r, api.New(http.StatusNotFound, api.TypeNotFound, "no issuing CA "+id))
		return
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s.repo.urls.CRLPartitions(id, n)); err != nil {
		s.internalError(w, r, "encode CRL partitions", err)
		return
	}
	body := b.Bytes()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=86400")
	h.Set("ETag", etag(body))
	http.ServeContent(w, r, "", s.repo.certs[id].NotBefore, bytes.NewReader(body))
}

func etag(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

func pemCertBytes(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
