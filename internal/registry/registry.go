// Package registry looks organisations up in a commercial registry for OV
// verification (BR §3.2.2.1). The interface is small so a real registry
// client can replace the file-backed data set used in development and tests.
package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"golang.org/x/text/unicode/norm"
)

// Record is one registered organisation.
type Record struct {
	RegistryID string `json:"registry_id"` // e.g. the Japanese corporate number (法人番号)
	Name       string `json:"name"`
	Country    string `json:"country"`
	Locality   string `json:"locality,omitempty"`
	Province   string `json:"province,omitempty"`
	Status     string `json:"status"` // active, dissolved
}

// Lookup finds an organisation by name and country.
type Lookup interface {
	Find(ctx context.Context, name, country string) (Record, bool, error)
}

// File is a Lookup over a JSON array of Records.
type File struct{ byKey map[string]Record }

// LoadFile reads path (a JSON array of Records).
func LoadFile(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	var recs []Record
	if err := json.Unmarshal(b, &recs); err != nil {
		return nil, fmt.Errorf("registry: %s: %w", path, err)
	}
	return New(recs), nil
}

// New builds a File from records.
func New(recs []Record) *File {
	f := &File{byKey: make(map[string]Record, len(recs))}
	for _, r := range recs {
		f.byKey[key(r.Name, r.Country)] = r
	}
	return f
}

// Find matches on the NFKC-normalised, case-folded name; only active
// organisations count.
func (f *File) Find(_ context.Context, name, country string) (Record, bool, error) {
	r, ok := f.byKey[key(name, country)]
	if !ok || (r.Status != "" && r.Status != "active") {
		return Record{}, false, nil
	}
	return r, true, nil
}

func key(name, country string) string {
	n := strings.ToLower(strings.Join(strings.Fields(norm.NFKC.String(name)), " "))
	return strings.ToUpper(country) + "|" + n
}
