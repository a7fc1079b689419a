// Package portreadytest provides host TCP services for tests of port
// readiness: a stand-in for a guest service behind a forwarded port.
package portreadytest

import (
	"net"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// Serve listens on a free 127.0.0.1 port until the test ends and hands each
// connection to serve, which must close it. It returns the address.
func Serve(tb testing.TB, serve func(net.Conn)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return ln.Addr().String()
}

// Greeter is Serve with a service that sends greeting and hangs up, as an
// SSH or SMTP server answers a connection.
func Greeter(tb testing.TB, greeting string) string {
	tb.Helper()
	return Serve(tb, func(c net.Conn) {
		c.Write([]byte(greeting))
		c.Close()
	})
}

// Refusing returns a 127.0.0.1 address whose port refuses connections
// until the test ends: bound by a socket that never listens. A port taken
// from a closed listener could be taken again by another test's listener
// meanwhile, or be the port a dial to it picks as its own (a connection to
// itself), and then be found ready.
func Refusing(tb testing.TB) string {
	tb.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		tb.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		tb.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*unix.SockaddrInet4).Port))
}
