// Package pki is the CA core of CertDesk: key storage (encrypted PKCS#8
// files or PKCS#11), the CA bootstrap ceremony, certificate profiles as
// data, CSR and key checks, pre-issuance linting with zlint, issuance,
// sharded CRLs, OCSP and detached CMS signatures for disclosure packages.
//
// It is a plain library: no Temporal, no database. Whatever must be durable
// (serials, CRL numbers, blocked keys, signed OCSP responses) is owned by
// the caller and passed in as values or small interfaces, so every
// operation can run inside an idempotent activity.
//
// Errors: a refusal (the request is not acceptable and retrying will not
// help) is a *problem.Error wrapping one of the exported Err* kinds, so
// errors.Is(err, pki.ErrROCA) works and problem.CodeOf(err) gives a stable
// code for the API; anything else is a failure the caller may retry.
//
// Layout, one concern per file: keystore*.go, signer.go and pkcs8.go (keys),
// bootstrap.go and ca.go (ceremony, manifest, loading), profile.go,
// policies.go, subject.go, names.go (what a certificate says), csr.go
// (request checks, with goodkey/ for key checks), issuer.go (issuance,
// with lint/ for zlint), crl.go, ocsp.go, ocsp_http.go, cms.go.
package pki
