package netback

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/smolvmm/smolvmm/internal/testsock"
)

// One user's VMs hold at most half the pool's addresses at once: a
// process of one user joined with 240 MACs and took them all, and every
// other user's VM was then refused. The VM over the limit is refused as
// RefusedUserLimit, which a VM that lost the network retries (VMs
// leave), with a message naming the limit; other users still join, and
// root's VMs and those of the network's own user are not limited.
func TestHubUserLimit(t *testing.T) {
	var uid atomic.Int64 // the user of the next join
	h, err := newHub(HubConfig{Socket: filepath.Join(testsock.Dir(t), "n.sock"), Logf: t.Logf}, hubHooks{
		peerUID: func(net.Conn) (int, error) { return int(uid.Load()), nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	limit := poolSize() / 2
	mac := 0
	join := func(u int) (*Joined, error) {
		t.Helper()
		uid.Store(int64(u))
		mac++
		j, err := Join(h.Socket(), net.HardwareAddr{0x52, 0x54, 0, 2, byte(mac >> 8), byte(mac)}, nil)
		if j != nil {
			t.Cleanup(func() { j.Close() })
		}
		return j, err
	}
	for i := range limit {
		if _, err := join(1000); err != nil {
			t.Fatalf("uid 1000's VM %d: %v", i+1, err)
		}
	}
	_, err = join(1000)
	var re *RefusedError
	want := "uid 1000 has 120 VMs connected, the most one user's VMs may have at once (half of the network's 240 addresses"
	if !errors.As(err, &re) || re.Reason != RefusedUserLimit || re.Permanent() || !strings.Contains(re.Message, want) {
		t.Errorf("uid 1000's VM %d: %v; want a passing refusal, too many VMs of one user, saying %q", limit+1, err, want)
	}
	if _, err := join(2000); err != nil {
		t.Errorf("uid 2000's VM: %v, want it let in", err)
	}
	// Root's and the network's own user's (the same when the tests run
	// as root) are not limited: together with uid 1000's they fill the
	// pool.
	for i := range poolSize() - limit - 1 {
		u := 0
		if i%2 == 1 {
			u = os.Geteuid()
		}
		if _, err := join(u); err != nil {
			t.Fatalf("uid %d's VM %d: %v", u, i+1, err)
		}
	}
	if n := h.Stats().VMs; n != poolSize() {
		t.Errorf("%d VMs joined, want %d", n, poolSize())
	}
}

// The limit counts a VM as its owner's: root's process that says its VM
// runs as uid 1000 (run --user alice) counts as uid 1000's. Counted as
// root's, 121 such VMs joined, and once the network restarted and they
// rejoined as uid 1000's processes, one stayed offline, retrying.
func TestHubUserLimitCountsOwner(t *testing.T) {
	limit := poolSize() / 2
	for _, tt := range []struct {
		name string
		// uids and runsAs are the user of each join's process and
		// the user it says its VM runs as, cycled over the joins.
		uids, runsAs []int
	}{
		{"root running as 1000", []int{0}, []int{1000}},
		{"root running as 1000 and 1000", []int{0, 1000}, []int{1000, 0}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var uid atomic.Int64
			h, err := newHub(HubConfig{Socket: filepath.Join(testsock.Dir(t), "n.sock"), Logf: t.Logf}, hubHooks{
				peerUID: func(net.Conn) (int, error) { return int(uid.Load()), nil },
			})
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			join := func(i int) (*Joined, error) {
				uid.Store(int64(tt.uids[i%len(tt.uids)]))
				j, err := JoinWith(h.Socket(), net.HardwareAddr{0x52, 0x54, 0, 3, byte(i >> 8), byte(i)}, nil, JoinOptions{RunsAs: tt.runsAs[i%len(tt.runsAs)]})
				if j != nil {
					t.Cleanup(func() { j.Close() })
				}
				return j, err
			}
			for i := range limit {
				if _, err := join(i); err != nil {
					t.Fatalf("VM %d: %v", i+1, err)
				}
			}
			_, err = join(limit)
			var re *RefusedError
			want := "uid 1000 has 120 VMs connected"
			if !errors.As(err, &re) || re.Reason != RefusedUserLimit || !strings.Contains(re.Message, want) {
				t.Errorf("VM %d: %v; want refused, saying %q", limit+1, err, want)
			}
		})
	}
}
