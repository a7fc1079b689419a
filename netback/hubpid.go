package netback

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// HubPID returns the process ID of the hub listening on socket (an error
// wrapping ErrNoHub when none answers there, a *ForeignHubError as
// Join's), as the kernel gives it for a connection to the socket
// (SO_PEERCRED on Linux):
// what a benchmark needs to read the network's memory. The connection
// closes before the handshake, which the hub takes quietly. The PID is
// that of the process that created the socket, in the caller's PID
// namespace (0 if the hub is in one the caller cannot see).
func HubPID(socket string) (int, error) {
	c, err := dialHub(socket)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	raw, err := c.(*net.UnixConn).SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("shared network %s: %w", socket, err)
	}
	var pid int
	var credErr error
	if err := raw.Control(func(fd uintptr) { pid, _, credErr = peerCred(int(fd)) }); err != nil {
		return 0, fmt.Errorf("shared network %s: %w", socket, err)
	}
	if credErr != nil {
		return 0, fmt.Errorf("shared network %s: peer credentials: %w", socket, credErr)
	}
	return pid, nil
}

// connPeerUID is the user ID of the process that connected c, a Unix
// socket connection: the one it had at connect, whatever it changed to
// since.
func connPeerUID(c net.Conn) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1, fmt.Errorf("%T has no descriptor to read peer credentials of", c)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	uid, credErr := -1, error(nil)
	if err := raw.Control(func(fd uintptr) { _, uid, credErr = peerCred(int(fd)) }); err != nil {
		return -1, err
	}
	if credErr != nil {
		return -1, fmt.Errorf("peer credentials: %w", credErr)
	}
	return uid, nil
}

// unprivilegedPortStartFile is where Linux keeps the first port that
// needs no privilege to bind.
var unprivilegedPortStartFile = "/proc/sys/net/ipv4/ip_unprivileged_port_start"

// unprivilegedPortStart is the first host port that a process without
// CAP_NET_BIND_SERVICE may bind: the host's setting, read each time (it
// can change), or 1024, the traditional bound, where it cannot be read.
func unprivilegedPortStart() int { return portStartOf(os.ReadFile(unprivilegedPortStartFile)) }

// portStartOf is the first unprivileged port that b, the content of
// unprivilegedPortStartFile read with err, gives: 1024 when it could not
// be read or is not a port.
func portStartOf(b []byte, err error) int {
	if err != nil {
		return 1024
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 {
		return 1024
	}
	return n
}

// HubVMs asks the hub listening on socket how many VMs are joined to it
// now: what its memory is shared among. Errors: ErrNoHub (wrapped) when
// none answers there, a *ForeignHubError as Join's, a *RefusedError when
// the hub refuses the question (RefusedBusy, as it refuses a VM's join; a
// hub older than such questions refuses it as a malformed hello),
// ErrHubProtocol for anything else on the socket.
func HubVMs(socket string) (int, error) {
	c, err := dialHub(socket)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(hubHandshakeTimeout))
	if err := sayHello(c, socket, hubHello{Query: hubQueryVMs}); err != nil {
		return 0, err
	}
	var ans hubAnswer
	ver, status, err := readHubMessage(c, &ans)
	switch {
	case err != nil:
		return 0, handshakeError(socket, err)
	case ver != hubVersion:
		return 0, fmt.Errorf("shared network %s: %w", socket, &hubVersionError{hub: ver, vm: hubVersion})
	case status != 0:
		return 0, hubRefusal(socket, status, ans)
	case ans.VMs == nil || *ans.VMs < 0:
		return 0, fmt.Errorf("shared network %s: %w: answer without a count of VMs", socket, ErrHubProtocol)
	}
	return *ans.VMs, nil
}

// dialHub connects to the hub listening on socket, for a question: an
// error wrapping ErrNoHub when nothing answers there (after a wait for a
// hub starting there, as Join's), a *ForeignHubError as Join's.
func dialHub(socket string) (net.Conn, error) {
	if err := checkHubDir(socket, HubDir(), os.Geteuid()); err != nil {
		return nil, err
	}
	c, err := dialHubOnce(socket)
	err = awaitHubStart(socket, err, func() error {
		c, err = dialHubOnce(socket)
		return err
	})
	return c, err
}

// dialHubOnce is dialHub's dial, made once.
func dialHubOnce(socket string) (net.Conn, error) {
	c, err := net.DialTimeout("unix", socket, hubHandshakeTimeout)
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
		return nil, fmt.Errorf("%w: nothing answers on %s: %w", ErrNoHub, socket, err)
	}
	if err != nil {
		return nil, fmt.Errorf("shared network %s: %w", socket, err)
	}
	if err := checkHubConn(socket, c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}
