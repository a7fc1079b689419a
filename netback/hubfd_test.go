package netback_test

import (
	"bufio"
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

	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
)

// A hub that has every descriptor its RLIMIT_NOFILE allows open answers
// each VM that connects that it is out of them, naming the limit, instead
// of leaving it to time out (the VM said "handshake: read unix
// @->/run/smolvmm/net/.s3332223371/s: i/o timeout"); it logs the first
// failure and a count once it can accept again, not a line per failure
// (it logged 20 a second, for ever); and once descriptors are free again,
// VMs join.
func TestHubOutOfDescriptors(t *testing.T) {
	const joins = 5
	socket := filepath.Join(testsock.Dir(t), "fd.sock")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "NETBACK_SANDBOX_CHILD=fdhub", "NETBACK_HUB="+socket)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var log lockedLog
	cmd.Stderr = &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	lines := bufio.NewReader(out)
	expect := func(want string) {
		t.Helper()
		if line, err := lines.ReadString('\n'); line != want+"\n" {
			t.Fatalf("the hub said %q (%v), want %q; its log:\n%s", line, err, want, log.String())
		}
	}
	expect("full")
	for i := range joins {
		mac := net.HardwareAddr{0x52, 0x54, 0x00, 0x5f, 0x00, byte(i)}
		j, err := netback.Join(socket, mac, nil)
		var re *netback.RefusedError
		if err == nil {
			j.Close()
		}
		if !errors.As(err, &re) || re.Reason != netback.RefusedNoDescriptors || re.Socket != socket ||
			!strings.Contains(err.Error(), "every file descriptor open that RLIMIT_NOFILE ") || re.Permanent() {
			t.Fatalf("join %d: %v, want a passing refusal for want of descriptors, naming RLIMIT_NOFILE and %s", i, err, socket)
		}
		if i == 0 {
			t.Log(err)
		}
	}
	if _, err := io.WriteString(in, "free\n"); err != nil {
		t.Fatal(err)
	}
	expect("freed")
	j, err := netback.Join(socket, net.HardwareAddr{0x52, 0x54, 0x00, 0x5f, 0x01, 0x00}, nil)
	if err != nil {
		t.Fatalf("join with descriptors free again: %v; the log:\n%s", err, log.String())
	}
	j.Close()
	in.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("hub: %v; its log:\n%s", err, log.String())
	}
	var accepts []string
	for _, l := range strings.Split(log.String(), "\n") {
		if strings.Contains(l, "accept") {
			accepts = append(accepts, l)
		}
	}
	want := fmt.Sprintf("; %d VMs were refused for want of descriptors", joins)
	if len(accepts) != 2 || !strings.Contains(accepts[0], "too many open files") || !strings.HasPrefix(accepts[1], "accept works again") || !strings.HasSuffix(accepts[1], want) {
		t.Errorf("log lines of accept:\n%s\nwant the first failure, then %q; the log:\n%s", strings.Join(accepts, "\n"), want, log.String())
	}
}

// lockedLog is a child's stderr, read while it is written.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// fdHubChild is the fdhub child: a hub on $NETBACK_HUB, logging to
// stderr, that opens descriptors until it has every one its
// RLIMIT_NOFILE (lowered) allows, says "full", closes them when told
// "free" on stdin and says "freed", and closes at EOF.
func fdHubChild() int {
	h, err := netback.NewHub(netback.HubConfig{Socket: os.Getenv("NETBACK_HUB"), Logf: func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	}})
	if err != nil {
		fmt.Println(err)
		return 3
	}
	defer h.Close()
	// Lowered so that filling it takes few descriptors: the runtime
	// raised it to the hard limit.
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: 256, Max: 256}); err != nil {
		fmt.Println(err)
		return 3
	}
	var fill []*os.File
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			if !errors.Is(err, syscall.EMFILE) {
				fmt.Println(err)
				return 3
			}
			break
		}
		fill = append(fill, f)
	}
	fmt.Println("full")
	in := bufio.NewReader(os.Stdin)
	if line, _ := in.ReadString('\n'); line != "free\n" {
		fmt.Printf("told %q\n", line)
		return 3
	}
	for _, f := range fill {
		f.Close()
	}
	fmt.Println("freed")
	io.Copy(io.Discard, in)
	return 0
}
