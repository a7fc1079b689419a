package imagebuilder_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder"
	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"github.com/smolvmm/smolvmm/imagebuilder/internal/imagecheck"
)

func TestOverlay(t *testing.T) {
	dir := t.TempDir()
	for p, c := range map[string]string{
		"svc/etc/rc":           "echo hi\n",
		"svc/etc/fstab":        "/dev/ld0a / ext2fs ro 1 1\n",
		"svc/etc/rc.d/extra":   "x",
		"common/basicrc":       "PATH=/bin\n",
		"common/functions.inc": "f() { :; }\n",
	} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0755)
		os.WriteFile(filepath.Join(dir, p), []byte(c), 0644)
	}
	os.Symlink("rc", filepath.Join(dir, "svc/etc/rc.link"))
	tr := fstree.New()
	init := fstree.NewFile(0555, []byte("real init"))
	tr.Put("sbin/init", init)
	tr.Put("etc/ttys", fstree.NewFile(0644, []byte("console on\n")))
	tr.Put("dev/null", fstree.NewDevice(fstree.CharDev, 0600, 9, 9))
	tr.Put("rescue/sh", fstree.NewFile(0555, []byte("crunched")))
	tr.Link("rescue/init", "rescue/sh")
	if err := imagebuilder.Overlay(tr, loadService(t, "svc", dir), ""); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, content string }{
		{"etc/fstab", "/dev/ld0a / ext2fs ro 1 1\n"}, // the service's own wins over the default
		{"etc/ttys", "console on\n"},                 // the set's is kept
		{"etc/include/basicrc", "PATH=/bin\n"},       // the service dir's common/
		{"etc/include/functions.inc", "f() { :; }\n"},
		{"etc/rc.d/extra", "x"},
		{"sbin/init", "real init"}, // not replaced by the rescue link
		{"bin/sh", "crunched"},
	} {
		n, err := tr.Get(tc.path)
		if err != nil || string(n.Content()) != tc.content {
			t.Errorf("%s: %v %q, want %q", tc.path, err, contentOf(n), tc.content)
		}
	}
	if n, _ := tr.Get("sbin/init"); n != init {
		t.Error("the set's /sbin/init was replaced")
	}
	if n, _ := tr.Get("etc/rc"); n == nil || n.Perm != 0755 {
		t.Errorf("etc/rc should be executable: %+v", n)
	}
	if n, _ := tr.Get("etc/rc.link"); n == nil || n.Type != fstree.Symlink || n.Target != "rc" {
		t.Errorf("etc/rc.link: %+v", n)
	}
	if n, _ := tr.Get("dev/null"); n.Major != 2 || n.Minor != 2 || n.Perm != 0666 {
		t.Errorf("dev/null should be replaced by the i386 node 2,2: %+v", n)
	}
	if n, _ := tr.Get("tmp"); n == nil || n.Perm != 01777 {
		t.Errorf("tmp: %+v", n)
	}
	checkDevices(t, tr, imagebuilder.ArchI386) // "" is i386
}

// devNode is one expected /dev node.
type devNode struct {
	name         string
	typ          fstree.Type
	major, minor uint32
}

// wantDevices are the nodes of each port, from NetBSD 9.1's
// majors.i386 and majors.amd64 (ksyms 101 and 85) and the ports'
// DISKMINOR (i386's old unit*8+part for a-h, amd64's unit*16+part).
var wantDevices = map[string][]devNode{
	imagebuilder.ArchI386:  append(commonDevices(), append(disks(8), devNode{"ksyms", fstree.CharDev, 101, 0})...),
	imagebuilder.ArchAMD64: append(commonDevices(), append(disks(16), devNode{"ksyms", fstree.CharDev, 85, 0})...),
}

// disks are the nodes of ld0-ld3, partitions a and d (d is RAW_PART, the
// whole disk, on both ports), block (19) and raw (69), with minor
// unit*perUnit+partition.
func disks(perUnit uint32) []devNode {
	var out []devNode
	for u := uint32(0); u < 4; u++ {
		for _, p := range []uint32{0, 3} {
			name := fmt.Sprintf("ld%d%c", u, 'a'+p)
			out = append(out, devNode{name, fstree.BlockDev, 19, u*perUnit + p}, devNode{"r" + name, fstree.CharDev, 69, u*perUnit + p})
		}
	}
	return out
}

// commonDevices are the nodes with the same numbers on i386 and amd64.
func commonDevices() []devNode {
	return []devNode{
		{"console", fstree.CharDev, 0, 0}, {"constty", fstree.CharDev, 0, 1}, {"tty", fstree.CharDev, 1, 0},
		{"mem", fstree.CharDev, 2, 0}, {"kmem", fstree.CharDev, 2, 1}, {"null", fstree.CharDev, 2, 2},
		{"full", fstree.CharDev, 2, 11}, {"zero", fstree.CharDev, 2, 12}, {"drum", fstree.CharDev, 4, 0},
		{"klog", fstree.CharDev, 7, 0}, {"tty00", fstree.CharDev, 8, 0}, {"stdin", fstree.CharDev, 22, 0},
		{"stdout", fstree.CharDev, 22, 1}, {"stderr", fstree.CharDev, 22, 2}, {"random", fstree.CharDev, 46, 0},
		{"urandom", fstree.CharDev, 46, 1}, {"ptmx", fstree.CharDev, 165, 0}, {"ptm", fstree.CharDev, 165, 1},
		{"drvctl", fstree.CharDev, 167, 0}, {"bpf", fstree.CharDev, 23, 0},
		{"pts", fstree.Dir, 0, 0}, // FstabPtyfs's mount point
	}
}

func checkDevices(t *testing.T, tr *fstree.Tree, arch string) {
	t.Helper()
	dev, _ := tr.Get("dev")
	if got, want := len(dev.Names()), len(wantDevices[arch]); got != want {
		t.Errorf("%s: /dev holds %d nodes, want %d: %q", arch, got, want, dev.Names())
	}
	for _, d := range wantDevices[arch] {
		n, err := tr.Get("dev/" + d.name)
		if err != nil || n.Type != d.typ || n.Major != d.major || n.Minor != d.minor {
			t.Errorf("%s /dev/%s: %+v %v, want %s %d,%d", arch, d.name, n, err, d.typ, d.major, d.minor)
		}
	}
}

// TestOverlayArch checks each port's /dev numbers, and that an unknown
// port is refused rather than given another's.
func TestOverlayArch(t *testing.T) {
	for _, arch := range []string{imagebuilder.ArchI386, imagebuilder.ArchAMD64} {
		t.Run(arch, func(t *testing.T) {
			tr := fstree.New()
			if err := imagebuilder.Overlay(tr, loadService(t, "rescue", ""), arch); err != nil {
				t.Fatal(err)
			}
			checkDevices(t, tr, arch)
		})
	}
	err := imagebuilder.Overlay(fstree.New(), loadService(t, "rescue", ""), "sparc64")
	if err == nil || !strings.Contains(err.Error(), `arch "sparc64"`) {
		t.Errorf("unknown arch: got %v", err)
	}
	if _, err := imagebuilder.BuildTree(context.Background(), &imagebuilder.Config{Sets: []string{"x"}, Service: loadService(t, "rescue", ""), Arch: "vax"}); err == nil || !strings.Contains(err.Error(), `arch "vax"`) {
		t.Errorf("BuildTree with an unknown arch: got %v", err)
	}
}

// TestOverlaySymlinkedRc: a service's etc/rc that is a symlink to a file
// inside the service directory (here ../rc.real, and through a linked
// directory) becomes the file it points to, executable; it went in as a
// symlink, which the guest cannot follow. Other symlinks stay symlinks.
// The service's directory may itself be an absolute link inside the
// service directory given, as Load takes it.
func TestOverlaySymlinkedRc(t *testing.T) {
	for _, tc := range []struct{ target, svc string }{
		{"../rc.real", "svc"}, {"../lib/rc.real", "svc"}, {"../rc.real", "real"},
	} {
		target := tc.target
		dir := t.TempDir()
		if tc.svc != "svc" {
			os.Symlink(filepath.Join(dir, tc.svc), filepath.Join(dir, "svc"))
		}
		os.MkdirAll(filepath.Join(dir, tc.svc, "etc"), 0755)
		os.WriteFile(filepath.Join(dir, tc.svc, "rc.real"), []byte("echo from the host\n"), 0644)
		os.Symlink(".", filepath.Join(dir, tc.svc, "lib"))
		os.WriteFile(filepath.Join(dir, tc.svc, "etc/motd"), []byte("hi\n"), 0644)
		os.Symlink(target, filepath.Join(dir, tc.svc, "etc/rc"))
		os.Symlink("/etc/motd", filepath.Join(dir, tc.svc, "etc/motd.link"))
		tr := fstree.New()
		if err := imagebuilder.Overlay(tr, loadService(t, "svc", dir), ""); err != nil {
			t.Fatalf("etc/rc -> %s: %v", target, err)
		}
		if n, _ := tr.Get("etc/rc"); n == nil || n.Type != fstree.Regular || n.Perm != 0755 || string(n.Content()) != "echo from the host\n" {
			t.Errorf("etc/rc -> %s: %+v, want the linked file's content, mode 0755", target, n)
		}
		if n, _ := tr.Get("etc/motd.link"); n == nil || n.Type != fstree.Symlink || n.Target != "/etc/motd" {
			t.Errorf("etc/motd.link: %+v, want the symlink kept", n)
		}
	}
}

// TestOverlayRcLinkOutRefused: a symlinked etc/rc that leaves the service
// directory (by an absolute path, by "..", or into the service directory's
// common/) is refused, naming the link and its target, and the outside
// file's bytes go nowhere into the image: a service directory a less
// privileged user can write must not let a build by root copy a root-only
// host file into the image. A link to a FIFO is refused without blocking
// on it.
func TestOverlayRcLinkOutRefused(t *testing.T) {
	const secret = "root-only secret\n"
	for _, tc := range []struct {
		name, target string
		want         string
	}{
		{"absolute", "OUTSIDE", "outside the service directory"},
		{"dotdot", "../../outside", "outside the service directory"},
		{"common", "../../common/rc", "outside the service directory"},
		{"fifo", "../rc.fifo", "FIFO"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, p := range []string{"svc/etc", "common"} {
				os.MkdirAll(filepath.Join(dir, p), 0755)
			}
			for _, p := range []string{"outside", "common/rc"} {
				os.WriteFile(filepath.Join(dir, p), []byte(secret), 0600)
			}
			os.WriteFile(filepath.Join(dir, "svc/rc.fifo"), []byte("sh\n"), 0644)
			target := strings.Replace(tc.target, "OUTSIDE", filepath.Join(dir, "outside"), 1)
			link := filepath.Join(dir, "svc/etc/rc")
			os.Symlink("../rc.fifo", link)
			s := loadService(t, "svc", dir)
			// The link, and its target, change after Load's checks (which
			// refuse a link out, see service's tests), as a racing user
			// could make them: the read must check again.
			os.Remove(link)
			os.Symlink(target, link)
			fifo := filepath.Join(dir, "svc/rc.fifo")
			os.Remove(fifo)
			if err := syscall.Mkfifo(fifo, 0644); err != nil {
				t.Fatal(err)
			}
			tr := fstree.New()
			err := imagebuilder.Overlay(tr, s, "")
			if err == nil || !strings.Contains(err.Error(), link) || !strings.Contains(err.Error(), target) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Overlay: %v, want a refusal naming %s, %s and %q", err, link, target, tc.want)
			}
			tr.Walk(func(p string, n *fstree.Node) error {
				if n.Type == fstree.Regular && strings.Contains(string(n.Content()), secret) {
					t.Errorf("%s in the image holds the outside file's bytes", p)
				}
				return nil
			})
		})
	}
}

// TestOverlayLinksOutAfterLoad: a service's etc/ or common/ that becomes
// a symlink out of the service directory after Load (which refuses one,
// see service's tests) is refused by Overlay too, and the outside files'
// bytes go nowhere into the image: the service's files are read through
// an os.Root of its directory.
func TestOverlayLinksOutAfterLoad(t *testing.T) {
	const secret = "root-only secret\n"
	for _, swap := range []string{"svc/etc", "common"} {
		t.Run(swap, func(t *testing.T) {
			dir, outside := t.TempDir(), t.TempDir()
			for _, p := range []string{"svc/etc", "common"} {
				os.MkdirAll(filepath.Join(dir, p), 0o755)
			}
			os.WriteFile(filepath.Join(dir, "svc/etc/rc"), []byte("sh\n"), 0o644)
			os.WriteFile(filepath.Join(dir, "common/basicrc"), []byte("PATH=/bin\n"), 0o644)
			os.WriteFile(filepath.Join(outside, "rc"), []byte(secret), 0o600)
			os.WriteFile(filepath.Join(outside, "shadow"), []byte(secret), 0o600)
			s := loadService(t, "svc", dir)
			link := filepath.Join(dir, swap)
			if err := os.RemoveAll(link); err != nil {
				t.Fatal(err)
			}
			os.Symlink(outside, link)
			tr := fstree.New()
			if err := imagebuilder.Overlay(tr, s, ""); err == nil {
				t.Errorf("Overlay: nil error, want %s -> %s refused", link, outside)
			}
			tr.Walk(func(p string, n *fstree.Node) error {
				if n.Type == fstree.Regular && strings.Contains(string(n.Content()), secret) {
					t.Errorf("%s in the image holds the outside file's bytes", p)
				}
				return nil
			})
		})
	}
}

// TestOverlayKeepsSetDirs: a service directory the sets already have
// keeps the sets' mode and owner (a host etc/ssh 0700 over the set's
// 0755 made /etc/ssh 0700); a new one takes the service's mode.
func TestOverlayKeepsSetDirs(t *testing.T) {
	dir := t.TempDir()
	for p, mode := range map[string]os.FileMode{"svc/etc/ssh": 0700, "svc/etc/mine": 0750} {
		os.MkdirAll(filepath.Join(dir, p), 0755)
		os.Chmod(filepath.Join(dir, p), mode)
	}
	os.WriteFile(filepath.Join(dir, "svc/etc/rc"), []byte("sh\n"), 0755)
	os.WriteFile(filepath.Join(dir, "svc/etc/ssh/sshd_config"), []byte("Port 22\n"), 0644)
	tr := fstree.New()
	ssh := fstree.NewDir(0755)
	ssh.GID, ssh.Mtime = 7, 1600000000
	tr.Put("etc/ssh", ssh)
	if err := imagebuilder.Overlay(tr, loadService(t, "svc", dir), ""); err != nil {
		t.Fatal(err)
	}
	if n, _ := tr.Get("etc/ssh"); n == nil || n.Perm != 0755 || n.GID != 7 || n.Mtime != 1600000000 {
		t.Errorf("etc/ssh: %+v, want the set's 0755, gid 7, mtime kept", n)
	}
	if n, _ := tr.Get("etc/ssh/sshd_config"); n == nil || string(n.Content()) != "Port 22\n" {
		t.Errorf("etc/ssh/sshd_config: %+v", n)
	}
	if n, _ := tr.Get("etc/mine"); n == nil || n.Type != fstree.Dir || n.Perm != 0750 {
		t.Errorf("etc/mine: %+v, want a new directory 0750", n)
	}
}

func contentOf(n *fstree.Node) string {
	if n == nil || n.Type != fstree.Regular {
		return ""
	}
	return string(n.Content())
}

// TestRescueLinksBesideSymlinkedDirs overlays a set whose /bin is a symlink
// to /rescue (a minimal layout): the build goes on, /bin stays the
// symlink, and /sbin/init is still linked.
func TestRescueLinksBesideSymlinkedDirs(t *testing.T) {
	tr := fstree.New()
	tr.Put("rescue/sh", fstree.NewFile(0555, []byte("crunched")))
	tr.Link("rescue/init", "rescue/sh")
	tr.Put("bin", fstree.NewSymlink("rescue"))
	if err := imagebuilder.Overlay(tr, loadService(t, "rescue", ""), ""); err != nil {
		t.Fatal(err)
	}
	if n, _ := tr.Get("bin"); n == nil || n.Type != fstree.Symlink || n.Target != "rescue" {
		t.Errorf("/bin: %+v, want the set's symlink to rescue", n)
	}
	sh, _ := tr.Get("rescue/sh")
	if n, _ := tr.Get("sbin/init"); n != sh {
		t.Errorf("/sbin/init: %+v, want a link to /rescue/sh", n)
	}
}

// TestBuildBpfNode reads /dev/bpf back from images of both ports: char
// 23,0 (bpfilter in majors.i386 and majors.amd64), mode 0600, root's.
// dhcpcd opens /dev/bpf for its DHCP packets and, finding none, gives up
// IPv4, so basicrc's DHCP got no lease on any image.
func TestBuildBpfNode(t *testing.T) {
	imagecheck.Need(t, "debugfs")
	set := rescueSet(t, "tar")
	for _, arch := range []string{imagebuilder.ArchI386, imagebuilder.ArchAMD64} {
		t.Run(arch, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "root.img")
			cfg := imagebuilder.Config{Sets: []string{set}, Service: loadService(t, "rescue", ""), Arch: arch, Timestamp: ts}
			if err := imagebuilder.Build(context.Background(), cfg, img); err != nil {
				t.Fatal(err)
			}
			got := imagecheck.Debugfs(t, img, "stat /dev/bpf")
			for _, want := range []string{"Type: character special", "Mode:  0600", "User:     0   Group:     0", "Device major/minor number: 23:00 "} {
				if !strings.Contains(got, want) {
					t.Errorf("/dev/bpf: want %q in\n%s", want, got)
				}
			}
		})
	}
}
