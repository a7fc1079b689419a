package netback_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
)

// TestHubPrivilegedForwardOtherUser: a root network whose socket a group
// may reach refuses a VM process of uid 65534 in that group a forward of
// a privileged host port (it did bind it), as the kernel would have
// refused that process's own bind, and says so to it and in its log.
func TestHubPrivilegedForwardOtherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to be the network another user joins")
	}
	start, port := privilegedPort(t)
	dir, bin := otherUserDir(t)
	var mu sync.Mutex
	var logs strings.Builder
	h, err := netback.NewHub(netback.HubConfig{Socket: filepath.Join(dir, "n.sock"), Leases: filepath.Join(testsock.Dir(t), "n.leases"), Group: 65534,
		Logf: func(f string, a ...any) { mu.Lock(); fmt.Fprintf(&logs, f+"\n", a...); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	fwd := fmt.Sprintf("tcp:127.0.0.1:%d:22", port)
	out, err := asNobody(bin, "NETBACK_SANDBOX_CHILD=forward", "NETBACK_HUB="+h.Socket(), "NETBACK_FORWARD="+fwd).CombinedOutput()
	want := fmt.Sprintf("refused the VM: port forward refused: %s: host port %d is below %d", fwd, port, start)
	if err != nil || !strings.Contains(string(out), want) || !strings.Contains(string(out), "runs as uid 65534") {
		t.Errorf("uid 65534 joining with %s: %v, output %q; want %q", fwd, err, out, want)
	}
	if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
		t.Errorf("port %d: %v", port, err)
	} else {
		ln.Close()
	}
	h.Close()
	if !strings.Contains(logs.String(), "refused a VM: port forward refused: "+fwd) {
		t.Errorf("the network's log lacks the refusal:\n%s", logs.String())
	}
}

// privilegedPort returns the host's first unprivileged port and a free
// port below it; it skips the test where every port is unprivileged
// (Docker sets net.ipv4.ip_unprivileged_port_start to 0 in containers).
func privilegedPort(t *testing.T) (start, port int) {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		t.Skipf("the first unprivileged port: %v", err)
	}
	if start, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
		t.Fatalf("net.ipv4.ip_unprivileged_port_start %q: %v", b, err)
	}
	if start == 0 {
		t.Skip("net.ipv4.ip_unprivileged_port_start is 0 here: every port is unprivileged")
	}
	for p := start - 1; p > 0 && p >= start-512; p-- {
		if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			ln.Close()
			return start, p
		}
	}
	t.Skipf("no free port below %d", start)
	return 0, 0
}

// TestHubPrivilegedForwardRejoinAsOtherUser: a VM that joined a root
// network as root with a privileged forward, saying it would run as uid
// 65534 (started by root with --user, before it drops root), rejoins it
// with that forward as uid 65534 after the network restarts; had root's
// join not said so, uid 65534 is refused it.
func TestHubPrivilegedForwardRejoinAsOtherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to join as root and then as another user")
	}
	_, port := privilegedPort(t)
	dir, bin := otherUserDir(t)
	fwd := fmt.Sprintf("tcp:127.0.0.1:%d:22", port)
	f, err := netback.ParseForward(fwd)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		runsAs int
		want   string
	}{
		{runsAs: 0, want: "only root's VMs may forward it, and the VM's process runs as uid 65534"},
		{runsAs: 65534, want: "joined as 10.0.2.15 uid 65534"},
	} {
		cfg := netback.HubConfig{Socket: filepath.Join(dir, "n.sock"), Leases: filepath.Join(testsock.Dir(t), "n.leases"), Group: 65534}
		h, err := netback.NewHub(cfg)
		if err != nil {
			t.Fatal(err)
		}
		j, err := netback.JoinWith(h.Socket(), forwardChildMAC, []netback.Forward{f}, netback.JoinOptions{RunsAs: tt.runsAs})
		if err != nil {
			h.Close()
			t.Fatalf("root's join with %s, runs_as %d: %v", fwd, tt.runsAs, err)
		}
		j.Close()
		h.Close()
		if h, err = netback.NewHub(cfg); err != nil {
			t.Fatal(err)
		}
		out, err := asNobody(bin, "NETBACK_SANDBOX_CHILD=forward", "NETBACK_HUB="+h.Socket(), "NETBACK_FORWARD="+fwd).CombinedOutput()
		h.Close()
		if err != nil || !strings.Contains(string(out), tt.want) {
			t.Errorf("uid 65534 rejoining with %s after root's join with runs_as %d: %v, output %q; want %q", fwd, tt.runsAs, err, out, tt.want)
		}
	}
}

// forwardChildMAC is the MAC forwardChild joins with.
var forwardChildMAC = net.HardwareAddr{0x52, 0x54, 0x00, 0x5e, 0xcc, 0x02}

// forwardChild joins the hub at $NETBACK_HUB with the forward
// $NETBACK_FORWARD and prints what came of it.
func forwardChild() int {
	f, err := netback.ParseForward(os.Getenv("NETBACK_FORWARD"))
	if err != nil {
		fmt.Println(err)
		return 3
	}
	j, err := netback.Join(os.Getenv("NETBACK_HUB"), forwardChildMAC, []netback.Forward{f})
	if err != nil {
		fmt.Printf("join: %v\n", err)
		return 0
	}
	fmt.Printf("joined as %s uid %d\n", j.Addr(), os.Getuid())
	j.Close()
	return 0
}

// otherUserDir makes a directory that uid 65534 may reach, removed at the
// test's end, with a copy of this test binary it may run.
func otherUserDir(t *testing.T) (dir, bin string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "hubpriv")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(dir, "netback.test")
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err == nil {
		_, err = io.Copy(dst, src)
		// 0755 whatever the umask: uid 65534 runs it.
		err = errors.Join(err, dst.Chmod(0o755), dst.Close())
	}
	if err != nil {
		t.Fatal(err)
	}
	return dir, bin
}

// asNobody is the test binary bin as a child of uid and gid 65534, with
// env added.
func asNobody(bin string, env ...string) *exec.Cmd {
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	return cmd
}

// TestHubDirTwoNetworks: two networks in root's default directory, the
// first for group 65534's VMs, the second for root's only: the second's
// start leaves the first reachable by the group (it made the shared
// directories root's only, and the group's VMs could no longer
// reconnect), and the second is the group's to reach no more than any
// other user's.
func TestHubDirTwoNetworks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to be the network another user joins")
	}
	base, bin := otherUserDir(t)
	defer netback.SetRootHubDir(filepath.Join(base, "smolvmm", "net"))()
	web, err := netback.HubSocket("web")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := netback.HubSocket("other")
	h1, err := netback.NewHub(netback.HubConfig{Socket: web, Group: 65534})
	if err != nil {
		t.Fatal(err)
	}
	defer h1.Close()
	h2, err := netback.NewHub(netback.HubConfig{Socket: other})
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	out, err := asNobody(bin, "NETBACK_SANDBOX_CHILD=dial", "NETBACK_DIAL="+web+","+other).CombinedOutput()
	want := fmt.Sprintf("%s: ok\n%s: permission denied\n", web, other)
	if err != nil || string(out) != want {
		t.Errorf("uid 65534 in group 65534 dialing both: %v, output %q; want %q", err, out, want)
	}
	// Nobody but root reads the leases, nor writes in the directories.
	h1.Close() // saves the leases
	for _, tt := range []struct {
		path string
		mode os.FileMode
	}{{filepath.Dir(web), 0o711}, {filepath.Dir(filepath.Dir(web)), 0o711}, {netback.HubLeases(web), 0o600}} {
		st, err := os.Stat(tt.path)
		if err != nil {
			t.Error(err)
		} else if st.Mode().Perm() != tt.mode {
			t.Errorf("%s: mode %v, want %v", tt.path, st.Mode().Perm(), tt.mode)
		}
	}
}

// dialChild connects to each socket of $NETBACK_DIAL (comma-separated)
// and prints what came of it.
func dialChild() int {
	for _, s := range strings.Split(os.Getenv("NETBACK_DIAL"), ",") {
		c, err := net.Dial("unix", s)
		if err != nil {
			if errors.Is(err, syscall.EACCES) {
				fmt.Printf("%s: permission denied\n", s)
			} else {
				fmt.Printf("%s: %v\n", s, err)
			}
			continue
		}
		c.Close()
		fmt.Printf("%s: ok\n", s)
	}
	return 0
}

// HubVMs says how many VMs are joined now, without joining or being
// logged as a VM.
func TestHubVMs(t *testing.T) {
	h := startHub(t, testsock.Dir(t))
	count := func() int {
		t.Helper()
		n, err := netback.HubVMs(h.Socket())
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 0 {
		t.Errorf("no VM joined: %d", n)
	}
	var js []*netback.Joined
	for i := range byte(3) {
		j, err := netback.Join(h.Socket(), testMAC(i), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		js = append(js, j)
	}
	if n := count(); n != 3 {
		t.Errorf("3 VMs joined: %d", n)
	}
	js[0].Close()
	for deadline := time.Now().Add(20 * time.Second); count() != 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("one of 3 VMs left: still %d", count())
		}
	}
	if _, err := netback.HubVMs(filepath.Join(testsock.Dir(t), "none.sock")); !errors.Is(err, netback.ErrNoHub) {
		t.Errorf("no network: %v, want ErrNoHub", err)
	}
}
