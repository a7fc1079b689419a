package portready

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/sandbox"
)

func TestMain(m *testing.M) {
	if addr := os.Getenv("PORTREADY_SANDBOX_PROBE"); addr != "" {
		if _, err := sandbox.Install(sandbox.Filter{Sockets: true, Prefix: "child: "}); err != nil {
			fmt.Println("install:", err)
			os.Exit(3)
		}
		_, ok := Probe(addr)
		fmt.Printf("probed, ready %v\n", ok)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestProbeUnderSeccomp: a VMM probes its ready port under the seccomp
// filter (with sockets); whatever GODEBUG asks of MPTCP, the dial makes
// no call the filter refuses (MPTCP's first dial probes the kernel with
// bind and uname), and a closed port is simply not ready.
func TestProbeUnderSeccomp(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("no seccomp filter on this platform")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	for _, godebug := range []string{"multipathtcp=0", "multipathtcp=1", "multipathtcp=3"} {
		t.Run(godebug, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "PORTREADY_SANDBOX_PROBE="+closed, "GODEBUG="+godebug)
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "probed, ready false\n") {
				t.Errorf("sandboxed probe of a closed port: %v; output:\n%s", err, out)
			}
		})
	}
}
