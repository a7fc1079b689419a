package main

import (
	"net"
	"slices"
	"testing"

	"github.com/smolvmm/smolvmm/bench"
)

// bench --parallel's default MACs on a shared network are the user's own:
// the network keeps a MAC for the user whose VM leased it, and with one
// range for every user a second user's bench on a group's network had
// every VM refused. Two users' ranges do not meet for up to 256 VMs
// (more than a network's 240 addresses), whatever the uids but 65536
// apart; root keeps the range of before.
func TestDefaultParallelMAC(t *testing.T) {
	const n = 256
	if got, want := defaultParallelMAC(0).String(), "52:54:00:5b:00:00"; got != want {
		t.Errorf("root's first MAC %s, want %s", got, want)
	}
	// 5001 is 0x1389: 0x1389 ^ 0x5b00 is 0x4889.
	if got, want := defaultParallelMAC(5001).String(), "52:54:00:48:89:00"; got != want {
		t.Errorf("uid 5001's first MAC %s, want %s", got, want)
	}
	macs := func(uid int) []string {
		next := parallelMACs(defaultParallelMAC(uid))
		var s []string
		for i := range n {
			args := next(i)
			if len(args) != 2 || args[0] != "--mac" {
				t.Fatalf("uid %d, VM %d: %q", uid, i, args)
			}
			m, err := net.ParseMAC(args[1])
			if err != nil {
				t.Fatal(err)
			}
			if m[0] != 0x52 || m[1] != 0x54 || m[2] != 0 {
				t.Errorf("uid %d, VM %d: %s is not 52:54:00's", uid, i, m)
			}
			s = append(s, args[1])
		}
		return s
	}
	for _, pair := range [][2]int{
		{5001, 5002}, // the audit's two users of a group's network
		{0, 5001},
		{0, 1},
		{1000, 1256}, // the same low byte
		{1, 256},
		{0, 65535},
		{65534, 65535},
	} {
		a, b := macs(pair[0]), macs(pair[1])
		if len(slices.Compact(slices.Sorted(slices.Values(a)))) != n {
			t.Errorf("uid %d's %d VMs share MACs", pair[0], n)
		}
		for i, m := range a {
			if slices.Contains(b, m) {
				t.Errorf("uid %d's VM %d has %s, as one of uid %d's", pair[0], i, m, pair[1])
				break
			}
		}
	}
}

// A bench whose VMs were refused a MAC another user's VMs leased is told
// to give itself a --mac range of its own: the VMs' own advice, a --mac
// for each, is not bench's to take.
func TestParallelHintsMACOwner(t *testing.T) {
	errs := []string{
		"exit status 1 before its first console byte: smolvmm bench: shared network /tmp/sn/g/n.sock refused the VM: MAC leased to another user: MAC 52:54:00:5b:00:00 is leased (10.0.2.35) to the VMs of uid 5001, and the VM's process runs as uid 5002: only that user's VMs and root's may join with it (give this VM a --mac of its own)",
		"exit status 1 before its first console byte: smolvmm bench: shared network /tmp/sn/g/n.sock refused the VM: MAC leased to another user: MAC 52:54:00:5b:00:01 is leased (10.0.2.36) to the VMs of uid 5001, and the VM's process runs as uid 5002: only that user's VMs and root's may join with it (give this VM a --mac of its own)",
	}
	res := &bench.ParallelResults{}
	for i, e := range errs {
		res.VMs = append(res.VMs, bench.VM{Index: i, Error: e})
	}
	want := []string{"some VMs' MACs are leased to another user's VMs on the network: give this bench a --mac of its own, the first of its VMs' (VM i gets MAC + i), from a range no other user's VMs have used"}
	if got := parallelHints(res); !slices.Equal(got, want) {
		t.Errorf("hints %q, want %q", got, want)
	}
}
