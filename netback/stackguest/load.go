package stackguest

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"testing"
)

// EchoSum serves one connection of ln, typically a Guest's listener: it
// reads to end of stream, then answers "got N bytes sha256 X" and closes,
// so a test can check that a transfer arrived whole.
func EchoSum(ln net.Listener) {
	c, err := ln.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	h := sha256.New()
	n, _ := io.Copy(h, c)
	fmt.Fprintf(c, "got %d bytes sha256 %x", n, h.Sum(nil))
}

// BenchTCP sends b.N 64 KiB chunks over the connection dial makes to ln
// and counts the time until the receiver has them all. The connection must
// support CloseWrite (TCP).
func BenchTCP(b *testing.B, ln net.Listener, dial func() (net.Conn, error)) {
	const chunk = 64 << 10
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		got <- n
	}()
	c, err := dial()
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, chunk)
	b.SetBytes(chunk)
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	c.(interface{ CloseWrite() error }).CloseWrite()
	n := <-got
	b.StopTimer()
	if n != int64(b.N)*chunk {
		b.Fatalf("receiver got %d bytes, want %d", n, int64(b.N)*chunk)
	}
}
