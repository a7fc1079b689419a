package netback_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

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
	port := 0
	for p := 1023; p > 512 && port == 0; p-- {
		if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			ln.Close()
			port = p
		}
	}
	if port == 0 {
		t.Skip("no free port below 1024")
	}
	// A directory uid 65534 may reach, with a copy of this test binary it
	// may run.
	dir, err := os.MkdirTemp("", "hubpriv")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "netback.test")
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err == nil {
		_, err = io.Copy(dst, src)
		err = errors.Join(err, dst.Close())
	}
	src.Close()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var logs strings.Builder
	h, err := netback.NewHub(netback.HubConfig{Socket: filepath.Join(dir, "n.sock"), Leases: filepath.Join(t.TempDir(), "n.leases"), Group: 65534,
		Logf: func(f string, a ...any) { mu.Lock(); fmt.Fprintf(&logs, f+"\n", a...); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	fwd := fmt.Sprintf("tcp:127.0.0.1:%d:22", port)
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), "NETBACK_SANDBOX_CHILD=forward", "NETBACK_HUB="+h.Socket(), "NETBACK_FORWARD="+fwd)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	want := fmt.Sprintf("refused the VM: port forward refused: %s: host port %d is below 1024", fwd, port)
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

// forwardChild joins the hub at $NETBACK_HUB with the forward
// $NETBACK_FORWARD and prints what came of it.
func forwardChild() int {
	f, err := netback.ParseForward(os.Getenv("NETBACK_FORWARD"))
	if err != nil {
		fmt.Println(err)
		return 3
	}
	j, err := netback.Join(os.Getenv("NETBACK_HUB"), net.HardwareAddr{0x52, 0x54, 0x00, 0x5e, 0xcc, 0x02}, []netback.Forward{f})
	if err != nil {
		fmt.Printf("join: %v\n", err)
		return 0
	}
	fmt.Printf("joined as %s uid %d\n", j.Addr(), os.Getuid())
	j.Close()
	return 0
}
