package nobodyfs_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/smolvmm/smolvmm/internal/nobodyfs"
)

// TestDo: a file only its owner may read is refused inside Do (as root
// too, where Do takes nobody's ids) and read outside it.
func TestDo(t *testing.T) {
	p := filepath.Join(t.TempDir(), "private")
	if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	err := nobodyfs.Do(t, func() error { _, err := os.ReadFile(p); return err })
	if os.Geteuid() == 0 && !errors.Is(err, fs.ErrPermission) {
		t.Errorf("read as nobody: %v, want permission denied", err)
	}
	if _, err := os.ReadFile(p); err != nil {
		t.Errorf("read outside Do: %v", err)
	}
}
