package registry

import (
	"context"
	"path/filepath"
	"testing"
)

func TestFileLookup(t *testing.T) {
	f, err := LoadFile(filepath.Join("..", "..", "dev", "registry.json"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name, country string
		found         bool
	}{
		{"株式会社サンプル商事", "JP", true},
		{"ｅｘａｍｐｌｅ  trading k.k.", "jp", true}, // full-width, spacing and case fold
		{"Example Trading K.K.", "US", false},
		{"Dissolved Holdings K.K.", "JP", false}, // not active
		{"Nobody K.K.", "JP", false},
	} {
		_, ok, err := f.Find(ctx, tc.name, tc.country)
		if err != nil || ok != tc.found {
			t.Errorf("%q/%s: found %v err %v, want %v", tc.name, tc.country, ok, err, tc.found)
		}
	}
}
