package blk

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// syncFailsOnce is a Backend whose first Sync fails with EIO.
type syncFailsOnce struct {
	Backend
	failed bool
}

func (s *syncFailsOnce) Sync() error {
	if !s.failed {
		s.failed = true
		return fmt.Errorf("fdatasync: %w", unix.EIO)
	}
	return s.Backend.Sync()
}

// The warning of a latched flush names the image Open opened, once
// however many flushes fail after it.
func TestFlushFailureNamesImage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latched.img")
	if err := os.WriteFile(path, make([]byte, 8*SectorSize), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.b = &syncFailsOnce{Backend: d.b}
	var warnings []string
	d.SetWarn(func(kind, msg string, args ...any) {
		warnings = append(warnings, fmt.Sprint(kind, " ", msg, " ", args))
	})
	for i, want := range []uint8{StatusIOErr, StatusIOErr, StatusIOErr} {
		if st := d.flush(); st != want {
			t.Errorf("flush %d: status %d, want %d", i, st, want)
		}
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "[image "+path+" op flush err fdatasync: input/output error]") {
		t.Errorf("warnings %q: want one naming %s and the error", warnings, path)
	}
}
