// Command starter is CertDesk's front door: the reseller and public HTTP API,
// the CA repository (CRL, OCSP, CA certificates), the Temporal codec server
// for staff tools, health and metrics, and the operator subcommands. The
// HTTP API itself is the library certdesk/starter/httpapi; this command
// wires the database, the store, Temporal and the codec into it.
//
//	starter                 serve HTTP on CERTDESK_HTTP_ADDR and ACME (HTTPS) on CERTDESK_ACME_ADDR
//	starter migrate         apply database migrations and exit
//	starter healthcheck     exit 0 when this host's starter answers /readyz with 200
//	starter config          print the configuration variables as a Markdown table
//	starter reseller add --name NAME [--contact-email E] [--id rs_…]
//	                        create a reseller; prints its API key alone on the last line
//	starter reseller rotate-key --id rs_…   replace a reseller's key (prints the new one)
//	starter reseller disable --id rs_…      stop a reseller's key from authenticating
//	starter reseller eab --id rs_… [--product server-dv] [--reference R] [--expires 720h]
//	                        single-use ACME EAB credentials; prints kid=… and hmac=… last
//	starter staff add --id st_… --name NAME create a staff member; prints token=… on the last line
//	starter staff disable --id st_…         stop a staff member's token and decisions
//	starter staff list                      staff members and their status (no secrets)
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"

	"certdesk/activities"
	"certdesk/internal/config"
	"certdesk/internal/db"
	"certdesk/internal/logging"
	"certdesk/internal/product"
	"certdesk/internal/store"
	"certdesk/internal/temporalclient"
	"certdesk/starter/acmeorders"
	"certdesk/starter/httpapi"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "starter:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve()
	case "migrate":
		return migrate()
	case "healthcheck":
		return healthcheck()
	case "config":
		fmt.Fprint(stdout, config.Markdown())
		return nil
	case "reseller":
		return resellerCommand(args, stdout)
	case "staff":
		return staffCommand(args, stdout)
	default:
		return fmt.Errorf("unknown command %q (serve, migrate, healthcheck, config, reseller, staff)", cmd)
	}
}

func migrate() error {
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	log := logging.New("starter", cfg.LogLevel)
	ctx := context.Background()
	pool, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	return db.Migrate(ctx, pool, log)
}

// openStore builds the repository with the personal-data keys: the
// starter decrypts certificates for their reseller and encrypts reseller
// contact addresses.
func openStore(cfg *config.Config, pool *sqlx.DB) (*store.Store, error) {
	st, _, err := activities.OpenStore(cfg, pool)
	return st, err
}

func serve() error {
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	if cfg.StaffToken != "" && len(cfg.StaffToken) < 16 {
		return errors.New("config: CERTDESK_STAFF_TOKEN is too short: use at least 16 characters (e.g. `openssl rand -hex 24`)")
	}
	log := logging.New("starter", cfg.LogLevel)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cdc, err := temporalclient.Codec(cfg.CodecKey)
	if err != nil {
		return err
	}
	pool, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := db.Migrate(ctx, pool, log); err != nil {
		return err
	}
	st, err := openStore(cfg, pool)
	if err != nil {
		return err
	}
	tc, err := temporalclient.New(cfg, log)
	if err != nil {
		return err
	}
	defer tc.Close()
	if cfg.StaffToken == "" {
		log.Info("CERTDESK_STAFF_TOKEN is not set: /codec admits personal staff tokens only (`starter staff add`)")
	}

	api, err := httpapi.New(httpapi.Deps{Config: httpapi.ConfigFrom(cfg), DB: pool, Store: st, Temporal: tc, Codec: cdc, Log: log})
	if err != nil {
		return err
	}
	go api.Run(ctx)
	srv := &http.Server{
		Addr:              cfg.HTTPAddr,
		Handler:           api.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	acmeSrv, err := acmeorders.NewServer(cfg, st, tc)
	if err != nil {
		return err
	}
	errc := make(chan error, 2)
	serveACME(ctx, acmeSrv, errc, log)
	go func() { errc <- fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, srv.ListenAndServe()) }()
	log.Info("starter listening", "addr", cfg.HTTPAddr)
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}
	return nil
}

// healthcheck probes the local starter, for container health checks where no
// curl is installed.
func healthcheck() error {
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + cfg.HTTPAddr + "/readyz")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("readyz: %s", resp.Status)
	}
	return nil
}

// resellerCommand runs `starter reseller add|rotate-key|disable|eab`.
func resellerCommand(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("reseller: use `reseller add --name NAME [--contact-email E]`, `reseller rotate-key --id ID`, `reseller disable --id ID` or `reseller eab --id ID [--product server-dv] [--reference R] [--expires 720h]`")
	}
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	ctx := context.Background()
	pool, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := db.Migrate(ctx, pool, nil); err != nil {
		return err
	}
	st, err := openStore(cfg, pool)
	if err != nil {
		return err
	}
	return resellerAdmin(ctx, st, args, stdout)
}

// resellerAdmin is the reseller subcommand on an open store (tests call it
// directly). The API key is printed once, alone on the last line of stdout,
// so scripts can take it with `tail -n1`; only its SHA-256 is stored.
func resellerAdmin(ctx context.Context, st *store.Store, args []string, stdout io.Writer) error {
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("reseller "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name := fs.String("name", "", "reseller name")
	email := fs.String("contact-email", "", "where reseller notices go")
	id := fs.String("id", "", "reseller id (rs_…); add generates one when empty")
	products := fs.String("product", "server-dv", "eab: the products (ACME profiles) the account may order, comma-separated")
	reference := fs.String("reference", "", "eab: the reseller's own reference for its customer")
	expires := fs.Duration("expires", 0, "eab: unused credentials stop working after this long (e.g. 720h); 0 never")
	orgFrom := fs.String("organization-from", "", "eab: bind to the organisation this issued, identity-verified server-ov application (app_…) of the reseller verified: the account may then order server-ov")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("reseller %s: %w", sub, err)
	}
	switch sub {
	case "add":
		if *name == "" {
			return errors.New("reseller add: --name is required")
		}
		if *id == "" {
			*id = "rs_" + randomID(8)
		}
		key, prefix, err := store.GenerateAPIKey()
		if err != nil {
			return err
		}
		if err := st.CreateReseller(ctx, store.Reseller{ID: *id, Name: *name, APIKeyHash: store.HashAPIKey(key),
			APIKeyPrefix: prefix, ContactEmail: *email}); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "reseller %s (%s) created; key prefix %s\n", *id, *name, prefix)
		fmt.Fprintln(stdout, "the API key follows; it is shown only once (only its SHA-256 is stored):")
		fmt.Fprintln(stdout, key)
		return nil
	case "rotate-key":
		if *id == "" {
			return errors.New("reseller rotate-key: --id is required")
		}
		key, prefix, err := store.GenerateAPIKey()
		if err != nil {
			return err
		}
		if err := st.SetResellerKey(ctx, *id, store.HashAPIKey(key), prefix); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "reseller %s: new key prefix %s; the old key no longer works\n", *id, prefix)
		fmt.Fprintln(stdout, key)
		return nil
	case "disable":
		if *id == "" {
			return errors.New("reseller disable: --id is required")
		}
		if err := st.DisableReseller(ctx, *id, time.Now()); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "reseller %s disabled\n", *id)
		return nil
	case "eab":
		return resellerEAB(ctx, st, *id, *products, *reference, *expires, *orgFrom, stdout)
	}
	return fmt.Errorf("reseller: unknown subcommand %q (add, rotate-key, disable, eab)", sub)
}

// resellerEAB makes ACME External Account Binding credentials for one of
// a reseller's customers and prints them once: kid=… and hmac=… (base64url)
// on the last two lines. Only the sealed HMAC key is stored. orgFrom, if
// set, binds them to the organisation that application verified
// (store.VerifiedOrganization).
func resellerEAB(ctx context.Context, st *store.Store, id, products, reference string, expires time.Duration, orgFrom string, stdout io.Writer) error {
	if id == "" {
		return errors.New("reseller eab: --id is required")
	}
	var list []string
	for _, p := range strings.Split(products, ",") {
		p = strings.TrimSpace(p)
		if !product.Valid(p) || slices.Contains(list, p) {
			return fmt.Errorf("reseller eab: --product takes distinct values out of %s", strings.Join(product.All(), ", "))
		}
		list = append(list, p)
	}
	if expires < 0 {
		return errors.New("reseller eab: --expires must not be negative")
	}
	if orgFrom != "" && !slices.Contains(list, product.ServerOV) {
		return fmt.Errorf("reseller eab: --organization-from binds an organisation for %s orders: add %s to --product", product.ServerOV, product.ServerOV)
	}
	rs, err := st.GetReseller(ctx, id)
	if err != nil {
		return err
	}
	if rs.DisabledAt != nil {
		return fmt.Errorf("reseller eab: reseller %s is disabled", id)
	}
	var until *time.Time
	if expires > 0 {
		t := time.Now().Add(expires).UTC()
		until = &t
	}
	c, err := st.CreateEABCredentialWith(ctx, id, store.EABOptions{Products: list, Reference: reference, ExpiresAt: until, OrganizationFrom: orgFrom})
	if err != nil {
		if orgFrom != "" && (errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrNotVerified)) {
			return fmt.Errorf("reseller eab: --organization-from %s: %w", orgFrom, err)
		}
		return err
	}
	exp := "never"
	if until != nil {
		exp = until.Format(time.RFC3339)
	}
	fmt.Fprintf(stdout, "EAB credentials for reseller %s: products %s, expires %s; single use\n", id, strings.Join(list, ","), exp)
	if orgFrom != "" {
		fmt.Fprintf(stdout, "bound to the organisation verified by application %s: server-ov orders wait for staff review\n", orgFrom)
	}
	fmt.Fprintln(stdout, "the kid and HMAC key follow; the key is shown only once:")
	fmt.Fprintln(stdout, "kid="+c.KID)
	fmt.Fprintln(stdout, "hmac="+base64.RawURLEncoding.EncodeToString(c.HMACKey))
	return nil
}

// staffCommand runs `starter staff add|disable|list`.
func staffCommand(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("staff: use `staff add --id st_… --name NAME`, `staff disable --id st_…` or `staff list`")
	}
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	ctx := context.Background()
	pool, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := db.Migrate(ctx, pool, nil); err != nil {
		return err
	}
	st, err := openStore(cfg, pool)
	if err != nil {
		return err
	}
	return staffAdmin(ctx, st, args, stdout)
}

// staffAdmin is the staff subcommand on an open store (tests call it
// directly). The personal token is printed once, as "token=…" on the last
// line of stdout (`tail -n1 | cut -d= -f2-`); only its keyed digest is stored.
func staffAdmin(ctx context.Context, st *store.Store, args []string, stdout io.Writer) error {
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("staff "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name := fs.String("name", "", "display name")
	id := fs.String("id", "", "staff id (st_…)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("staff %s: %w", sub, err)
	}
	switch sub {
	case "add":
		if *id == "" || *name == "" {
			return errors.New("staff add: --id st_… and --name are required")
		}
		tok, err := store.GenerateStaffToken()
		if err != nil {
			return err
		}
		if err := st.CreateStaff(ctx, *id, *name, tok); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "staff member %s (%s) created; token prefix %s\n", *id, *name, tok[:store.APIKeyPrefixLen])
		fmt.Fprintln(stdout, "the personal token follows; it is shown only once (use it as TEMPORAL_CODEC_AUTH=\"Bearer <token>\"):")
		fmt.Fprintln(stdout, "token="+tok)
		return nil
	case "disable":
		if *id == "" {
			return errors.New("staff disable: --id is required")
		}
		if err := st.DisableStaff(ctx, *id, time.Now()); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "staff member %s disabled\n", *id)
		return nil
	case "list":
		all, err := st.ListStaff(ctx)
		if err != nil {
			return err
		}
		for _, m := range all {
			status := "active"
			if !m.Active() {
				status = "disabled " + m.DisabledAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\n", m.ID, m.DisplayName, m.TokenPrefix, status)
		}
		return nil
	}
	return fmt.Errorf("staff: unknown subcommand %q (add, disable, list)", sub)
}

// randomID returns 2n lower-case hex characters from crypto/rand.
func randomID(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b)
}
