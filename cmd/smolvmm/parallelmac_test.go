package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestParallelMACRange: bench --parallel refuses VMs whose MACs, the first
// one + i in the last two bytes, would pass them, from the user's own
// default on a shared network as from --mac: a uid whose low byte is 0xff
// has 52:54:00:XX:ff:00 first, and its 257th VM wrapped silently to
// another uid's first MAC (uid 1023's to uid 768's 52:54:00:58:00:00).
func TestParallelMACRange(t *testing.T) {
	const shared = "user:/run/smolvmm/g.sock"
	// uid 1023 is 0x03ff: 0x03ff ^ 0x5b00 is 0x58ff.
	const uid1023 = "smolvmm bench: --parallel 257 on --net user:/run/smolvmm/g.sock without --mac: VM i gets uid 1023's own MAC + i, and 257 VMs from 52:54:00:58:ff:00 would pass 52:54:00:58:ff:ff; give a --mac, the first VM's, whose last two bytes leave room for them"
	for _, tt := range []struct {
		n         int
		mac, net  string
		uid       int
		wantError string // "" for none
	}{
		{256, "", shared, 1023, ""},
		{257, "", shared, 1023, uid1023},
		{257, "", shared, 255, "smolvmm bench: --parallel 257 on --net user:/run/smolvmm/g.sock without --mac: VM i gets uid 255's own MAC + i, and 257 VMs from 52:54:00:5b:ff:00 would pass 52:54:00:5b:ff:ff; give a --mac, the first VM's, whose last two bytes leave room for them"},
		{300, "", shared, 0, ""},    // 52:54:00:5b:00:00 up: another user's beyond 256, as documented, no wrap
		{300, "", "user", 1023, ""}, // a VM's own network: no MAC from the bench
		{257, "52:54:00:00:00:00", shared, 1023, ""},
		{2, "52:54:00:00:ff:fe", "user", 0, ""},
		{3, "52:54:00:00:ff:fe", "user", 0, "smolvmm bench: --mac 52:54:00:00:ff:fe with --parallel 3: VM i gets --mac + i, and 3 VMs from 52:54:00:00:ff:fe would pass 52:54:00:00:ff:ff; give a lower --mac"},
		{3, "52:54:00:00:ff:fe", shared, 1023, "smolvmm bench: --mac 52:54:00:00:ff:fe with --parallel 3: VM i gets --mac + i, and 3 VMs from 52:54:00:00:ff:fe would pass 52:54:00:00:ff:ff; give a lower --mac"},
		{3, "bogus", shared, 1023, ""}, // netConfig says what is wrong with it
	} {
		err := checkParallelMACs(tt.n, tt.mac, tt.net, tt.uid)
		got := ""
		if err != nil {
			got = err.Error()
			if ec, ok := err.(cli.ExitCoder); !ok || ec.ExitCode() != 2 {
				t.Errorf("--parallel %d --mac %q --net %s as uid %d: %v is not a usage error (status 2)", tt.n, tt.mac, tt.net, tt.uid, err)
			}
		}
		if got != tt.wantError {
			t.Errorf("--parallel %d --mac %q --net %s as uid %d: %q, want %q", tt.n, tt.mac, tt.net, tt.uid, got, tt.wantError)
		}
	}
}

// TestParallelDefaultMACWrapRefused: the refusal comes from the bench of
// uid 1023 itself, status 2, before it looks for the network or KVM.
func TestParallelDefaultMACWrapRefused(t *testing.T) {
	setpriv := rootSetpriv(t, "to start the bench as uid 1023") // contain_test.go
	dir := t.TempDir()
	sock := filepath.Join(dir, "g.sock")
	// CAP_DAC_OVERRIDE reaches the test's executable, in root's
	// directory; nothing else needs it.
	_, stderr, status := runProgramIn(t, "", setpriv, "--reuid=1023", "--regid=1023", "--clear-groups",
		"--inh-caps=+dac_override", "--ambient-caps=+dac_override", "--",
		smolvmmBin(t), "bench", "--parallel", "257", "--net", "user:"+sock, "--kvm-device", filepath.Join(dir, "kvm")) // snapshotsafe_test.go
	want := fmt.Sprintf("--parallel 257 on --net user:%s without --mac: VM i gets uid 1023's own MAC + i, and 257 VMs from 52:54:00:58:ff:00 would pass 52:54:00:58:ff:ff", sock)
	if status != 2 || !strings.Contains(stderr, want) {
		t.Errorf("status %d, stderr %q; want 2 and %q", status, stderr, want)
	}
}
