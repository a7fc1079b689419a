package portready

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/internal/portready/portreadytest"
	"github.com/smolvmm/smolvmm/sandbox"
)

func TestMain(m *testing.M) {
	if addr := os.Getenv("PORTREADY_SANDBOX_PROBE"); addr != "" {
		// As a VMM does: the name resolved before the sandbox.
		addrs, err := Resolve(context.Background(), addr, nil)
		if err != nil {
			fmt.Println("resolve:", err)
			os.Exit(3)
		}
		if _, err := sandbox.Install(sandbox.Filter{Sockets: true, Prefix: "child: "}); err != nil {
			fmt.Println("install:", err)
			os.Exit(3)
		}
		_, ok := probeUntilReady(addrs...)
		fmt.Printf("probed, ready %v\n", ok)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestProbeUnderSeccomp: a VMM probes its ready port under the seccomp
// filter (with sockets); whatever GODEBUG asks of MPTCP, the dial makes
// no call the filter refuses (MPTCP's first dial probes the kernel with
// bind and uname), and a closed port is simply not ready. A host name
// (localhost) resolved before the filter is probed by its addresses:
// dialing the name itself looked it up under the filter, whose uname
// stopped the process.
func TestProbeUnderSeccomp(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("no seccomp filter on this platform")
	}
	closed := portreadytest.Refusing(t)
	_, port, _ := net.SplitHostPort(portreadytest.Greeter(t, "SSH-2.0\r\n"))
	for _, tt := range []struct {
		name, addr string
		ready      bool
	}{
		{"closed", closed, false},
		{"localhost", net.JoinHostPort("localhost", port), true},
	} {
		for _, godebug := range []string{"multipathtcp=0", "multipathtcp=1", "multipathtcp=3"} {
			t.Run(tt.name+" "+godebug, func(t *testing.T) {
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), "PORTREADY_SANDBOX_PROBE="+tt.addr, "GODEBUG="+godebug)
				out, err := cmd.CombinedOutput()
				if want := fmt.Sprintf("probed, ready %v\n", tt.ready); err != nil || !strings.Contains(string(out), want) {
					t.Errorf("sandboxed probe of %s: %v; output:\n%s", tt.addr, err, out)
				}
			})
		}
	}
}
