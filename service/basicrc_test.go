package service_test

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder"
	"github.com/smolvmm/smolvmm/service"
)

// stubShell runs the built-in rc scripts under the host's /bin/sh, since
// no NetBSD userland boots here, with only stub commands on PATH: each
// logs its name and arguments, then runs the body it was given.
type stubShell struct {
	t        *testing.T
	dir, bin string
	log      string // what the stubs ran, a line each
}

func newStubShell(t *testing.T) *stubShell {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	dir := t.TempDir()
	s := &stubShell{t: t, dir: dir, bin: filepath.Join(dir, "bin"), log: filepath.Join(dir, "log")}
	if err := os.Mkdir(s.bin, 0o755); err != nil {
		t.Fatal(err)
	}
	return s
}

// stub makes the command name, which logs "name args" and runs body.
func (s *stubShell) stub(name, body string) {
	s.t.Helper()
	script := "#!/bin/sh\necho \"" + name + " $*\" >> \"$LOG\"\n" + body + "\n"
	if err := os.WriteFile(filepath.Join(s.bin, name), []byte(script), 0o755); err != nil {
		s.t.Fatal(err)
	}
}

// host puts the host's program name among the stubs, unlogged.
func (s *stubShell) host(name string) {
	s.t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		s.t.Skip("no " + name)
	}
	if err := os.Symlink(p, filepath.Join(s.bin, name)); err != nil {
		s.t.Fatal(err)
	}
}

// run runs script with the stubs alone on PATH and env added, returning
// what it wrote to stdout and stderr.
func (s *stubShell) run(script string, env ...string) (string, error) {
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Env = append([]string{"LOG=" + s.log, "PATH=" + s.bin}, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// calls is what the stubs ran, a line each.
func (s *stubShell) calls() string {
	b, _ := os.ReadFile(s.log)
	return string(b)
}

// fstab writes content as the image's /etc/fstab, returning its path.
func (s *stubShell) fstab(content string) string {
	s.t.Helper()
	p := filepath.Join(s.dir, "fstab")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		s.t.Fatal(err)
	}
	return p
}

// basicrcPath is basicrc's PATH line, which basicrcFor points at the stubs.
const basicrcPath = "PATH=/sbin:/bin:/usr/sbin:/usr/bin:/rescue\n"

// basicrcFor is the built-in basicrc with s's stubs on its PATH.
func basicrcFor(s *stubShell) string {
	s.t.Helper()
	svc, err := service.Load("rescue", "")
	if err != nil {
		s.t.Fatal(err)
	}
	b, err := fs.ReadFile(svc.Common, "basicrc")
	if err != nil {
		s.t.Fatal(err)
	}
	if strings.Count(string(b), basicrcPath) != 1 {
		s.t.Fatalf("basicrc does not set %q once: the test puts its stubs there", basicrcPath)
	}
	return strings.Replace(string(b), basicrcPath, "PATH="+s.bin+"\n", 1)
}

// TestBasicrcNetwork runs the built-in basicrc under the host's /bin/sh
// with stub commands that record their arguments, since no NetBSD userland
// boots here: it takes its address by DHCP when dhcpcd is there and
// succeeds (the shared network leases each MAC its own address and drops
// frames from any other), falls back to QEMU's fixed address otherwise,
// and leaves a VM without a network card alone.
//
// A root disk given read-only (-d IMG,ro), which the RO feature on ld0's
// attach line in dmesg tells, stays read-only: NetBSD 9's ld fails each
// write to it with EIO, yet mount -u -w / succeeded (and mount -a, which
// updates / with fstab's rw), every later write failing with "ld0a: error
// writing fsbn". basicrc mounts fstab's other file systems and tmpfs on
// /tmp and /var/run instead, and writes no /etc/resolv.conf, saying so
// when the image's names no server.
func TestBasicrcNetwork(t *testing.T) {
	const (
		static = "ifconfig vioif0 inet 10.0.2.15 netmask 255.255.255.0 up\nroute -q add default 10.0.2.2\n"
		dhcp   = "dhcpcd -q -4 -A --nodelay -w -t 10 vioif0\n"
	)
	// ld0's attach line after the kernel's timestamp, as NetBSD 9.1's
	// virtio_child_attach_start prints it: snprintb of the features
	// agreed, named by VIRTIO_BLK_FLAG_BITS (VIRTIO_COMMON_FLAG_BITS'
	// INDIRECT_DESC, then the blk bits from the highest), of those
	// smolvmm's disk offers (virtio/blk Disk.Features: SIZE_MAX,
	// SEG_MAX, FLUSH, INDIRECT_DESC, and RO for a read-only one).
	// NetBSD 10's virtio.c prints the word in lower case.
	const (
		rwDisk = "[   1.0131] ld0 at virtio1: Features: 0x10000206<INDIRECT_DESC,FLUSH,SEG_MAX,SIZE_MAX>\n" +
			"[   1.0131] ld0: 10240 KB, 0 cyl, 64 head, 32 sec, 512 bytes/sect x 20480 sectors\n" +
			"[   1.0132] ld1 at virtio2: Features: 0x10000226<INDIRECT_DESC,FLUSH,RO,SEG_MAX,SIZE_MAX>\n"
		roDisk   = "[   1.0131] ld0 at virtio1: Features: 0x10000226<INDIRECT_DESC,FLUSH,RO,SEG_MAX,SIZE_MAX>\n"
		rwDisk10 = "[   1.0131] ld0 at virtio1: features: 0x10000206<INDIRECT_DESC,FLUSH,SEG_MAX,SIZE_MAX>\n" +
			"[   1.0132] ld1 at virtio2: features: 0x10000226<INDIRECT_DESC,FLUSH,RO,SEG_MAX,SIZE_MAX>\n"
		roDisk10 = "[   1.0131] ld0 at virtio1: features: 0x10000226<INDIRECT_DESC,FLUSH,RO,SEG_MAX,SIZE_MAX>\n"
		rwRoot   = "dmesg \nfsck -p /\nmount -u -w /\nmount -a\n"
		roRoot   = "dmesg \nmount -a -t noext2fs\nmount -t tmpfs tmpfs /tmp\nmount -t tmpfs tmpfs /var/run\n"
		noNS     = "basicrc: / is read-only (its disk was given read-only): /etc/resolv.conf names no DNS server, and none can be written; put one in the image (nameserver 10.0.2.3)\n"
	)
	for _, tc := range []struct {
		name      string
		nic       bool
		dhcpcd    string // the stub's body; "" for none
		resolv    string // /etc/resolv.conf before
		dmesg     string
		ro        bool   // dmesg shows ld0 read-only
		wantCalls string // after the mounts and ifconfig vioif0
		wantNS    string
		wantOut   string
	}{
		{"dhcp", true, "exit 0", "", rwDisk, false, dhcp, "nameserver 10.0.2.3\n", ""},
		{"dhcp with hooks", true, "echo 'nameserver 192.0.2.53' > \"$RESOLV\"", "", rwDisk, false, dhcp, "nameserver 192.0.2.53\n", ""},
		{"dhcp keeps the old resolv.conf", true, "exit 0", "search x\nnameserver 192.0.2.9\n", rwDisk, false, dhcp, "search x\nnameserver 192.0.2.9\n", ""},
		{"dhcp fails", true, "exit 1", "", rwDisk, false, dhcp + static, "nameserver 10.0.2.3\n", ""},
		{"no dhcpcd", true, "", "nameserver 192.0.2.9\n", rwDisk, false, static, "nameserver 10.0.2.3\n", ""},
		{"no network card", false, "exit 0", "", rwDisk, false, "", "", ""},
		{"no dmesg", false, "exit 0", "", "", false, "", "", ""},
		{"read-only root, dhcp", true, "exit 0", "nameserver 192.0.2.9\n", roDisk, true, dhcp, "nameserver 192.0.2.9\n", ""},
		{"read-only root, no dhcpcd", true, "", "nameserver 192.0.2.9\n", roDisk, true, static, "nameserver 192.0.2.9\n", ""},
		{"read-only root, no nameserver", true, "exit 1", "", roDisk, true, dhcp + static, "", noNS},
		{"read-only root, no network card", false, "exit 0", "", roDisk, true, "", "", ""},
		{"read-only root, no timestamps", false, "exit 0", "", strings.TrimPrefix(roDisk, "[   1.0131] "), true, "", "", ""},
		{"NetBSD 10", true, "exit 0", "", rwDisk10, false, dhcp, "nameserver 10.0.2.3\n", ""},
		{"NetBSD 10, read-only root", true, "exit 0", "nameserver 192.0.2.9\n", roDisk10, true, dhcp, "nameserver 192.0.2.9\n", ""},
		{"NetBSD 10, read-only root, no nameserver", true, "exit 1", "", roDisk10, true, dhcp + static, "", noNS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sh := newStubShell(t)
			sh.host("grep")
			resolv := filepath.Join(sh.dir, "resolv.conf")
			sh.stub("mount", "exit 0")
			sh.stub("route", "exit 0")
			sh.stub("fsck", "exit 0")
			sh.stub("fsck_ext2fs", "exit 0")
			nic := "exit 0"
			if !tc.nic {
				nic = `[ "$*" = vioif0 ] && exit 1; exit 0`
			}
			sh.stub("ifconfig", nic)
			if tc.dhcpcd != "" {
				sh.stub("dhcpcd", tc.dhcpcd)
			}
			if tc.dmesg != "" {
				sh.stub("dmesg", "printf '%s' '"+tc.dmesg+"'")
			}
			if tc.resolv != "" {
				os.WriteFile(resolv, []byte(tc.resolv), 0o644)
			}
			rc := strings.ReplaceAll(basicrcFor(sh), "/etc/resolv.conf", resolv)
			rc = strings.ReplaceAll(rc, "/etc/fstab", sh.fstab(imagebuilder.Fstab))
			varRun := filepath.Join(sh.dir, "var/run")
			os.MkdirAll(varRun, 0o755)
			rc = strings.ReplaceAll(rc, "/var/run", varRun)
			wantOut := strings.ReplaceAll(tc.wantOut, "/etc/resolv.conf", resolv)
			if out, err := sh.run(rc, "RESOLV="+resolv); err != nil || out != wantOut {
				t.Fatalf("basicrc: %v, output %q, want %q", err, out, wantOut)
			}
			mounts := rwRoot
			switch {
			case tc.dmesg == "":
				mounts = "fsck -p /\nmount -u -w /\nmount -a\n"
			case tc.ro:
				mounts = strings.Replace(roRoot, "/var/run", varRun, 1)
			}
			want := mounts + "ifconfig vioif0\n" + tc.wantCalls + "ifconfig lo0 inet 127.0.0.1 up\n"
			if calls := sh.calls(); calls != want {
				t.Errorf("commands run:\n%s\nwant:\n%s", calls, want)
			}
			ns, _ := os.ReadFile(resolv)
			if string(ns) != tc.wantNS {
				t.Errorf("resolv.conf = %q, want %q", ns, tc.wantNS)
			}
		})
	}
}

// TestBasicrcFsck runs the built-in basicrc with a stub fsck: the root is
// checked with fsck -p before it is made read-write, as NetBSD's
// rc.d/fsck_root does, so that a root a VM stopped from the host left
// unclean is not mounted read-write marked with errors for good.
//
// fsck's exit status 4 (FSCK_EXIT_ROOT_CHANGED: it repaired the root and
// could not make the kernel re-read it) reboots, which ends a smolvmm VM
// (status 0), nothing mounted, and the console says to start the VM
// again; a failed reboot keeps the root read-only. Every other status
// fails open: fsck_ext2fs exits 8 without checking anything when the
// superblock and its first backup differ where it does not expect them
// to (the last mount point NetBSD writes into the superblock alone), and
// fsck exits 1 for a /etc/fstab without /, so the root is mounted
// read-write as before basicrc checked it, with a warning naming the
// status. An image without fsck, without fsck_ext2fs, or whose fstab has
// no line for /, is not checked: its root is mounted unchecked with a
// warning naming what is missing (the last two were silent). A read-only
// disk is not checked.
func TestBasicrcFsck(t *testing.T) {
	const (
		check   = "fsck -p /\n"
		rw      = "mount -u -w /\n" + "mount -a\n"
		ro      = "mount -a -t noext2fs\nmount -t tmpfs tmpfs /tmp\nmount -t tmpfs tmpfs VARRUN\n"
		roDisk  = "[   1.0131] ld0 at virtio1: Features: 0x10000226<INDIRECT_DESC,FLUSH,RO,SEG_MAX,SIZE_MAX>\n"
		rwDisk  = "[   1.0131] ld0 at virtio1: Features: 0x10000206<INDIRECT_DESC,FLUSH,SEG_MAX,SIZE_MAX>\n"
		reboots = "basicrc: fsck repaired /, which the kernel could not re-read: rebooting, which ends this VM; start it again\n"
		fstab   = "/dev/ld0a / ext2fs rw 1 1\n"
	)
	unchecked := func(missing string) string {
		return "basicrc: warning: " + missing + ": / is mounted read-write unchecked\n"
	}
	failed := func(status string) string {
		return "basicrc: warning: fsck -p / failed (exit status " + status + "): / was not checked or not repaired, and is mounted read-write as it is; to check it, stop the VM and run e2fsck -f on its image\n"
	}
	for _, tc := range []struct {
		name       string
		dmesg      string
		fsck       string // the stub's body; "" for none
		noExt2fs   bool   // no fsck_ext2fs
		fstab      string // /etc/fstab; "" for none
		reboot     string // the reboot stub's body
		wantCalls  string
		wantOut    string
		wantKilled bool // the reboot ended the script
	}{
		{"clean", rwDisk, "exit 0", false, fstab, "", "dmesg \n" + check + rw, "", false},
		{"no dmesg", "", "exit 0", false, fstab, "", check + rw, "", false},
		{"root changed", rwDisk, "exit 4", false, fstab, "kill -KILL $PPID", "dmesg \n" + check + "reboot \n", reboots, true},
		{"root changed, reboot fails", rwDisk, "exit 4", false, fstab, "exit 1", "dmesg \n" + check + "reboot \n" + ro,
			reboots + "basicrc: reboot failed: / stays read-only; end the VM and start it again\n", false},
		{"not the disk", rwDisk, "exit 1", false, fstab, "", "dmesg \n" + check + rw, failed("1"), false},
		{"unresolved", rwDisk, "exit 2", false, fstab, "", "dmesg \n" + check + rw, failed("2"), false},
		{"check failed", rwDisk, "exit 8", false, fstab, "", "dmesg \n" + check + rw, failed("8"), false},
		{"no fsck", rwDisk, "", false, fstab, "", "dmesg \n" + rw, unchecked("the image has no fsck"), false},
		{"no fsck_ext2fs", rwDisk, "exit 8", true, fstab, "", "dmesg \n" + rw, unchecked("the image has no fsck_ext2fs"), false},
		{"no fstab", rwDisk, "exit 1", false, "", "", "dmesg \n" + rw, unchecked("/etc/fstab has no line for /"), false},
		{"no / in fstab", rwDisk, "exit 1", false, "# /dev/ld0a / ext2fs rw 1 1\n/dev/ld1a /data ext2fs rw 1 2\n/dev/ld2a /x/ ext2fs rw 1 2\n", "", "dmesg \n" + rw, unchecked("/etc/fstab has no line for /"), false},
		{"/ among others", rwDisk, "exit 0", false, "ptyfs /dev/pts ptyfs rw 0 0\n\t/dev/ld0a\t/\text2fs rw 1 1\n", "", "dmesg \n" + check + rw, "", false},
		{"/ last, no newline", rwDisk, "exit 0", false, "/dev/ld0a /", "", "dmesg \n" + check + rw, "", false},
		{"read-only disk", roDisk, "exit 8", false, fstab, "", "dmesg \n" + ro, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sh := newStubShell(t)
			sh.host("grep")
			sh.stub("mount", "exit 0")
			if tc.fsck != "" {
				sh.stub("fsck", tc.fsck)
			}
			if !tc.noExt2fs {
				sh.stub("fsck_ext2fs", "exit 0")
			}
			sh.stub("reboot", tc.reboot)
			sh.stub("ifconfig", `[ "$*" = vioif0 ] && exit 1; exit 0`)
			if tc.dmesg != "" {
				sh.stub("dmesg", "printf '%s' '"+tc.dmesg+"'")
			}
			fstabPath := filepath.Join(sh.dir, "fstab")
			if tc.fstab != "" {
				fstabPath = sh.fstab(tc.fstab)
			}
			varRun := filepath.Join(sh.dir, "var/run")
			os.MkdirAll(varRun, 0o755)
			rc := strings.ReplaceAll(basicrcFor(sh), "/var/run", varRun)
			rc = strings.ReplaceAll(rc, "/etc/fstab", fstabPath)
			out, err := sh.run(rc)
			if killed := err != nil && strings.Contains(err.Error(), "killed"); killed != tc.wantKilled || (err != nil && !killed) {
				t.Errorf("basicrc: %v, want killed by the reboot: %v", err, tc.wantKilled)
			}
			if wantOut := strings.ReplaceAll(tc.wantOut, "/etc/fstab", fstabPath); out != wantOut {
				t.Errorf("output %q, want %q", out, wantOut)
			}
			want := strings.ReplaceAll(tc.wantCalls, "VARRUN", varRun)
			if !tc.wantKilled {
				want += "ifconfig vioif0\nifconfig lo0 inet 127.0.0.1 up\n" // no network card
			}
			if calls := sh.calls(); calls != want {
				t.Errorf("commands run:\n%s\nwant:\n%s", calls, want)
			}
		})
	}
}

// TestBuiltinRcEndsVM runs the built-in services' etc/rc with stubs: each
// powers the VM off once its shell exits. NetBSD's init starts gettys
// only after /etc/rc exits, the images' /etc/ttys switches none on, and
// with no child left init waits for none (waitpid failing with ECHILD
// at once, again and again): a rescue rc that ended after its sh left
// the guest spinning at full CPU with nothing on the console.
func TestBuiltinRcEndsVM(t *testing.T) {
	const include = ". /etc/include/basicrc\n"
	for _, tc := range []struct {
		name, shutdown string
		wantCalls      string // after basicrc
	}{
		{"rescue", "exit 0", "sh \nhalt -p\n"},
		{"base", "exit 0", "ksh \nshutdown -p now\n"},
		{"base", "exit 1", "ksh \nshutdown -p now\nhalt -p\n"},
	} {
		t.Run(tc.name+" "+tc.shutdown, func(t *testing.T) {
			svc, err := service.Load(tc.name, "")
			if err != nil {
				t.Fatal(err)
			}
			b, err := fs.ReadFile(svc.FS, "etc/rc")
			if err != nil {
				t.Fatal(err)
			}
			if strings.Count(string(b), include) != 1 {
				t.Fatalf("etc/rc does not source basicrc once (%q): the test puts a stub there", include)
			}
			sh := newStubShell(t)
			for _, c := range []string{"sh", "ksh", "halt"} {
				sh.stub(c, "exit 0")
			}
			sh.stub("shutdown", tc.shutdown)
			stubRc := filepath.Join(sh.dir, "basicrc")
			if err := os.WriteFile(stubRc, []byte("echo basicrc >> \"$LOG\"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := sh.run(strings.Replace(string(b), include, ". "+stubRc+"\n", 1)); err != nil || out != "" {
				t.Errorf("etc/rc: %v, output %q", err, out)
			}
			if calls, want := sh.calls(), "basicrc\n"+tc.wantCalls; calls != want {
				t.Errorf("commands run:\n%s\nwant:\n%s", calls, want)
			}
		})
	}
}
