package guests

import (
	"errors"
	"os/exec"
	"testing"
)

// ForTest returns the path of guest name, built for a test. It skips t when
// the toolchain (gcc, ld) is missing, and fails it when the guest does not
// build: a guest that stops compiling is a regression, not a reason to skip.
func ForTest(t testing.TB, name string) string {
	t.Helper()
	path, err := Build(name)
	if errors.Is(err, exec.ErrNotFound) {
		t.Skipf("cannot build guest %s without its toolchain: %v", name, err)
	}
	if err != nil {
		t.Fatalf("building guest %s: %v", name, err)
	}
	return path
}
