package netback

import (
	"os"
	"testing"
)

// SocketDir makes a directory for a test's Unix sockets, removed at the
// test's end. t.TempDir holds up to 64 bytes of the test's name, so under a
// long TMPDIR a socket path in it passes the 107 bytes sun_path allows.
func SocketDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hub")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
