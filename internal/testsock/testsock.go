// Package testsock gives tests a directory for their Unix sockets.
package testsock

import (
	"os"
	"testing"
)

// Dir makes a directory for a test's Unix sockets, removed at the test's
// end. t.TempDir holds up to 64 bytes of the test's name, so under a long
// TMPDIR a socket path in it passes the 107 bytes sun_path allows.
func Dir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sock")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
