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
	for _, tc := range []struct {
		name      string
		nic       bool
		dhcpcd    string // the stub's body; "" for none
		resolv    string // /etc/resolv.conf before
		wantCalls string // after mount -u -w /, mount -a, ifconfig vioif0
		wantNS    string
	}{
		{"dhcp", true, "exit 0", "", dhcp, "nameserver 10.0.2.3\n"},
		{"dhcp with hooks", true, "echo 'nameserver 192.0.2.53' > \"$RESOLV\"", "", dhcp, "nameserver 192.0.2.53\n"},
		{"dhcp keeps the old resolv.conf", true, "exit 0", "search x\nnameserver 192.0.2.9\n", dhcp, "search x\nnameserver 192.0.2.9\n"},
		{"dhcp fails", true, "exit 1", "", dhcp + static, "nameserver 10.0.2.3\n"},
		{"no dhcpcd", true, "", "nameserver 192.0.2.9\n", static, "nameserver 10.0.2.3\n"},
		{"no network card", false, "exit 0", "", "", ""},
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
			if tc.resolv != "" {
				os.WriteFile(resolv, []byte(tc.resolv), 0o644)
			}
			rc := strings.Replace(string(b), pathLine, "PATH="+bin+"\n", 1)
			rc = strings.ReplaceAll(rc, "/etc/resolv.conf", resolv)
			cmd := exec.Command("/bin/sh", "-c", rc)
			cmd.Env = []string{"LOG=" + log, "RESOLV=" + resolv, "PATH=" + bin}
			if out, err := cmd.CombinedOutput(); err != nil || len(out) != 0 {
				t.Fatalf("basicrc: %v, output %q", err, out)
			}
			calls, _ := os.ReadFile(log)
			want := "mount -u -w /\nmount -a\nifconfig vioif0\n" + tc.wantCalls + "ifconfig lo0 inet 127.0.0.1 up\n"
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
