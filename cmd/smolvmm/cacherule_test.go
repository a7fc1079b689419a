package main

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/smolvmm/smolvmm/fetch"
	"github.com/smolvmm/smolvmm/fetch/fetchtest"
)

// homeUID and homeGID own the other user's HOME of these tests, as the
// first user of a host (1000) owns theirs.
const homeUID, homeGID = 1000, 1000

// ownedDir makes dir, mode perm, owned by uid and gid.
func ownedDir(t *testing.T, dir string, uid, gid int, perm os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, perm); err != nil {
		t.Fatal(err)
	}
}

// cacheTree describes every entry under root, as Lstat sees it: mode,
// owner, size and bytes or link target. Equal descriptions are the same
// tree, nothing made, removed, written or chowned.
func cacheTree(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		sys := st.Sys().(*syscall.Stat_t)
		fmt.Fprintf(&b, "%s %v %d:%d %d", p, st.Mode(), sys.Uid, sys.Gid, st.Size())
		if st.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " %x", sha512.Sum512(data))
		} else if st.Mode()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			b.WriteString(" -> " + target)
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// cacheRuleServer is a mirror of 9.3/i386 whose rescue set is the test
// stand-in.
func cacheRuleServer(t *testing.T) *fetchtest.Server {
	srv := fetchtest.NewServer(fetchtest.Release{Version: "9.3", Arch: "i386", Kernel: []byte("kernel image"),
		Sets: map[string][]byte{"rescue.tgz": fetchtest.RescueSet()}})
	t.Cleanup(srv.Close)
	return srv
}

// TestRootRefusesAnotherUsersDefaultCache: root run with another user's
// HOME (sudo -E) is refused the default cache by fetch, by up's fetch
// step and by mkimg, which read cached sets and digest files there
// unchecked, building from what that user's cache held: each stops,
// status 1, naming the user's directory and saying how to go on, with
// nothing made, written or chowned in that HOME and no request made. The
// refusal skips that cache and no more: mkimg still finds a set that is a
// directory in the current directory (looked for after the cache), and
// builds from it; it refused it, saying the set was not there.
func TestRootRefusesAnotherUsersDefaultCache(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, which alone is refused another user's cache, to give a directory to another user")
	}
	srv := cacheRuleServer(t)
	bin := asUnprivileged(t).Path // unreadable_test.go: a copy anybody may run
	base := openTempDir(t, false)
	home := filepath.Join(base, "alice")
	ownedDir(t, home, homeUID, homeGID, 0o755)
	// The user's own cache, holding a set mkimg would have built from.
	sets := filepath.Join(home, ".cache", "smolvmm", "9.3", "i386", "sets")
	if err := os.MkdirAll(sets, 0o755); err != nil {
		t.Fatal(err)
	}
	set := fetchtest.RescueSet()
	sum := sha512.Sum512(set)
	if err := os.WriteFile(filepath.Join(sets, "rescue.tgz"), set, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sets, "SHA512"), []byte("SHA512 (rescue.tgz) = "+hex.EncodeToString(sum[:])+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := filepath.WalkDir(filepath.Join(home, ".cache"), func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, homeUID, homeGID)
	}); err != nil {
		t.Fatal(err)
	}
	before := cacheTree(t, home)
	refusal := "cache directory " + home + "/.cache/smolvmm (from HOME): cache directory is another user's: " + home + " belongs to uid 1000, and this process is root ("
	tests := []struct {
		name string
		args []string
		// rescueDir unpacks the rescue set into the working directory
		// as rescue/, a set mkimg finds without the cache.
		rescueDir bool
		status    int
		want      []string // in stderr
		made      []string // left in the working directory, rescue/ aside
	}{
		{name: "fetch", args: []string{"fetch", "--mirror", srv.Mirror()}, status: 1,
			want: []string{"smolvmm fetch: " + refusal + "run with root's own HOME (sudo -H), or give --cache DIR to use that directory anyway)"}},
		{name: "up", args: []string{"up", "--mirror", srv.Mirror(), "-i", "rescue.img", "rescue"}, status: 1,
			want: []string{refusal + "run with root's own HOME (sudo -H), or give --cache DIR to use that directory anyway)"}},
		{name: "mkimg", args: []string{"mkimg", "-i", "root.img"}, status: 1,
			want: []string{`smolvmm mkimg: set "rescue": no rescue.tgz or rescue.tar.xz in the current directory or in sets/, and no directory rescue in the current directory or in sets/; the fetch cache is not looked in: ` + refusal + "run with root's own HOME (sudo -H), or give -x PATH to use a set from that cache anyway)"}},
		{name: "mkimg, a directory set in the current directory", args: []string{"mkimg", "-i", "root.img"}, rescueDir: true,
			made: []string{"root.img"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "up" && !kvmUsable() {
				t.Skip("up checks /dev/kvm before its fetch step, and it is unusable here")
			}
			work := t.TempDir()
			if tt.rescueDir {
				unpackTgz(t, fetchtest.RescueSet(), filepath.Join(work, "rescue"))
			}
			srv.ResetLog()
			cmd := exec.Command(bin, tt.args...)
			cmd.Dir = work
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home}
			status, stderr := runStatus(t, cmd)
			if status != tt.status {
				t.Errorf("status %d, want %d; stderr:\n%s", status, tt.status, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr:\n%s\nwant %q", stderr, w)
				}
			}
			if after := cacheTree(t, home); after != before {
				t.Errorf("the other user's HOME changed:\n%s\nwas:\n%s", after, before)
			}
			if n := len(srv.Requests()); n != 0 {
				t.Errorf("%d requests made, want none", n)
			}
			var left []string
			entries, err := os.ReadDir(work)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if !(tt.rescueDir && e.Name() == "rescue") {
					left = append(left, e.Name())
				}
			}
			if fmt.Sprint(left) != fmt.Sprint(tt.made) {
				t.Errorf("left in the working directory: %v, want %v", left, tt.made)
			}
			for _, f := range tt.made {
				if st, err := os.Stat(filepath.Join(work, f)); err != nil || st.Size() == 0 {
					t.Errorf("%s: %v, want a non-empty image", f, err)
				}
			}
		})
	}
}

// unpackTgz unpacks the gzipped tar archive tgz into dir, as a set
// unpacked by hand is a directory set.
func unpackTgz(t *testing.T, tgz []byte, dir string) {
	t.Helper()
	tar, err := exec.LookPath("tar")
	if err != nil {
		t.Skipf("needs tar to unpack a set: %v", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tar, "-xzf", "-", "-C", dir)
	cmd.Stdin = bytes.NewReader(tgz)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar: %v: %s", err, out)
	}
}

// TestCacheRuleTakesNoMore: the rule that refused root any cache whose
// path, from /, went through another uid's directory, and made it
// read-only for anybody else, refused what it had no reason to: root in
// a user namespace (unshare -r), where / belongs to the overflow uid, its
// own HOME included; root given a --cache on a volume of the host user's
// (docker run -v); an arbitrary uid whose HOME is another uid's but its
// group's to write (OpenShift). Each downloads the release again.
func TestCacheRuleTakesNoMore(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give directories to other users and to run as them")
	}
	srv := cacheRuleServer(t)
	bin := asUnprivileged(t).Path
	tests := []struct {
		name string
		// setup makes the directories under base and returns the
		// command to run with args, and where the release's sets go.
		setup func(t *testing.T, base string, args []string) (*exec.Cmd, string)
	}{
		// As unshare -r run by uid 1000 makes it, but made by this
		// process as root, which writes the maps itself: a host may
		// refuse unprivileged users a user namespace (Ubuntu's AppArmor
		// rule), and the test skipped there, which CI does not allow.
		{"root in a user namespace, its own HOME", func(t *testing.T, base string, args []string) (*exec.Cmd, string) {
			home := filepath.Join(base, "h")
			ownedDir(t, home, homeUID, homeGID, 0o755)
			cmd := exec.Command(bin, args...)
			cmd.Env = []string{"HOME=" + home}
			cmd.SysProcAttr = &syscall.SysProcAttr{
				Cloneflags:                 syscall.CLONE_NEWUSER,
				UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: homeUID, Size: 1}},
				GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: homeGID, Size: 1}},
				GidMappingsEnableSetgroups: true,
				// Root in the namespace, uid 1000 outside, no groups.
				Credential: &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{}},
			}
			return cmd, filepath.Join(home, ".cache/smolvmm/9.3/i386/sets")
		}},
		{"root with a --cache of another user's", func(t *testing.T, base string, args []string) (*exec.Cmd, string) {
			vol := filepath.Join(base, "vol")
			ownedDir(t, vol, homeUID, homeGID, 0o755)
			home := filepath.Join(base, "root")
			ownedDir(t, home, 0, 0, 0o700)
			cmd := exec.Command(bin, append(args, "--cache", vol)...)
			cmd.Env = []string{"HOME=" + home}
			return cmd, filepath.Join(vol, "9.3/i386/sets")
		}},
		{"an arbitrary uid in its group's HOME", func(t *testing.T, base string, args []string) (*exec.Cmd, string) {
			home := filepath.Join(base, "app-root")
			ownedDir(t, home, 1001, 0, 0o775)
			cmd := exec.Command(bin, args...)
			cmd.Env = []string{"HOME=" + home}
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 1000680000, Gid: 0, Groups: []uint32{}}}
			return cmd, filepath.Join(home, ".cache/smolvmm/9.3/i386/sets")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := openTempDir(t, false)
			cmd, sets := tt.setup(t, base, []string{"fetch", "--mirror", srv.Mirror()})
			cmd.Env = append(cmd.Env, "PATH="+os.Getenv("PATH"))
			status, stderr := runStatus(t, cmd)
			if status != 0 {
				t.Fatalf("status %d, want 0; stderr:\n%s", status, stderr)
			}
			got, err := os.ReadFile(filepath.Join(sets, "rescue.tgz"))
			if err != nil || string(got) != string(fetchtest.RescueSet()) {
				t.Errorf("cached set: %d bytes, %v; want the mirror's %d", len(got), err, len(fetchtest.RescueSet()))
			}
		})
	}
}

// TestMissingSetsCacheRefused: sets found nowhere while root was refused
// another user's cache are said as not in the current directory nor in
// sets/, with the refusal as the reason the cache was not looked in and
// its advice, not "or in <cache>" and a fetch that cache would refuse.
func TestMissingSetsCacheRefused(t *testing.T) {
	refused := &cachedSetError{name: "rescue", err: &fetch.ForeignCacheError{Dir: "/home/a/.cache/smolvmm", Env: "HOME", Path: "/home/a", UID: 1000}}
	missing := func(name string) *missingSetError {
		return &missingSetError{name: name, archives: []string{name + ".tgz", name + ".tar.xz"}, cache: "the fetch cache", refused: refused}
	}
	const why = "the fetch cache is not looked in: cache directory /home/a/.cache/smolvmm (from HOME): cache directory is another user's: /home/a belongs to uid 1000, and this process is root (run with root's own HOME (sudo -H), or give -x PATH to use a set from that cache anyway)"
	tests := []struct {
		name string
		sets []*missingSetError
		want string
	}{
		{"one set", []*missingSetError{missing("rescue")},
			`set "rescue": no rescue.tgz or rescue.tar.xz in the current directory or in sets/, and no directory rescue in the current directory or in sets/; ` + why},
		{"two sets", []*missingSetError{missing("rescue"), missing("base")},
			`sets "rescue", "base": no rescue.tgz or rescue.tar.xz, nor base.tgz or base.tar.xz, in the current directory or in sets/, and no directory rescue or base in the current directory or in sets/; ` + why},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := advise(missingSets(tt.sets)); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}
