package testenv

import "testing"

func TestTilePath(t *testing.T) {
	for n, want := range map[uint64]string{0: "000", 7: "007", 999: "999", 1000: "x001/000", 1234067: "x001/x234/067"} {
		if got := tilePath(n); got != want {
			t.Errorf("tilePath(%d) = %q, want %q", n, got, want)
		}
	}
}
