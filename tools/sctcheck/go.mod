// Pins certificate-transparency-go's sctcheck, the relying-party tool that
// checks the SCTs embedded in a certificate against the log list's keys
// (README: Certificate Transparency). Built into ../../bin by the Makefile;
// not imported by CertDesk.
module certdesk/tools/sctcheck

go 1.26.0

require (
	github.com/go-logr/logr v1.4.2 // indirect
	github.com/google/certificate-transparency-go v1.3.2 // indirect
	github.com/transparency-dev/merkle v0.0.2 // indirect
	golang.org/x/crypto v0.38.0 // indirect
	google.golang.org/protobuf v1.36.6 // indirect
	k8s.io/klog/v2 v2.130.1 // indirect
)
