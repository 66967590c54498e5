package store

import (
	"context"
	"testing"
	"time"
)

// Two issuances of one application run one after the other; another
// application's does not wait.
func TestWithIssuanceLock(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	holding, release := make(chan struct{}), make(chan struct{})
	firstDone := make(chan error, 1)
	go func() {
		firstDone <- s.WithIssuanceLock(bg, "app_a", func(context.Context) error {
			close(holding)
			<-release
			return nil
		})
	}()
	<-holding

	// Another application: not blocked by app_a's lock.
	ran := false
	must(t, s.WithIssuanceLock(bg, "app_b", func(context.Context) error { ran = true; return nil }))
	if !ran {
		t.Fatal("app_b's function did not run")
	}

	// The same application: waits in PostgreSQL until the first returns.
	secondRan := make(chan struct{})
	secondDone := make(chan error, 1)
	go func() {
		secondDone <- s.WithIssuanceLock(bg, "app_a", func(context.Context) error { close(secondRan); return nil })
	}()
	deadline := time.Now().Add(time.Minute)
	for {
		var waiting int
		must(t, s.db.Get(&waiting, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`))
		if waiting == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second issuance of app_a never waited for the lock")
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case <-secondRan:
		t.Fatal("the second issuance ran while the first held the lock")
	default:
	}
	close(release)
	must(t, <-firstDone)
	must(t, <-secondDone)
	<-secondRan

	// A cancelled context gives up waiting for the lock.
	hold2, rel2 := make(chan struct{}), make(chan struct{})
	go func() {
		_ = s.WithIssuanceLock(bg, "app_c", func(context.Context) error { close(hold2); <-rel2; return nil })
	}()
	<-hold2
	ctx, cancel := context.WithCancel(bg)
	go func() {
		defer cancel()
		for end := time.Now().Add(time.Minute); time.Now().Before(end); {
			var waiting int
			if err := s.db.Get(&waiting, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`); err == nil && waiting > 0 {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	if err := s.WithIssuanceLock(ctx, "app_c", func(context.Context) error {
		t.Error("ran without the lock")
		return nil
	}); err == nil {
		t.Error("a cancelled wait returned no error")
	}
	close(rel2)
}

func TestRecordSystemCheck(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	must(t, s.RecordSystemCheck(bg, "chk_1", "system-check/chk_1"))
	must(t, s.RecordSystemCheck(bg, "chk_1", "system-check/chk_1")) // a retry
	var n int
	must(t, s.db.Get(&n, `SELECT count(*) FROM system_checks WHERE check_id = 'chk_1' AND workflow_id = 'system-check/chk_1'`))
	if n != 1 {
		t.Fatalf("%d rows", n)
	}
}
