package netback

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/smolvmm/smolvmm/internal/testsock"
)

// A contained hub's first unprivileged port, read through the descriptor
// opened at its start, is the one read by name (portStartOf for both),
// the file's value then: rewritten in place, as sysctl does, it reads the
// new one.
func TestHeldPortStart(t *testing.T) {
	path := filepath.Join(testsock.Dir(t), "port")
	old := unprivilegedPortStartFile
	defer func() { unprivilegedPortStartFile = old }()
	unprivilegedPortStartFile = path
	if got := heldPortStart()(); got != 1024 {
		t.Errorf("no file: %d, want 1024", got)
	}
	if err := os.WriteFile(path, []byte("1024\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	held := heldPortStart()
	for _, tt := range []struct {
		content string
		want    int
	}{
		{"1024\n", 1024}, {"80\n", 80}, {"0\n", 0}, {"4000", 4000}, {"x\n", 1024}, {"-1\n", 1024}, {"", 1024},
	} {
		if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
			t.Fatal(err)
		}
		byName := unprivilegedPortStart()
		if got := held(); got != tt.want || byName != tt.want {
			t.Errorf("%q: held %d, by name %d; want %d", tt.content, got, byName, tt.want)
		}
	}
}
