package pki

// CRLPartitions returns the distribution point of every CRL shard of an
// issuer with the given shard count (0 means 1, as in
// IssuerConfig.CRLShards), in shard order. It is the CCADB "JSON Array of
// Partitioned CRLs" of the issuer: together the shards cover every
// certificate it issued, and each URL is the one CRL printed in the
// certificates of that shard, built by the same URLs.CRL.
func (u URLs) CRLPartitions(issuerID string, shards int) []string {
	if shards == 0 {
		shards = 1
	}
	out := make([]string, 0, shards)
	for n := range shards {
		out = append(out, u.CRL(issuerID, n))
	}
	return out
}

// CRLPartitions returns the URL of every CRL shard of the issuer (see
// URLs.CRLPartitions).
func (i *Issuer) CRLPartitions() []string { return i.urls.CRLPartitions(i.id, i.shards) }
