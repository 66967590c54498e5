package acmeorders

import (
	"testing"

	"certdesk/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
