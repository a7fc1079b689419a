package netback

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/smolvmm/smolvmm/internal/testsock"
)

// hostFilesIn makes the host's hosts file and resolv.conf dir's "hosts"
// and "resolv.conf" until the test ends.
func hostFilesIn(t *testing.T, dir string) {
	h, r := hostsPath, resolvConfPath
	t.Cleanup(func() { hostsPath, resolvConfPath = h, r })
	hostsPath, resolvConfPath = filepath.Join(dir, "hosts"), filepath.Join(dir, "resolv.conf")
}

// lookedLongAgo makes r's last look at the host's files older than
// hostConfCheckEvery, so that its next config looks again.
func lookedLongAgo(r *hostResolver) {
	r.checkMu.Lock()
	r.checked = r.checked.Add(-2 * hostConfCheckEvery)
	r.checkMu.Unlock()
}

// A shared network's DNS follows the host's /etc/hosts and
// /etc/resolv.conf as they change (a daemon runs for months while DHCP or
// a VPN rewrites them), looking at most once a second; a VM's own
// network, in a VMM whose seccomp filter refuses stat and open, keeps
// them as read when it started.
func TestHostResolverRereads(t *testing.T) {
	hostFilesIn(t, t.TempDir())
	write := func(addr, server string) {
		t.Helper()
		if err := os.WriteFile(hostsPath, []byte(addr+" pinned.test.\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(resolvConfPath, []byte("nameserver "+server+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		// start starts the network and returns its resolver.
		start    func(t *testing.T) *hostResolver
		followed bool
	}{
		{"hub", func(t *testing.T) *hostResolver {
			h, err := NewHub(HubConfig{Socket: filepath.Join(testsock.Dir(t), "net.sock")})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { h.Close() })
			return h.gw.resolver
		}, true},
		{"user", func(t *testing.T) *hostResolver {
			u, err := NewUser(net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 0x56}, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { u.Close() })
			return u.gw.resolver
		}, false},
	}
	type seen struct {
		addr   string
		server string
	}
	see := func(r *hostResolver) seen {
		c := r.config()
		var s seen
		if ips := c.hosts["pinned.test."]; len(ips) == 1 {
			s.addr = ips[0].IP.String()
		}
		if len(c.servers) == 1 {
			s.server = c.servers[0]
		}
		return s
	}
	before, after := seen{"192.0.2.1", "192.0.2.53:53"}, seen{"192.0.2.2", "192.0.2.54:53"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			write(before.addr, "192.0.2.53")
			r := tt.start(t)
			if got := see(r); got != before {
				t.Fatalf("at start: %+v, want %+v", got, before)
			}
			// Rewritten in place and by an editor's rename: a new
			// size, then a new inode.
			write(after.addr, "192.0.2.54 ")
			if got := see(r); got != before {
				t.Errorf("less than a second after the last look: %+v, want %+v still", got, before)
			}
			lookedLongAgo(r)
			want := before
			if tt.followed {
				want = after
			}
			if got := see(r); got != want {
				t.Errorf("after the files changed: %+v, want %+v", got, want)
			}
			tmp := resolvConfPath + ".new"
			if err := os.WriteFile(tmp, []byte("nameserver 192.0.2.55\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, resolvConfPath); err != nil {
				t.Fatal(err)
			}
			lookedLongAgo(r)
			if tt.followed {
				want.server = "192.0.2.55:53"
			}
			if got := see(r); got != want {
				t.Errorf("after resolv.conf was replaced: %+v, want %+v", got, want)
			}
		})
	}
}
