package testcaps

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestWithoutDAC: inside, a mode-0 file cannot be read; outside, after,
// root reads it again (the capabilities came back).
func TestWithoutDAC(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("checks root's capabilities: run as root")
	}
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	ran := false
	WithoutDAC(t, func() {
		ran = true
		if _, err := os.ReadFile(p); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("read without CAP_DAC_OVERRIDE: %v, want permission denied", err)
		}
	})
	if !ran {
		t.Fatal("fn did not run")
	}
	if _, err := os.ReadFile(p); err != nil {
		t.Errorf("read after: %v", err)
	}
}
