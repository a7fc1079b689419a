package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The documentation's systemd unit for smolvmm net (docs/network.md) keeps its leases where they
// outlive a reboot and runs hardened with what the daemon needs (its
// socket's group: CAP_CHOWN; root's VMs' forwards below 1024:
// CAP_NET_BIND_SERVICE; its runtime and state directories writable), and,
// where systemd-analyze is installed, verifies without a warning.
func TestReadmeNetUnit(t *testing.T) {
	m := regexp.MustCompile("(?s)# /etc/systemd/system/smolvmm-net@.service[^\n]*\n(\\[Unit\\].*?)```").FindStringSubmatch(docs(t))
	if m == nil {
		t.Fatal("the documentation (README.md, docs/*.md) has no smolvmm-net@.service unit")
	}
	unit := m[1]
	for _, want := range []string{
		"--leases /var/lib/smolvmm/%i.leases",
		"\nStateDirectory=smolvmm\n",
		"\nRuntimeDirectory=smolvmm smolvmm/net\n",
		"\nRuntimeDirectoryPreserve=yes\n",
		"\nCapabilityBoundingSet=CAP_CHOWN CAP_NET_BIND_SERVICE\n",
		"\nNoNewPrivileges=yes\n",
		"\nProtectSystem=strict\n",
		"\nProtectHome=yes\n",
		"\nPrivateTmp=yes\n",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("the documentation's unit lacks %q:\n%s", strings.TrimSpace(want), unit)
		}
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("no systemd-analyze to verify the unit")
	}
	dir := t.TempDir()
	// verify wants the command to exist.
	unit = strings.ReplaceAll(unit, "/usr/local/bin/smolvmm", smolvmmBin(t))
	path := filepath.Join(dir, "smolvmm-net@web.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
