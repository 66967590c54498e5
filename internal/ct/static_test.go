package ct

import "testing"

func TestDataTilePath(t *testing.T) {
	for idx, want := range map[uint64]string{0: "tile/data/000", 255: "tile/data/000", 256 * 7: "tile/data/007",
		256 * 999: "tile/data/999", 256 * 1000: "tile/data/x001/000", 256*1234067 + 5: "tile/data/x001/x234/067"} {
		if got := DataTilePath(idx); got != want {
			t.Errorf("DataTilePath(%d) = %q, want %q", idx, got, want)
		}
	}
}

func TestLeafIndex(t *testing.T) {
	// An SCT v1 with the leaf_index extension 0x0000_0102_03 and no signature bytes.
	raw := []byte{0}                       // version v1
	raw = append(raw, make([]byte, 32)...) // log id
	raw = append(raw, make([]byte, 8)...)  // timestamp
	raw = append(raw, 0, 8, 0, 0, 5, 0, 0, 1, 2, 3)
	raw = append(raw, 4, 3, 0, 0) // ecdsa-sha256, empty signature
	idx, ok := LeafIndex(SCT{Raw: raw})
	if !ok || idx != 0x010203 {
		t.Fatalf("LeafIndex = %d, %v; want 66051, true", idx, ok)
	}
	raw[41], raw[42] = 0, 0 // no extensions
	raw = append(raw[:43], 4, 3, 0, 0)
	if _, ok := LeafIndex(SCT{Raw: raw}); ok {
		t.Fatal("LeafIndex without the extension reported one")
	}
}
