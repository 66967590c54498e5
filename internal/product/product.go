// Package product is the one vocabulary of what CertDesk sells: the product
// names resellers send (which are also the certificate profile names) and
// the rules that follow from each product.
package product

import (
	"fmt"
	"strings"
)

// The products. These strings are the API's, the workflows' and the
// certificate profiles' names.
const (
	ServerDV   = "server-dv"   // TLS server, domain validated
	ServerOV   = "server-ov"   // TLS server, organisation validated
	ClientSign = "client-sign" // e-signature (S/MIME) client certificate for a person
)

// All lists every product, in the order documents list them.
func All() []string { return []string{ServerDV, ServerOV, ClientSign} }

// Valid reports whether p is a product.
func Valid(p string) bool { return p == ServerDV || p == ServerOV || p == ClientSign }

// Check returns an error naming the products when p is not one.
func Check(p string) error {
	if !Valid(p) {
		return fmt.Errorf("product %q is not offered (use one of %s)", p, strings.Join(All(), ", "))
	}
	return nil
}

// TLS reports whether p is a TLS server product: it carries domain names,
// needs domain control validation and (from milestone 2) CT logging.
func TLS(p string) bool { return p == ServerDV || p == ServerOV }

// Client reports whether p is a client (S/MIME) product: it carries the
// subscriber's mailbox instead of domain names.
func Client(p string) bool { return p == ClientSign }

// VerifiesIdentity reports whether p needs identity verification (the
// organisation for OV, the person for client certificates) and so a staff
// review before issuance.
func VerifiesIdentity(p string) bool { return p == ServerOV || p == ClientSign }
