package guests

import (
	"errors"
	"io"
	"net"
	"os/exec"
	"testing"
	"time"
)

// ForTest returns the path of guest name, built for a test. It skips t when
// the toolchain (gcc, ld) is missing, and fails it when the guest does not
// build: a guest that stops compiling is a regression, not a reason to skip.
func ForTest(t testing.TB, name string) string {
	t.Helper()
	path, err := Build(name)
	if errors.Is(err, exec.ErrNotFound) {
		t.Skipf("cannot build guest %s without its toolchain: %v", name, err)
	}
	if err != nil {
		t.Fatalf("building guest %s: %v", name, err)
	}
	return path
}

// ReadOneConnection accepts one connection on ln and sends what it
// carried until its peer closed it (at most a minute), or nil when the
// accept fails: the host end of a guest that sends.
func ReadOneConnection(ln net.Listener) <-chan []byte {
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Minute))
		b, _ := io.ReadAll(c)
		got <- b
	}()
	return got
}
