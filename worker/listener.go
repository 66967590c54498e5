package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"certdesk/activities"
	"certdesk/internal/config"
	"certdesk/internal/pki"
	"certdesk/internal/product"
)

// listenerCert writes a TLS certificate and key for a development listener
// on this machine (the starter's ACME listener under make run), signed by
// the development CA's TLS issuing CA, with the chain after the leaf.
// Loopback hosts only (pki.LoopbackServerCertificate).
func listenerCert(args []string) error {
	fs := flagSet("listener-cert")
	certPath := fs.String("cert", "", "where to write the certificate chain (PEM, leaf first)")
	keyPath := fs.String("key", "", "where to write the private key (PKCS #8 PEM, mode 0600)")
	hosts := fs.String("hosts", "127.0.0.1,localhost", "loopback hosts, comma-separated")
	days := fs.Int("days", 30, "validity in days (at most 30)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *certPath == "" || *keyPath == "" {
		return errors.New("listener-cert: -cert and -key are required")
	}
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	ks, closeKeys, err := activities.KeyStore(cfg)
	if err != nil {
		return err
	}
	defer closeKeys()
	ca, err := pki.LoadCA(context.Background(), cfg.CADir, ks, pki.LoadOptions{})
	if err != nil {
		return fmt.Errorf("load CA from %s: %w", cfg.CADir, err)
	}
	iss, err := ca.IssuerFor(product.ServerDV)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := iss.LoopbackServerCertificate(strings.Split(*hosts, ","), key.Public(), time.Duration(*days)*pki.Day)
	if err != nil {
		return err
	}
	chain, err := ca.ChainPEM(iss.ID())
	if err != nil {
		return err
	}
	p8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(*keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o600); err != nil {
		return err
	}
	out := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), chain...)
	if err := os.WriteFile(*certPath, out, 0o644); err != nil {
		return err
	}
	fmt.Printf("listener certificate for %s written to %s\n", *hosts, *certPath)
	return nil
}
