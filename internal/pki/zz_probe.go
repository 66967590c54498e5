package pki

import (
	_ "github.com/ThalesGroup/crypto11"
	_ "github.com/smallstep/pkcs7"
	_ "github.com/weppos/publicsuffix-go/publicsuffix"
	_ "github.com/zmap/zcrypto/x509"
	_ "github.com/zmap/zlint/v3"
	_ "golang.org/x/crypto/ocsp"
	_ "golang.org/x/net/idna"
)
