package netback

import (
	"errors"
	"fmt"
	"net"
	"syscall"
)

// HubPID returns the process ID of the hub listening on socket (an error
// wrapping ErrNoHub when none answers there), as the
// kernel gives it for a connection to the socket (SO_PEERCRED on Linux):
// what a benchmark needs to read the network's memory. The connection
// closes before the handshake, which the hub takes quietly. The PID is
// that of the process that created the socket, in the caller's PID
// namespace (0 if the hub is in one the caller cannot see).
func HubPID(socket string) (int, error) {
	c, err := net.DialTimeout("unix", socket, hubHandshakeTimeout)
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
		return 0, fmt.Errorf("%w: nothing answers on %s: %w", ErrNoHub, socket, err)
	}
	if err != nil {
		return 0, fmt.Errorf("shared network %s: %w", socket, err)
	}
	defer c.Close()
	raw, err := c.(*net.UnixConn).SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("shared network %s: %w", socket, err)
	}
	var pid int
	var credErr error
	if err := raw.Control(func(fd uintptr) { pid, credErr = peerPID(int(fd)) }); err != nil {
		return 0, fmt.Errorf("shared network %s: %w", socket, err)
	}
	if credErr != nil {
		return 0, fmt.Errorf("shared network %s: peer credentials: %w", socket, credErr)
	}
	return pid, nil
}
