package main

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/smolvmm/smolvmm/snapshot"
)

// ownedInfo is a file's os.FileInfo as far as chmodAdvised reads it: its
// owner.
type ownedInfo struct {
	os.FileInfo
	sys any
}

func (i ownedInfo) Sys() any { return i.sys }

// TestChmodAdvised: chmod u+w is advised only to whom it works for, the
// file's owner or root, and only where the replacement's rename may then
// be made, in a directory they may write.
func TestChmodAdvised(t *testing.T) {
	owned := func(uid uint32) os.FileInfo { return ownedInfo{sys: &syscall.Stat_t{Uid: uid}} }
	tests := []struct {
		name  string
		st    os.FileInfo
		euid  int
		dirOK bool
		want  bool
	}{
		{"owner, directory writable", owned(1000), 1000, true, true},
		{"owner, directory not writable", owned(1000), 1000, false, false},
		{"another's file, directory writable", owned(0), 1000, true, false},
		{"another's file, directory not writable", owned(0), 65534, false, false},
		{"root, another's file", owned(1000), 0, true, true},
		{"root, directory not writable (a read-only file system)", owned(0), 0, false, false},
		{"owner unknown", ownedInfo{}, 1000, true, false},
	}
	for _, tt := range tests {
		if got := chmodAdvised(tt.st, tt.euid, tt.dirOK); got != tt.want {
			t.Errorf("%s: chmodAdvised = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestWriteProtectedAdviceAsUser: the refusal of a write-protected
// output advised "chmod u+w" to a user who may not change the file's
// mode (root's kernel, to nobody: kstrip in place on a shared kernel) or
// may not replace it once writable (its directory is root's). Each
// caller of checkWriteProtected now advises only writing elsewhere then,
// and chmod u+w still to the owner who can follow it.
func TestWriteProtectedAdviceAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to make files of root's and nobody's and run smolvmm as nobody")
	}
	nobody := nobodyUser(t)       // contain_test.go
	base := openTempDir(t, false) // unreadable_test.go: root's, mode 0755
	rootDir, openDir, ownDir := filepath.Join(base, "root"), filepath.Join(base, "open"), filepath.Join(base, "own")
	for _, d := range []struct {
		path string
		mode os.FileMode
		uid  int
	}{{rootDir, 0o755, 0}, {openDir, 0o777, 0}, {ownDir, 0o755, nobody.UID}} {
		if err := os.Mkdir(d.path, d.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d.path, d.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d.path, d.uid, -1); err != nil {
			t.Fatal(err)
		}
	}
	text := filepath.Join(base, "text")
	if err := os.WriteFile(text, []byte("not a kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	content := snapshot.Magic + " keep me" // a snapshot to checkIsSnapshot
	file := func(dir, name string, uid int) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o444); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, -1); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rootKernel := file(rootDir, "netbsd", 0)
	ownKernelRootDir := file(rootDir, "nobodys-netbsd", nobody.UID)
	ownKernel := file(ownDir, "netbsd", nobody.UID)
	rootOut := file(openDir, "out", 0)
	rootImage := file(openDir, "root.img", 0)
	rootJSON := file(openDir, "root.json", 0)
	rootSnap := file(openDir, "root.snap", 0)
	ownSnap := file(ownDir, "own.snap", nobody.UID)
	// nobody's link in its own directory to its snapshot in root's: the
	// snapshot is renamed over in root's directory, which nobody may not
	// write, so chmod u+w would not let it be replaced.
	linkedSnap := file(rootDir, "x.snap", nobody.UID)
	linkSnap := filepath.Join(ownDir, "l.snap")
	if err := os.Symlink(linkedSnap, linkSnap); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(linkSnap, nobody.UID, -1); err != nil {
		t.Fatal(err)
	}
	const prot = " is write-protected (mode 0444): "
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"kstrip in place, root's kernel in root's directory", []string{"kstrip", rootKernel},
			"smolvmm kstrip: kernel " + rootKernel + prot + "kstrip does not replace it; strip into another file with -o OUT\n"},
		{"kstrip in place, own kernel in root's directory", []string{"kstrip", ownKernelRootDir},
			"smolvmm kstrip: kernel " + ownKernelRootDir + prot + "kstrip does not replace it; strip into another file with -o OUT\n"},
		{"kstrip in place, own kernel in own directory", []string{"kstrip", ownKernel},
			"smolvmm kstrip: kernel " + ownKernel + prot + "kstrip does not replace it; strip into another file with -o OUT, or make it writable first (chmod u+w " + ownKernel + ")\n"},
		{"kstrip -o root's file in a directory anyone writes", []string{"kstrip", "-o", rootOut, text},
			"smolvmm kstrip: -o " + rootOut + prot + "kstrip does not replace it; give -o another file\n"},
		{"mkimg -f root's image", []string{"mkimg", "-f", "-i", rootImage},
			"smolvmm mkimg: image " + rootImage + prot + "-f does not replace it; give -i another file\n"},
		{"bench --json root's file", []string{"bench", "-k", text, "--json", rootJSON, "-n", "1", "--warmup", "0"},
			"smolvmm bench: --json " + rootJSON + prot + "bench does not replace it; give --json another file\n"},
		{"run --snapshot root's file", []string{"run", "-k", text, "--net", "none", "--snapshot", rootSnap},
			"smolvmm run: --snapshot " + rootSnap + prot + "run does not replace it; give --snapshot another file\n"},
		{"run --snapshot own file in own directory", []string{"run", "-k", text, "--net", "none", "--snapshot", ownSnap},
			"smolvmm run: --snapshot " + ownSnap + prot + "run does not replace it; give --snapshot another file, or make it writable first (chmod u+w " + ownSnap + ")\n"},
		{"run --snapshot through own link to own file in root's directory", []string{"run", "-k", text, "--net", "none", "--snapshot", linkSnap},
			"smolvmm run: --snapshot " + linkSnap + prot + "run does not replace it; give --snapshot another file\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := asUnprivileged(t, tt.args...) // unreadable_test.go: as nobody
			cmd.Dir = base
			status, stderr := runStatus(t, cmd)
			if status != 1 || stderr != tt.want {
				t.Errorf("status %d, stderr %q; want 1 and %q", status, stderr, tt.want)
			}
		})
	}
	for _, p := range []string{rootKernel, ownKernelRootDir, ownKernel, rootOut, rootImage, rootJSON, rootSnap, ownSnap, linkedSnap} {
		if b, err := os.ReadFile(p); err != nil || string(b) != content {
			t.Errorf("%s holds %q (%v); want it kept", p, b, err)
		}
	}
}
