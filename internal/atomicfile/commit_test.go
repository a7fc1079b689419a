package atomicfile

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestWriteCommitOptions: the rename replaced whatever was at the path
// by the time the content was written, so a file that appeared during a
// long write (another build's, a VM's disk) was renamed over. NoReplace
// now leaves such a file as it is, and ReplaceIf leaves a file its check
// refuses, or one that is not the file it checked.
func TestWriteCommitOptions(t *testing.T) {
	refused := errors.New("refused")
	tests := []struct {
		name string
		// before is the file at the path when the write begins ("" none);
		// appear, when set, is put there right before the rename.
		before, appear string
		opt            func(seen *[]string) Option
		want           string // the file's content after
		wantErr        error  // matched by errors.Is; nil for success
		wantWrite      bool   // the content was written
	}{
		{"no replace, none", "", "", func(*[]string) Option { return NoReplace() }, "new", nil, true},
		{"no replace, there at the start", "old", "", func(*[]string) Option { return NoReplace() }, "old", fs.ErrExist, false},
		{"no replace, appeared", "", "vm disk", func(*[]string) Option { return NoReplace() }, "vm disk", fs.ErrExist, true},
		{"replace if, accepted", "old", "", accept, "new", nil, true},
		{"replace if, refused", "old", "", refuse(refused), "old", refused, true},
		{"replace if, none at the rename", "", "", accept, "new", nil, true},
		{"replace if, appeared and refused", "", "vm disk", refuse(refused), "vm disk", refused, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "img")
			if tt.before != "" {
				if err := os.WriteFile(path, []byte(tt.before), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			CommitHook = func(stage string) {
				if stage == CommitRename && tt.appear != "" {
					if err := os.WriteFile(path, []byte(tt.appear), 0o644); err != nil {
						t.Error(err)
					}
				}
			}
			defer func() { CommitHook = nil }()
			var seen []string
			wrote := false
			err := WriteContext(context.Background(), path, 0o644, func(f *os.File) error {
				wrote = true
				_, err := f.WriteString("new")
				return err
			}, tt.opt(&seen))
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if b, _ := os.ReadFile(path); string(b) != tt.want {
				t.Errorf("file holds %q, want %q", b, tt.want)
			}
			if wrote != tt.wantWrite {
				t.Errorf("content written %v, want %v", wrote, tt.wantWrite)
			}
			// The check is shown the file at the path at the rename.
			if old := tt.appear + tt.before; tt.name[:7] == "replace" && old != "" && (len(seen) != 1 || seen[0] != old) {
				t.Errorf("the check was shown %q, want %q", seen, old)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, ".img.tmp-*")); len(left) != 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}

func accept(seen *[]string) Option {
	return ReplaceIf(func(old *os.File) error {
		b, err := os.ReadFile(old.Name())
		*seen = append(*seen, string(b))
		return err
	})
}

func refuse(err error) func(seen *[]string) Option {
	return func(seen *[]string) Option {
		return ReplaceIf(func(old *os.File) error {
			b, _ := os.ReadFile(old.Name())
			*seen = append(*seen, string(b))
			return err
		})
	}
}

// TestReplaceIfHoldsTheFile: a lock the check takes on the old file is
// held until the new file is in place, and a file put at the path once
// the check has passed is not replaced.
func TestReplaceIfHoldsTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "img")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	other, err := os.Open(path) // the old file, as a VM starting would open it
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	locked := false
	CommitHook = func(stage string) {
		if stage == CommitRenamed {
			locked = errors.Is(unix.Flock(int(other.Fd()), unix.LOCK_EX|unix.LOCK_NB), unix.EWOULDBLOCK)
		}
	}
	defer func() { CommitHook = nil }()
	err = writeString(path, "new", ReplaceIf(func(old *os.File) error {
		return unix.Flock(int(old.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !locked {
		t.Error("the check's lock on the old file was not held at the rename")
	}
	if b, _ := os.ReadFile(path); string(b) != "new" {
		t.Errorf("file holds %q, want new", b)
	}

	// Swapped for another file once judged: left as it is.
	err = writeString(path, "newer", ReplaceIf(func(old *os.File) error {
		if err := os.WriteFile(path+".x", []byte("swapped"), 0o644); err != nil {
			return err
		}
		return os.Rename(path+".x", path)
	}))
	if err == nil {
		t.Error("a file put there after the check was replaced")
	}
	if b, _ := os.ReadFile(path); string(b) != "swapped" {
		t.Errorf("file holds %q, want swapped", b)
	}
}

// TestNoReplaceWithoutRenameFlags: where the file system takes no rename
// flags, the new file is linked in place; where it takes no links
// either (vboxsf: EINVAL then EPERM; FUSE without rename2 or link), it
// is renamed once no file is seen at the path, where an image could not
// be created at all ("link ...: operation not permitted"); and an EEXIST
// for a link that was made (NFS answering a LINK sent again) is success.
// A file at the path is left as it is on every way.
func TestNoReplaceWithoutRenameFlags(t *testing.T) {
	tests := []struct {
		name      string
		renameErr error // renameat2's error
		// linkErr is link's error; linkToo makes the link before it.
		linkErr  error
		linkToo  bool
		appear   bool // a file appears at the path as renameat2 is called
		want     string
		wantErr  error // matched by errors.Is; nil for success
		wantLink bool  // link was tried
	}{
		{"no flags, link works", unix.EINVAL, nil, true, false, "new", nil, true},
		{"no flags, link works, appeared", unix.EINVAL, nil, true, true, "appeared", fs.ErrExist, true},
		{"no flags, no links (vboxsf)", unix.EINVAL, unix.EPERM, false, false, "new", nil, true},
		{"no flags, no links, appeared", unix.EINVAL, unix.EPERM, false, true, "appeared", fs.ErrExist, true},
		{"no rename2, no links (FUSE)", unix.ENOSYS, unix.ENOSYS, false, false, "new", nil, true},
		{"flags refused EPERM, no links", unix.EPERM, unix.EOPNOTSUPP, false, false, "new", nil, true},
		{"flags refused EOPNOTSUPP, links across EXDEV", unix.EOPNOTSUPP, unix.EXDEV, false, false, "new", nil, true},
		{"flags refused EPERM, link works", unix.EPERM, nil, true, false, "new", nil, true},
		{"link made, answered EEXIST (NFS)", unix.EINVAL, unix.EEXIST, true, false, "new", nil, true},
		{"rename failed otherwise", unix.EACCES, nil, true, false, "", unix.EACCES, false},
		{"link failed otherwise", unix.EINVAL, unix.EIO, false, false, "", unix.EIO, true},
	}
	opts := map[string]func() Option{
		"NoReplace": NoReplace,
		"ReplaceIf": func() Option { return ReplaceIf(func(*os.File) error { return nil }) },
	}
	savedRename, savedLink := renameat2, link
	defer func() { renameat2, link = savedRename, savedLink }()
	for _, tt := range tests {
		for oname, opt := range opts {
			t.Run(oname+"/"+tt.name, func(t *testing.T) {
				dir := t.TempDir()
				path := filepath.Join(dir, "img")
				renameat2 = func(int, string, int, string, uint) error {
					if tt.appear {
						if err := os.WriteFile(path, []byte("appeared"), 0o644); err != nil {
							t.Error(err)
						}
					}
					return tt.renameErr
				}
				linked := false
				link = func(oldname, newname string) error {
					linked = true
					if tt.linkToo {
						if err := os.Link(oldname, newname); err != nil {
							return err
						}
					}
					if tt.linkErr != nil {
						return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: tt.linkErr}
					}
					return nil
				}
				err := writeString(path, "new", opt())
				if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Errorf("err = %v, want %v", err, tt.wantErr)
				}
				if linked != tt.wantLink {
					t.Errorf("link tried %v, want %v", linked, tt.wantLink)
				}
				if b, _ := os.ReadFile(path); string(b) != tt.want {
					t.Errorf("file holds %q, want %q", b, tt.want)
				}
				if left, _ := filepath.Glob(filepath.Join(dir, ".img.tmp-*")); len(left) != 0 {
					t.Errorf("temporary files left: %v", left)
				}
			})
		}
	}
}

// writeString writes content to path through WriteContext with opts.
func writeString(path, content string, opts ...Option) error {
	return WriteContext(context.Background(), path, 0o644, func(f *os.File) error {
		_, err := f.WriteString(content)
		return err
	}, opts...)
}
