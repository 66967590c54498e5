package ct

import (
	"encoding/binary"
	"fmt"
)

// LeafIndex returns the entry index a Static CT API log
// (c2sp.org/static-ct-api) put in the SCT's leaf_index extension (type 0,
// a 40-bit big-endian integer); false when the SCT carries none (RFC 6962
// logs).
func LeafIndex(s SCT) (uint64, bool) {
	p, err := s.Parse()
	if err != nil {
		return 0, false
	}
	e := []byte(p.Extensions)
	for len(e) >= 3 {
		typ, n := e[0], int(binary.BigEndian.Uint16(e[1:3]))
		if len(e) < 3+n {
			return 0, false
		}
		if typ == 0 && n == 5 {
			v := e[3:8]
			return uint64(v[0])<<32 | uint64(binary.BigEndian.Uint32(v[1:])), true
		}
		e = e[3+n:]
	}
	return 0, false
}

// DataTilePath is the path, under a Static CT API log's monitoring prefix,
// of the full entry bundle ("data tile") holding entry index:
// tile/data/<N> with N in c2sp.org/tlog-tiles' three-digit groups. Until 256
// entries fill it, the log serves it as a partial tile, <path>.p/<width>.
func DataTilePath(index uint64) string {
	return "tile/data/" + tileIndexPath(index/256)
}

// tileIndexPath encodes a tile index as c2sp.org/tlog-tiles does: groups of
// three digits, all but the last prefixed with "x".
func tileIndexPath(n uint64) string {
	s := fmt.Sprintf("%03d", n%1000)
	for n >= 1000 {
		n /= 1000
		s = fmt.Sprintf("x%03d/", n%1000) + s
	}
	return s
}

// EntryLink says where a relying party reads the entry an SCT announces:
// the data tile of a Static CT API log (the entry is LeafIndex % 256 in it),
// or the RFC 6962 log's signed tree head (its get-entries needs an index
// the SCT does not give).
func EntryLink(l *Log, s SCT) string {
	if idx, ok := LeafIndex(s); ok && l.Kind == StaticCT {
		return withSlash(l.MonitoringURL) + DataTilePath(idx)
	}
	return withSlash(l.MonitoringURL) + "ct/v1/get-sth"
}

func withSlash(u string) string {
	if u != "" && u[len(u)-1] != '/' {
		return u + "/"
	}
	return u
}
