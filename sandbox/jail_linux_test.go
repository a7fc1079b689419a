package sandbox

import (
	"os"
	"slices"
	"syscall"
	"testing"
)

// TestForwardedSignals: Jail.Run catches and passes on SIGHUP only when
// it was not ignored at exec; the stop signals always.
func TestForwardedSignals(t *testing.T) {
	for _, tt := range []struct {
		hupIgnored bool
		want       []os.Signal
	}{
		{false, []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGHUP}},
		{true, []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT}},
	} {
		if got := forwardedSignals(tt.hupIgnored); !slices.Equal(got, tt.want) {
			t.Errorf("forwardedSignals(SIGHUP ignored: %v) = %v; want %v", tt.hupIgnored, got, tt.want)
		}
	}
}
