package product

import "testing"

func TestRules(t *testing.T) {
	for _, p := range All() {
		if !Valid(p) || Check(p) != nil {
			t.Fatalf("%s not valid", p)
		}
		if TLS(p) == Client(p) {
			t.Fatalf("%s must be exactly one of TLS and client", p)
		}
	}
	if Valid("server-ev") || Check("") == nil {
		t.Fatal("unknown product accepted")
	}
	if VerifiesIdentity(ServerDV) || !VerifiesIdentity(ServerOV) || !VerifiesIdentity(ClientSign) {
		t.Fatal("identity verification rule")
	}
}
