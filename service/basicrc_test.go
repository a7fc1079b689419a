package service_test

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/service"
)

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
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	grep, err := exec.LookPath("grep")
	if err != nil {
		t.Skip("no grep")
	}
	s, err := service.Load("rescue", "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := fs.ReadFile(s.Common, "basicrc")
	if err != nil {
		t.Fatal(err)
	}
	const pathLine = "PATH=/sbin:/bin:/usr/sbin:/usr/bin:/rescue\n"
	if strings.Count(string(b), pathLine) != 1 {
		t.Fatalf("basicrc does not set %q once: the test puts its stubs there", pathLine)
	}
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
		rwRoot   = "dmesg \nmount -u -w /\nmount -a\n"
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
			dir := t.TempDir()
			bin := filepath.Join(dir, "bin")
			log := filepath.Join(dir, "log")
			resolv := filepath.Join(dir, "resolv.conf")
			os.Mkdir(bin, 0o755)
			if err := os.Symlink(grep, filepath.Join(bin, "grep")); err != nil {
				t.Fatal(err)
			}
			stub := func(name, body string) {
				script := "#!/bin/sh\necho \"" + name + " $*\" >> \"$LOG\"\n" + body + "\n"
				if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			stub("mount", "exit 0")
			stub("route", "exit 0")
			nic := "exit 0"
			if !tc.nic {
				nic = `[ "$*" = vioif0 ] && exit 1; exit 0`
			}
			stub("ifconfig", nic)
			if tc.dhcpcd != "" {
				stub("dhcpcd", tc.dhcpcd)
			}
			if tc.dmesg != "" {
				stub("dmesg", "printf '%s' '"+tc.dmesg+"'")
			}
			if tc.resolv != "" {
				os.WriteFile(resolv, []byte(tc.resolv), 0o644)
			}
			rc := strings.Replace(string(b), pathLine, "PATH="+bin+"\n", 1)
			rc = strings.ReplaceAll(rc, "/etc/resolv.conf", resolv)
			varRun := filepath.Join(dir, "var/run")
			os.MkdirAll(varRun, 0o755)
			rc = strings.ReplaceAll(rc, "/var/run", varRun)
			cmd := exec.Command("/bin/sh", "-c", rc)
			cmd.Env = []string{"LOG=" + log, "RESOLV=" + resolv, "PATH=" + bin}
			wantOut := strings.ReplaceAll(tc.wantOut, "/etc/resolv.conf", resolv)
			if out, err := cmd.CombinedOutput(); err != nil || string(out) != wantOut {
				t.Fatalf("basicrc: %v, output %q, want %q", err, out, wantOut)
			}
			calls, _ := os.ReadFile(log)
			mounts := rwRoot
			switch {
			case tc.dmesg == "":
				mounts = "mount -u -w /\nmount -a\n"
			case tc.ro:
				mounts = strings.Replace(roRoot, "/var/run", varRun, 1)
			}
			want := mounts + "ifconfig vioif0\n" + tc.wantCalls + "ifconfig lo0 inet 127.0.0.1 up\n"
			if string(calls) != want {
				t.Errorf("commands run:\n%s\nwant:\n%s", calls, want)
			}
			ns, _ := os.ReadFile(resolv)
			if string(ns) != tc.wantNS {
				t.Errorf("resolv.conf = %q, want %q", ns, tc.wantNS)
			}
		})
	}
}
