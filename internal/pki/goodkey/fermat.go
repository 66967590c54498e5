package goodkey

import "math/big"

// squareMod64 marks the residues of squares modulo 64: only 12 of 64 values
// are possible, so most candidates are rejected without a square root.
var squareMod64 = func() (t [64]bool) {
	for i := 0; i < 64; i++ {
		t[i*i%64] = true
	}
	return t
}()

// FermatFactorable reports whether Fermat's method factors n in at most
// rounds iterations (Boulder's checkPrimeFactorsTooClose). Any odd n is a
// difference of squares, n = a² − b² = (a+b)(a−b); starting from
// a = ⌈√n⌉ and stepping a by one finds b quickly when the two primes are
// close, which well-made generators never produce (BR 6.1.1.3 lists such
// keys as weak).
func FermatFactorable(n *big.Int, rounds int) bool {
	if n.Sign() <= 0 || n.Bit(0) == 0 {
		return false
	}
	one := big.NewInt(1)
	a := new(big.Int).Sqrt(n)
	b2 := new(big.Int).Mul(a, a)
	if b2.Cmp(n) == 0 {
		return true // n is a perfect square: p = q
	}
	a.Add(a, one)
	b2.Mul(a, a).Sub(b2, n)
	b := new(big.Int)
	bb := new(big.Int)
	// Stepping a to a+1 adds 2a+1 to b² = a² − n, cheaper than squaring.
	step := new(big.Int).Lsh(a, 1)
	step.Add(step, one)
	two := big.NewInt(2)
	for i := 0; i < rounds; i++ {
		if low := b2.Bits(); len(low) > 0 && squareMod64[uint64(low[0])%64] {
			b.Sqrt(b2)
			if bb.Mul(b, b).Cmp(b2) == 0 {
				return true
			}
		} else if len(low) == 0 {
			return true // b² = 0 would mean n = a², handled above
		}
		b2.Add(b2, step)
		step.Add(step, two)
	}
	return false
}
