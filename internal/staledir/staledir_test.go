package staledir

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRemoveDead: RemoveDead removes a directory whose lock no process
// holds, giving its note first, and leaves a live one, one others may
// write in, one without a lock, a symlink to a dead one, and ones whose
// names are not the prefix and os.MkdirTemp's random digits (a user's
// own, which a "lock" file did not save: p-2026-12 was removed).
func TestRemoveDead(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	live, release, err := Make("p-*", []byte("live"))
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	dead := func(name string, mode os.FileMode) string {
		d := filepath.Join(tmp, name)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, LockName), []byte("note of "+name), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, mode); err != nil {
			t.Fatal(err)
		}
		return d
	}
	gone := dead("p-1", 0o710)
	open := dead("p-2", 0o777)
	closedOnly := dead("r-3", 0o710)
	closed := dead("r-4", 0o700)
	other := dead("q-5", 0o700)
	usersOwn := dead("p-2026-12", 0o700)
	tooLong := dead("p-12345678901", 0o700)
	bare := dead("p-", 0o700)
	nolock := filepath.Join(tmp, "p-6")
	os.Mkdir(nolock, 0o700)
	link := filepath.Join(tmp, "p-7")
	if err := os.Symlink(other, link); err != nil {
		t.Fatal(err)
	}
	notes := map[string]string{}
	RemoveDead("p-", 0o022, func(dir string, note []byte) { notes[dir] = string(note) })
	// A caller whose directories are closed to others leaves one that
	// is not.
	RemoveDead("r-", 0o077, nil)
	for _, tc := range []struct {
		dir  string
		kept bool
	}{{live, true}, {gone, false}, {open, true}, {other, true}, {nolock, true}, {link, true}, {closedOnly, true}, {closed, false}, {usersOwn, true}, {tooLong, true}, {bare, true}} {
		if _, err := os.Lstat(tc.dir); (err == nil) != tc.kept {
			t.Errorf("%s: kept %v, want %v", tc.dir, err == nil, tc.kept)
		}
	}
	if len(notes) != 1 || notes[gone] != "note of p-1" {
		t.Errorf("notes given %q, want only p-1's", notes)
	}
	release()
	if _, err := os.Lstat(live); err == nil {
		t.Errorf("%s left after its release", live)
	}
}

// TestRemoveDeadNetworkFS: on NFS, CIFS, SMB or FUSE a lock free here
// may be held on another host, so a directory that looks dead is kept
// (it was removed); elsewhere it is removed.
func TestRemoveDeadNetworkFS(t *testing.T) {
	for _, tc := range []struct {
		name   string
		magic  uint32
		err    error
		remove bool
	}{
		{"nfs", 0x6969, nil, false},
		{"cifs", 0xFF534D42, nil, false},
		{"smb2", 0xFE534D42, nil, false},
		{"smb", 0x517B, nil, false},
		{"fuse", 0x65735546, nil, false},
		{"unknown", 0, unix.ENOSYS, false},
		{"ext4", 0xEF53, nil, true},
		{"tmpfs", 0x01021994, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			saved := statfs
			defer func() { statfs = saved }()
			statfs = func(path string) (uint32, error) {
				if path != tmp {
					t.Errorf("statfs(%q), want %q", path, tmp)
				}
				return tc.magic, tc.err
			}
			d := filepath.Join(tmp, "p-42")
			if err := os.Mkdir(d, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, LockName), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			called := false
			RemoveDead("p-", 0o077, func(string, []byte) { called = true })
			if _, err := os.Lstat(d); (err != nil) != tc.remove || called != tc.remove {
				t.Errorf("removed %v (note given %v), want %v", err != nil, called, tc.remove)
			}
		})
	}
}

// TestMakeWithoutFlock: where the file system refuses flock (ENOLCK,
// EOPNOTSUPP), Make failed, and with it the run (os.MkdirTemp worked
// there); it now makes the directory unlocked, which RemoveDead, refused
// the lock too, keeps.
func TestMakeWithoutFlock(t *testing.T) {
	for _, refusal := range []error{unix.ENOLCK, unix.EOPNOTSUPP} {
		t.Run(refusal.Error(), func(t *testing.T) {
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			saved := flock
			defer func() { flock = saved }()
			flock = func(int, int) error { return refusal }
			dir, release, err := Make("p-*", []byte("note"))
			if err != nil {
				t.Fatalf("Make: %v", err)
			}
			if b, err := os.ReadFile(filepath.Join(dir, LockName)); err != nil || string(b) != "note" {
				t.Errorf("lock file holds %q (%v), want %q", b, err, "note")
			}
			RemoveDead("p-", 0o077, nil)
			if _, err := os.Lstat(dir); err != nil {
				t.Errorf("RemoveDead removed %s, which it could not lock: %v", dir, err)
			}
			release()
			if _, err := os.Lstat(dir); err == nil {
				t.Errorf("%s left after its release", dir)
			}
		})
	}
}
