package vmm

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/smolvmm/smolvmm/snapshot"
)

// TestTrustedSnapshotDescriptor: whether a snapshot's disk paths are
// trusted is decided by the file opened (fstat of its descriptor), from
// which the state is read, not by the path: another file renamed over
// the path after the open changes nothing, either way.
func TestTrustedSnapshotDescriptor(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a snapshot another owner")
	}
	tests := []struct {
		name           string
		opened, staged int // the owners of the file opened and of the one renamed over it
		refused        bool
	}{
		{"another user's opened, yours swapped in", 65534, 0, true},
		{"yours opened, another user's swapped in", 0, 65534, false},
	}
	disks := []DiskIdentity{{Path: "/etc/shadow"}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path, staged := filepath.Join(dir, "a.snap"), filepath.Join(dir, "b.snap")
			for p, uid := range map[string]int{path: tt.opened, staged: tt.staged} {
				writeEmptySnapshot(t, p)
				if err := os.Chown(p, uid, -1); err != nil {
					t.Fatal(err)
				}
			}
			f, err := snapshot.OpenHeader(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := os.Rename(staged, path); err != nil {
				t.Fatal(err)
			}
			err = trustedSnapshot(f, disks)
			var oe *SnapshotOwnerError
			if tt.refused != (err != nil) || (err != nil && (!errors.As(err, &oe) || oe.UID != uint32(tt.opened))) {
				t.Fatalf("trustedSnapshot: %v; want refused %t, naming uid %d", err, tt.refused, tt.opened)
			}
		})
	}
}

// writeEmptySnapshot writes a snapshot of one page of memory and an
// empty state at path, mode 0600: enough for OpenHeader.
func writeEmptySnapshot(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := snapshot.Write(f, snapshot.NIC{}, nil, make([]byte, snapshot.PageSize)); err != nil {
		t.Fatal(err)
	}
}
