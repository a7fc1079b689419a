package netback

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/smolvmm/smolvmm/internal/testsock"
)

// freePort is a port of 127.0.0.1 free for TCP and UDP (testsock.Port).
func freePort(t *testing.T) uint16 { return testsock.Port(t) }

// A VM may forward a host port below the host's first unprivileged one
// only if the process that connected is root's; else it is refused (a
// port forward refusal, which the VM takes as final), nothing listens on
// the port, and the network logs why. The first unprivileged port is
// moved to just above a free port, so that no test binds a real
// privileged one.
func TestHubPrivilegedForward(t *testing.T) {
	errNoCred := errors.New("no credentials here")
	tests := []struct {
		name    string
		uid     int
		uidErr  error
		below   bool // the forwarded port is below the first unprivileged one
		refused string
	}{
		{name: "nobody, privileged port", uid: 65534, below: true, refused: "only root's VMs may forward it, and the VM's process runs as uid 65534"},
		{name: "user 1000, privileged port", uid: 1000, below: true, refused: "runs as uid 1000"},
		{name: "unknown user, privileged port", uid: -1, uidErr: errNoCred, below: true, refused: "the VM's user is unknown (no credentials here)"},
		{name: "root, privileged port", uid: 0, below: true},
		{name: "nobody, unprivileged port", uid: 65534},
		{name: "unknown user, unprivileged port", uid: -1, uidErr: errNoCred},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port := freePort(t)
			start := int(port)
			if tt.below {
				start++
			}
			var mu sync.Mutex
			var logs []string
			hooks := hubHooks{
				peerUID:   func(net.Conn) (int, error) { return tt.uid, tt.uidErr },
				portStart: func() int { return start },
			}
			h, err := newHub(HubConfig{Socket: filepath.Join(testsock.Dir(t), "n.sock"), Logf: func(f string, a ...any) {
				mu.Lock()
				logs = append(logs, fmt.Sprintf(f, a...))
				mu.Unlock()
			}}, hooks)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			fwd := Forward{Proto: "tcp", HostAddr: netip.MustParseAddr("127.0.0.1"), HostPort: port, GuestPort: 22}
			j, err := Join(h.Socket(), net.HardwareAddr{0x52, 0x54, 0, 0, 0, 9}, []Forward{fwd})
			if tt.refused == "" {
				if err != nil {
					t.Fatalf("join: %v, want it let in", err)
				}
				j.Close()
				return
			}
			var re *RefusedError
			if !errors.As(err, &re) || re.Reason != RefusedForward || !re.Permanent() ||
				!strings.Contains(re.Message, fmt.Sprintf("tcp:127.0.0.1:%d:22: host port %d is below %d", port, port, start)) || !strings.Contains(re.Message, tt.refused) {
				if j != nil {
					j.Close()
				}
				t.Fatalf("join: %v; want a port forward refusal naming the forward and %q", err, tt.refused)
			}
			// Nothing took the port, even for a moment.
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				t.Errorf("the refused forward's port: %v", err)
			} else {
				ln.Close()
			}
			h.Close()
			mu.Lock()
			defer mu.Unlock()
			if !strings.Contains(strings.Join(logs, "\n"), "refused a VM: port forward refused: "+re.Message) {
				t.Errorf("the network's log lacks the refusal:\n%s", strings.Join(logs, "\n"))
			}
		})
	}
}

// connPeerUID reads the user of the process at the other end of a real
// Unix connection: this one's.
func TestConnPeerUID(t *testing.T) {
	sock := filepath.Join(testsock.Dir(t), "p.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	uid, err := connPeerUID(a)
	if err != nil || uid != os.Geteuid() {
		t.Errorf("connPeerUID = %d, %v; want %d", uid, err, os.Geteuid())
	}
}

// The first unprivileged port is the host's setting, or 1024 where it
// cannot be read or makes no sense.
func TestUnprivilegedPortStart(t *testing.T) {
	dir := testsock.Dir(t)
	tests := []struct {
		content string // "" for no file
		want    int
	}{
		{"", 1024}, {"1024\n", 1024}, {"80\n", 80}, {"0\n", 0}, {"4000", 4000}, {"x\n", 1024}, {"-1\n", 1024},
	}
	old := unprivilegedPortStartFile
	defer func() { unprivilegedPortStartFile = old }()
	for i, tt := range tests {
		unprivilegedPortStartFile = filepath.Join(dir, fmt.Sprint(i))
		if tt.content != "" {
			if err := os.WriteFile(unprivilegedPortStartFile, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if got := unprivilegedPortStart(); got != tt.want {
			t.Errorf("%q: %d, want %d", tt.content, got, tt.want)
		}
	}
}

// A query is answered only alone and known: anything else in it is
// refused as a malformed hello, and joins nobody.
func TestHubQueryRefused(t *testing.T) {
	h, err := NewHub(HubConfig{Socket: filepath.Join(testsock.Dir(t), "n.sock")})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, hello := range []hubHello{{Query: "leases"}, {Query: hubQueryVMs, MAC: "52:54:00:00:00:01"}, {Query: hubQueryVMs, Forwards: []string{"8080:80"}}} {
		c, err := net.Dial("unix", h.Socket())
		if err != nil {
			t.Fatal(err)
		}
		var ans hubAnswer
		err = writeHubMessage(c, 0, hello)
		var status byte
		if err == nil {
			_, status, err = readHubMessage(c, &ans)
		}
		c.Close()
		if err != nil || Refusal(status) != RefusedMalformed || ans.VMs != nil {
			t.Errorf("%+v: status %d, answer %+v, %v; want a malformed hello refused", hello, status, ans, err)
		}
	}
	if n := h.Stats().VMs; n != 0 {
		t.Errorf("%d VMs joined", n)
	}
}

// A VM that joined as root with privileged forwards, saying it would run
// as uid 65534 (a VM started by root with --user, before it drops root),
// rejoins with them, or some of them, as uid 65534 after the network
// restarts (the grant is in the lease file), and root always may; another
// user joining with the same MAC (a VM chooses its own MAC) is refused
// them, whatever it says it runs as, and so is a new privileged forward,
// or another MAC. root's join without runs_as takes the grant back to
// root alone. Before, the grant let any user of that MAC in.
func TestHubPrivilegedForwardRejoin(t *testing.T) {
	dir := testsock.Dir(t)
	sock := filepath.Join(dir, "n.sock")
	var ports [3]uint16
	for ports[0] == ports[1] || ports[1] == ports[2] || ports[0] == ports[2] {
		ports = [3]uint16{freePort(t), freePort(t), freePort(t)}
	}
	start := int(max(ports[0], ports[1], ports[2])) + 1
	fwd := func(i int) Forward {
		return Forward{Proto: "tcp", HostAddr: netip.MustParseAddr("127.0.0.1"), HostPort: ports[i], GuestPort: 22}
	}
	mac := net.HardwareAddr{0x52, 0x54, 0, 0, 0, 9}
	var uid atomic.Int64 // the user of the next join
	start1 := func() *Hub {
		h, err := newHub(HubConfig{Socket: sock}, hubHooks{
			peerUID:   func(net.Conn) (int, error) { return int(uid.Load()), nil },
			portStart: func() int { return start },
		})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	h := start1()
	// Through OpenWith, as smolvmm opens its NIC: the option reaches the
	// hello.
	b, err := OpenWith("user:"+sock, []Forward{fwd(0), fwd(1)}, mac, OpenOptions{RunsAs: 65534})
	if err != nil {
		h.Close()
		t.Fatalf("root's join: %v", err)
	}
	b.Close()
	h.Close()
	h = start1()
	defer h.Close()
	// In order: each join sees the grant the joins before it left.
	steps := []struct {
		name    string
		uid     int
		runsAs  int
		mac     net.HardwareAddr
		fwds    []Forward
		refused string // what the refusal names; "" when let in
	}{
		{name: "another user, same MAC", uid: 1000, mac: mac, fwds: []Forward{fwd(0), fwd(1)}, refused: "runs as uid 1000"},
		{name: "another user saying it runs as itself", uid: 1000, runsAs: 1000, mac: mac, fwds: []Forward{fwd(0)}, refused: "runs as uid 1000"},
		{name: "another user saying it runs as the granted one", uid: 1000, runsAs: 65534, mac: mac, fwds: []Forward{fwd(0)}, refused: "runs as uid 1000"},
		{name: "the granted user, same forwards", uid: 65534, mac: mac, fwds: []Forward{fwd(0), fwd(1)}},
		{name: "the granted user, some of them", uid: 65534, mac: mac, fwds: []Forward{fwd(1)}},
		{name: "the granted user, a new one", uid: 65534, mac: mac, fwds: []Forward{fwd(0), fwd(2)}, refused: "runs as uid 65534"},
		{name: "the granted user, another MAC", uid: 65534, mac: net.HardwareAddr{0x52, 0x54, 0, 0, 0, 10}, fwds: []Forward{fwd(0)}, refused: "runs as uid 65534"},
		{name: "root", uid: 0, mac: mac, fwds: []Forward{fwd(0), fwd(1)}},
		{name: "the formerly granted user after root's join", uid: 65534, mac: mac, fwds: []Forward{fwd(0)}, refused: "runs as uid 65534"},
	}
	for _, tt := range steps {
		uid.Store(int64(tt.uid))
		j, err := JoinWith(sock, tt.mac, tt.fwds, JoinOptions{RunsAs: tt.runsAs})
		var re *RefusedError
		switch {
		case tt.refused == "" && err != nil:
			t.Errorf("%s: %v, want it let in", tt.name, err)
		case tt.refused != "" && (!errors.As(err, &re) || re.Reason != RefusedForward || !strings.Contains(re.Message, tt.refused)):
			t.Errorf("%s: %v, want a port forward refusal naming %q", tt.name, err, tt.refused)
		}
		if j != nil {
			// Gone from the hub before the next join of its MAC.
			j.Close()
			waitVMsGone(t, h)
		}
	}
}

// A grant in a lease file written before grants named a user (no
// privileged_uid) is root's alone: another user joining with the MAC is
// refused the forward, root is let in.
func TestHubPrivilegedGrantWithoutUID(t *testing.T) {
	dir := testsock.Dir(t)
	port := freePort(t)
	fwd := Forward{Proto: "tcp", HostAddr: netip.MustParseAddr("127.0.0.1"), HostPort: port, GuestPort: 22}
	mac := net.HardwareAddr{0x52, 0x54, 0, 0, 0, 9}
	leases := filepath.Join(dir, "n.leases")
	old := fmt.Sprintf(`{"version":1,"leases":[{"mac":%q,"addr":"10.0.2.15","seen":"2026-12-03T19:00:00Z","privileged":[%q]}]}`, mac, fwd)
	if err := os.WriteFile(leases, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	var uid atomic.Int64
	h, err := newHub(HubConfig{Socket: filepath.Join(dir, "n.sock"), Leases: leases}, hubHooks{
		peerUID:   func(net.Conn) (int, error) { return int(uid.Load()), nil },
		portStart: func() int { return int(port) + 1 },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, tt := range []struct {
		uid     int
		refused bool
	}{{65534, true}, {1000, true}, {0, false}} {
		uid.Store(int64(tt.uid))
		j, err := Join(h.Socket(), mac, []Forward{fwd})
		var re *RefusedError
		switch {
		case !tt.refused && err != nil:
			t.Errorf("uid %d: %v, want it let in", tt.uid, err)
		case tt.refused && (!errors.As(err, &re) || re.Reason != RefusedForward):
			t.Errorf("uid %d: %v, want a port forward refusal", tt.uid, err)
		}
		if j != nil {
			j.Close()
			waitVMsGone(t, h)
		}
	}
}

// A uid to run as that no process can have is a malformed hello, and
// JoinWith refuses to send it.
func TestRunsAsRange(t *testing.T) {
	for _, tt := range []struct {
		runsAs int64
		ok     bool
	}{{0, true}, {65534, true}, {maxUID, true}, {-1, false}, {maxUID + 1, false}} {
		if int64(int(tt.runsAs)) != tt.runsAs {
			continue // beyond this platform's int
		}
		_, _, err := parseHello(hubHello{MAC: "52:54:00:00:00:01", RunsAs: int(tt.runsAs)})
		if (err == nil) != tt.ok || err != nil && !strings.Contains(err.Error(), fmt.Sprintf("runs_as %d", tt.runsAs)) {
			t.Errorf("parseHello with runs_as %d: %v, want ok %v", tt.runsAs, err, tt.ok)
		}
		if tt.ok {
			continue
		}
		if _, err := JoinWith(filepath.Join(testsock.Dir(t), "none.sock"), net.HardwareAddr{0x52, 0x54, 0, 0, 0, 1}, nil, JoinOptions{RunsAs: int(tt.runsAs)}); err == nil || errors.Is(err, ErrNoHub) {
			t.Errorf("JoinWith with RunsAs %d: %v, want it refused before dialing", tt.runsAs, err)
		}
	}
}

// The privileged-port refusal speaks of root's VM of the MAC only when
// there was one: a grant in the lease. Before, it said root's VM "did not
// join with it to run as that uid" of a MAC that no VM ever joined with.
func TestHubPrivilegedRefusalNamesGrantOnlyWhenOne(t *testing.T) {
	port := freePort(t)
	other := freePort(t)
	for other == port {
		other = freePort(t)
	}
	fwd := func(p uint16) Forward {
		return Forward{Proto: "tcp", HostAddr: netip.MustParseAddr("127.0.0.1"), HostPort: p, GuestPort: 22}
	}
	var uid atomic.Int64
	h, err := newHub(HubConfig{Socket: filepath.Join(testsock.Dir(t), "n.sock")}, hubHooks{
		peerUID:   func(net.Conn) (int, error) { return int(uid.Load()), nil },
		portStart: func() int { return int(max(port, other)) + 1 },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	granted := net.HardwareAddr{0x52, 0x54, 0, 0, 0, 1}
	j, err := JoinWith(h.Socket(), granted, []Forward{fwd(port)}, JoinOptions{RunsAs: 1000})
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	waitVMsGone(t, h)
	uid.Store(1000)
	for _, tt := range []struct {
		name       string
		mac        net.HardwareAddr
		fwd        Forward
		saysGrant  bool
		wantPrefix string
	}{
		{"a MAC never joined", net.HardwareAddr{0x52, 0x54, 0, 0, 0, 2}, fwd(port), false, "the VM's process runs as uid 1000"},
		{"a MAC root's VM joined with another forward", granted, fwd(other), true, "the VM's process runs as uid 1000"},
	} {
		_, err := Join(h.Socket(), tt.mac, []Forward{tt.fwd})
		var re *RefusedError
		if !errors.As(err, &re) || re.Reason != RefusedForward || !strings.Contains(re.Message, tt.wantPrefix) {
			t.Errorf("%s: %v, want a port forward refusal saying %q", tt.name, err, tt.wantPrefix)
			continue
		}
		if says := strings.Contains(re.Message, "root's VM of MAC"); says != tt.saysGrant {
			t.Errorf("%s: %q speaks of root's VM: %v, want %v", tt.name, re.Message, says, tt.saysGrant)
		}
	}
}
