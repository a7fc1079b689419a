// Package portreadytest provides host TCP services for tests of port
// readiness: a stand-in for a guest service behind a forwarded port.
package portreadytest

import (
	"net"
	"testing"
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
