package store

import (
	"errors"
	"strings"
	"testing"
	"time"

	"certdesk/internal/challenge"
)

func TestChallengeStoredAsKeyedDigest(t *testing.T) {
	s, _ := newStore(t)
	d, err := s.ChallengeDigest("ver-s1", challenge.KindCode, "123456")
	if err != nil || !challenge.IsDigest(d) {
		t.Fatalf("digest %q %v", d, err)
	}
	if _, err := s.MatchChallenge(bg, "ver-s1", d); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no challenge yet: %v", err)
	}
	c := Challenge{VerificationID: "ver-s1", Attempt: 1, Kind: challenge.KindCode, Digest: d, ExpiresAt: time.Now().Add(time.Minute)}
	for i := 0; i < 2; i++ { // a retry is a no-op
		if err := s.SaveChallenge(bg, c); err != nil {
			t.Fatal(err)
		}
	}
	other := c
	other.Digest = strings.Repeat("0", 64)
	if err := s.SaveChallenge(bg, other); !errors.Is(err, ErrConflict) {
		t.Fatalf("another value for the same attempt: %v", err)
	}
	if ok, err := s.MatchChallenge(bg, "ver-s1", other.Digest); err != nil || ok {
		t.Fatalf("wrong digest matched: %v %v", ok, err)
	}
	if ok, err := s.MatchChallenge(bg, "ver-s1", d); err != nil || !ok {
		t.Fatalf("right digest: %v %v", ok, err)
	}
	// Without the blind index key no digest can be made.
	if _, err := New(s.db, nil, nil).ChallengeDigest("ver-s1", challenge.KindCode, "123456"); !errors.Is(err, ErrNoKeys) {
		t.Fatalf("no keys: %v", err)
	}
}
