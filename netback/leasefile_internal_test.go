package netback

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A lease file that another user could have made the network write
// elsewhere, or fill, is refused at start and nothing is written:
// a symlink at its path (a user in a sticky /tmp linked it to a file of
// root's, which a root network replaced with the leases), a file another
// user owns or may write, a directory another user owns or may replace
// files in without the sticky bit. The user's own file in their own
// directory, or in a sticky world-writable one, is let in.
func TestLoadLeasesUnsafe(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("making files of another user takes root")
	}
	const other = 65534
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir, path string) // dir is the lease file's
		dirMode os.FileMode
		refused string // what the error says; "" when let in
	}{
		{name: "own file", dirMode: 0o700, prepare: func(t *testing.T, dir, path string) { write(t, path, 0o600) }},
		{name: "no file, sticky world-writable directory", dirMode: os.ModeSticky | 0o777},
		{name: "own file, sticky world-writable directory", dirMode: os.ModeSticky | 0o777, prepare: func(t *testing.T, dir, path string) { write(t, path, 0o600) }},
		{name: "symlink", dirMode: os.ModeSticky | 0o777, prepare: func(t *testing.T, dir, path string) {
			victim := filepath.Join(t.TempDir(), "victim")
			write(t, victim, 0o600)
			if err := os.Symlink(victim, path); err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(path, other, other); err != nil {
				t.Fatal(err)
			}
		}, refused: "it is a symbolic link"},
		{name: "own symlink", dirMode: 0o700, prepare: func(t *testing.T, dir, path string) {
			if err := os.Symlink(filepath.Join(dir, "real.leases"), path); err != nil {
				t.Fatal(err)
			}
		}, refused: "it is a symbolic link"},
		{name: "another user's file", dirMode: os.ModeSticky | 0o777, prepare: func(t *testing.T, dir, path string) {
			write(t, path, 0o600)
			chown(t, path, other)
		}, refused: fmt.Sprintf("it is owned by uid %d, not by this process's user (uid 0)", other)},
		{name: "file others may write", dirMode: 0o700, prepare: func(t *testing.T, dir, path string) { write(t, path, 0o666) },
			refused: "it is mode 0666: its group or other users may write it"},
		{name: "file its group may write", dirMode: 0o700, prepare: func(t *testing.T, dir, path string) { write(t, path, 0o620) },
			refused: "it is mode 0620: its group or other users may write it"},
		{name: "file its group may read and write", dirMode: 0o700, prepare: func(t *testing.T, dir, path string) { write(t, path, 0o660) },
			refused: "it is mode 0660: its group or other users may write it"},
		{name: "own file others may read", dirMode: 0o700, prepare: func(t *testing.T, dir, path string) { write(t, path, 0o644) }},
		{name: "another user's directory", dirMode: 0o700, prepare: func(t *testing.T, dir, path string) { chown(t, dir, other) },
			refused: fmt.Sprintf("is owned by uid %d, neither this process's user (uid 0) nor root", other)},
		{name: "world-writable directory without the sticky bit", dirMode: 0o777,
			refused: "is mode 0777: other users may replace files in it (it is not sticky)"},
		{name: "group-writable directory without the sticky bit", dirMode: 0o770,
			refused: "is mode 0770: other users may replace files in it"},
		{name: "symlink at the lock file", dirMode: 0o700, prepare: func(t *testing.T, dir, path string) {
			if err := os.Symlink(filepath.Join(dir, "elsewhere"), path+".lock"); err != nil {
				t.Fatal(err)
			}
		}, refused: "n.leases.lock: lease file not safe from other users: it is a symbolic link, which the network does not follow"},
		{name: "another user's lock file", dirMode: os.ModeSticky | 0o777, prepare: func(t *testing.T, dir, path string) {
			write(t, path+".lock", 0o600)
			chown(t, path+".lock", other)
		}, refused: fmt.Sprintf("n.leases.lock: lease file not safe from other users: it is owned by uid %d", other)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "d")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "n.leases")
			if tt.prepare != nil {
				tt.prepare(t, dir, path)
			}
			if err := os.Chmod(dir, tt.dirMode); err != nil {
				t.Fatal(err)
			}
			before := snapshotDir(t, dir)
			s, err := loadLeases(path)
			if tt.refused == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				defer s.close()
				assign(s, net.HardwareAddr{2, 0, 0, 0, 0, 1}, func(netip.Addr) bool { return false }, time.Unix(1e9, 0))
				if err := s.save(); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				s.close()
				t.Fatal("let in")
			}
			if !errors.Is(err, ErrLeasesUnsafe) || !strings.Contains(err.Error(), tt.refused) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q, want ErrLeasesUnsafe naming %s and saying %q", err, path, tt.refused)
			}
			// The advice is the CLI's: netback states the facts.
			if link := strings.HasPrefix(tt.name, "symlink at the lock"); link != errors.Is(err, ErrLeasesLockLink) || strings.Contains(err.Error(), "remove") {
				t.Errorf("error %q: ErrLeasesLockLink %v, want %v, and no advice", err, !link, link)
			}
			if after := snapshotDir(t, dir); after != before {
				t.Errorf("the directory changed:\n%s\nwas:\n%s", after, before)
			}
		})
	}
}

// write makes file path, an empty table of leases, of mode perm.
func write(t *testing.T, path string, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(emptyTable), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
}

func chown(t *testing.T, path string, uid int) {
	t.Helper()
	if err := os.Chown(path, uid, uid); err != nil {
		t.Fatal(err)
	}
}

const emptyTable = `{"version":1,"leases":[]}`

// snapshotDir lists dir's entries with their kinds and content.
func snapshotDir(t *testing.T, dir string) string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range es {
		p := filepath.Join(dir, e.Name())
		c, _ := os.ReadFile(p)
		fmt.Fprintf(&b, "%s %v %q\n", e.Name(), e.Type(), c)
	}
	return b.String()
}

// A symlink put at the lease file's path while the network runs is
// replaced by the next save, not written through: the file it names is
// left as it was.
func TestSaveLeasesReplacesSymlink(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "n.leases")
	s, err := loadLeases(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	victim := filepath.Join(t.TempDir(), "victim")
	write(t, victim, 0o644)
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	assign(s, mac, func(netip.Addr) bool { return false }, time.Unix(1e9, 0))
	if err := s.save(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != emptyTable {
		t.Errorf("the symlink's target: %q, %v; want it untouched", b, err)
	}
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Fatalf("lease file: %v, %v; want a regular file of mode 0600", fi, err)
	}
	s.close()
	s2, err := loadLeases(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.close()
	if a, ok := s2.lookup(mac); !ok || a != UserGuest {
		t.Errorf("reloaded: %s %v, want %s", a, ok, UserGuest)
	}
	es, _ := os.ReadDir(dir)
	for _, e := range es {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

// A lease file is one network's while it runs: a second one given it is
// refused, naming the process that holds it (before, both ran and
// overwrote each other's leases). Once the first closes, it opens.
func TestLoadLeasesLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n.leases")
	s, err := loadLeases(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = loadLeases(path)
	if want := "its lock " + path + ".lock is held by process " + strconv.Itoa(os.Getpid()); !errors.Is(err, ErrLeasesInUse) || !strings.Contains(err.Error(), want) {
		s.close()
		t.Fatalf("second load: %v; want ErrLeasesInUse saying %q", err, want)
	}
	s.close()
	s2, err := loadLeases(path)
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	s2.close()
}

// Two networks on two sockets given one lease file: the second is
// refused, and leaves no socket behind.
func TestHubLeasesLocked(t *testing.T) {
	dir := t.TempDir()
	leases := filepath.Join(dir, "shared.leases")
	h, err := NewHub(HubConfig{Socket: filepath.Join(dir, "a.sock"), Leases: leases})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	second := filepath.Join(dir, "b.sock")
	h2, err := NewHub(HubConfig{Socket: second, Leases: leases})
	if err == nil {
		h2.Close()
		t.Fatal("a second network started on the lease file")
	}
	if !errors.Is(err, ErrLeasesInUse) || !strings.Contains(err.Error(), "held by process "+strconv.Itoa(os.Getpid())) {
		t.Errorf("second network: %v; want ErrLeasesInUse naming this process", err)
	}
	if _, err := os.Lstat(second); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused network's socket: %v, want none", err)
	}
}

// A lease file that does not parse says where: the byte offset of a
// syntax error, the lease's index, byte offset and field for a bad
// lease. A bad lease refuses the file, as a truncated one does, rather
// than being skipped (its address would go to another MAC). Before, a
// truncated file said only "unexpected end of JSON input", a bad "seen"
// a bare time-parse error, and a bad MAC or address was dropped without
// a word.
func TestLoadLeasesParseErrors(t *testing.T) {
	good := `{"mac":"52:54:00:00:00:01","addr":"10.0.2.15","seen":"2026-12-03T19:00:00Z"}`
	file := func(leases ...string) string {
		return `{"version":1,"leases":[` + strings.Join(leases, ", ") + `]}`
	}
	second := len(file(good, "")) - 2 // where a second lease starts
	tests := []struct {
		name, content, want string
	}{
		{"truncated", file(good)[:40], "at byte offset 40: unexpected end of JSON input"},
		{"syntax", `{"version":1,"leases":[}`, "at byte offset 24: invalid character '}'"},
		{"not an object", ` [1]`, "at byte offset 1: JSON array where an object belongs"},
		{"version of the wrong type", `{"version":"1"}`, `field "version": JSON string where an integer belongs`},
		{"no version", `{"leases":[]}`, `field "version": 0, want 1 or 2`},
		{"bad seen", file(good, `{"mac":"52:54:00:00:00:02","addr":"10.0.2.16","seen":"garbage"}`),
			fmt.Sprintf(`lease 1 (at byte offset %d): field "seen": parsing time "garbage"`, second)},
		{"bad MAC", file(`{"mac":"52:54:00:00:01","addr":"10.0.2.15"}`), `lease 0 (at byte offset 23): field "mac"`},
		{"long MAC", file(`{"mac":"00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01","addr":"10.0.2.15"}`), `field "mac": 00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01 is 20 bytes long`},
		{"MAC of the wrong type", file(`{"mac":5,"addr":"10.0.2.15"}`), `lease 0 (at byte offset 23): field "mac": JSON number where a string belongs`},
		{"bad address", file(`{"mac":"52:54:00:00:00:01","addr":"10.0.2"}`), `lease 0 (at byte offset 23): field "addr"`},
		{"address outside the pool", file(`{"mac":"52:54:00:00:00:01","addr":"10.0.2.2"}`), `field "addr": 10.0.2.2 is not in the pool, 10.0.2.15 to 10.0.2.254`},
		{"repeated MAC", file(good, `{"mac":"52:54:00:00:00:01","addr":"10.0.2.16"}`), `lease 1 (at byte offset ` + strconv.Itoa(second) + `): field "mac": 52:54:00:00:00:01 has lease 0 already`},
		{"repeated address", file(good, `{"mac":"52:54:00:00:00:02","addr":"10.0.2.15"}`), `field "addr": 10.0.2.15 is lease 0's already`},
		{"negative uid", file(`{"mac":"52:54:00:00:00:01","addr":"10.0.2.15","uid":-1}`), `field "uid": -1 is not a uid`},
		{"negative privileged uid", file(`{"mac":"52:54:00:00:00:01","addr":"10.0.2.15","privileged_uid":-1}`), `field "privileged_uid": -1 is not a uid`},
		{"zero MAC", file(`{"mac":"00:00:00:00:00:00","addr":"10.0.2.15"}`), `lease 0 (at byte offset 23): field "mac": MAC 00:00:00:00:00:00 is all zero`},
		{"broadcast MAC", file(`{"mac":"ff:ff:ff:ff:ff:ff","addr":"10.0.2.15"}`), `field "mac": MAC ff:ff:ff:ff:ff:ff is multicast`},
		{"multicast MAC", file(`{"mac":"01:00:5e:00:00:01","addr":"10.0.2.15"}`), `field "mac": MAC 01:00:5e:00:00:01 is multicast`},
		{"the gateway's MAC", file(`{"mac":"5a:94:ef:e4:0c:dd","addr":"10.0.2.15"}`), `field "mac": MAC 5a:94:ef:e4:0c:dd is the gateway's`},
		{"unknown field", file(`{"mac":"52:54:00:00:00:01","addr":"10.0.2.15","user":1000}`), `lease 0 (at byte offset 23): field "user": not a field of a lease (mac, addr, seen, privileged, privileged_uid, uid, connected)`},
		{"bad privileged forward", file(`{"mac":"52:54:00:00:00:01","addr":"10.0.2.15","privileged":["tcp:127.0.0.1:80:80","not a forward"]}`), `lease 0 (at byte offset 23): field "privileged": entry 1: malformed port forward "not a forward"`},
		{"no address, nothing to keep", file(`{"mac":"52:54:00:00:00:01","seen":"2026-12-03T19:00:00Z"}`), `lease 0 (at byte offset 23): field "addr": absent, and the lease names no user (uid) nor privileged forwards to keep the MAC for`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "n.leases")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := loadLeases(path)
			if err == nil {
				s.close()
				t.Fatalf("loaded %s", tt.content)
			}
			if want := "lease file " + path + ": "; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to say %q and %q", err, want, tt.want)
			}
			// The lock goes with the refusal: the corrected file loads.
			if err := os.WriteFile(path, []byte(file(good)), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err = loadLeases(path)
			if err != nil {
				t.Fatalf("the corrected file: %v", err)
			}
			s.close()
		})
	}
}

// A lease written by hand with no "seen", or by an older smolvmm with no
// "uid", loads: seen longest ago, no user recorded.
func TestLoadLeasesOptionalFields(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n.leases")
	content := `{"version":1,"leases":[{"mac":"52:54:00:00:00:01","addr":"10.0.2.20"},{"mac":"52:54:00:00:00:02","addr":"10.0.2.21","seen":"2026-12-03T19:00:00Z","uid":1000}]}`
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := loadLeases(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if a, ok := s.lookup(net.HardwareAddr{0x52, 0x54, 0, 0, 0, 1}); !ok || a.String() != "10.0.2.20" {
		t.Errorf("hand-written lease: %s %v", a, ok)
	}
	if _, _, ok := s.owner(net.HardwareAddr{0x52, 0x54, 0, 0, 0, 1}); ok {
		t.Error("a lease without uid has an owner")
	}
	if uid, a, ok := s.owner(net.HardwareAddr{0x52, 0x54, 0, 0, 0, 2}); !ok || uid != 1000 || a.String() != "10.0.2.21" {
		t.Errorf("owner: %d %s %v, want 1000 10.0.2.21", uid, a, ok)
	}
}

// The temporary files a save leaves when its network is killed between
// writing one and renaming it over the lease file are removed at the
// next start, under the lease file's lock; files of other names stay.
// Before, each killed save left a whole table behind for good.
func TestHubRemovesTempLeases(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		gone bool
	}{
		{name: ".n.leases.tmp-3k9zq1x7a", gone: true},
		{name: ".n.leases.tmp-0", gone: true},
		{name: ".n.leases.tmp-", gone: false},          // no number: not writeLeases'
		{name: ".n.leases.tmp-ABC", gone: false},       // not base 36 as FormatUint spells it
		{name: ".n.leases.tmp-abc.keep", gone: false},  // more after the number
		{name: ".m.leases.tmp-3k9zq1x7a", gone: false}, // another network's
		{name: "n.leases.tmp-3k9zq1x7a", gone: false},  // not hidden
		{name: "notes.txt", gone: false},
	}
	for _, tt := range tests {
		write(t, filepath.Join(dir, tt.name), 0o600)
	}
	h, err := NewHub(HubConfig{Socket: filepath.Join(dir, "n.sock")})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, tt := range tests {
		_, err := os.Lstat(filepath.Join(dir, tt.name))
		switch gone := errors.Is(err, os.ErrNotExist); {
		case err != nil && !gone:
			t.Errorf("%s: %v", tt.name, err)
		case gone != tt.gone:
			t.Errorf("%s: removed %v, want %v", tt.name, gone, tt.gone)
		}
	}
}

// A privileged forward written by hand in the short syntax is granted as
// the network spells it (ParseForward's String), so root's grant holds.
func TestLoadLeasesPrivilegedSpelling(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n.leases")
	content := `{"version":1,"leases":[{"mac":"52:54:00:00:00:01","addr":"10.0.2.20","privileged":["80:80","udp:0.0.0.0:53:53"],"privileged_uid":1000}]}`
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := loadLeases(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	mac := net.HardwareAddr{0x52, 0x54, 0, 0, 0, 1}
	for _, f := range []string{"tcp:127.0.0.1:80:80", "udp:0.0.0.0:53:53"} {
		if !s.granted(mac, f, 1000) {
			t.Errorf("%s not granted", f)
		}
	}
}
