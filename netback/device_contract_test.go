package netback_test

import (
	"errors"
	"io"
	"net"
	"testing"

	"github.com/smolvmm/smolvmm/netback"
	vnet "github.com/smolvmm/smolvmm/virtio/net"
)

// Every backend is a virtio-net device's backend.
var (
	_ vnet.Backend = (*netback.None)(nil)
	_ vnet.Backend = (*netback.User)(nil)
	_ vnet.Backend = netback.Backend(nil)
)

// TestDeviceContract checks what virtio/net, which does not import netback,
// relies on: the sizes agree, a closed backend's error matches net.ErrClosed
// and a too-long frame's matches io.ErrShortBuffer, while netback's own
// sentinels still match themselves and not each other.
func TestDeviceContract(t *testing.T) {
	if netback.MaxFrameSize != vnet.MaxFrameSize || netback.EthernetHeaderSize != vnet.EthernetHeaderSize {
		t.Errorf("sizes: netback %d/%d, virtio/net %d/%d", netback.MaxFrameSize, netback.EthernetHeaderSize,
			vnet.MaxFrameSize, vnet.EthernetHeaderSize)
	}
	n := netback.NewNone()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	_, rerr := n.ReadFrame(make([]byte, 64))
	werr := n.WriteFrame(make([]byte, 64))
	tooLong := netback.NewNone()
	defer tooLong.Close()
	lerr := tooLong.WriteFrame(make([]byte, netback.MaxFrameSize+1))
	for _, c := range []struct {
		name      string
		err       error
		is, isNot []error
	}{
		{"read after close", rerr, []error{net.ErrClosed, netback.ErrClosed}, []error{io.ErrShortBuffer, netback.ErrFrameTooLong}},
		{"write after close", werr, []error{net.ErrClosed, netback.ErrClosed}, []error{io.ErrShortBuffer}},
		{"frame too long", lerr, []error{io.ErrShortBuffer, netback.ErrFrameTooLong}, []error{net.ErrClosed, netback.ErrClosed}},
	} {
		if c.err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, want := range c.is {
			if !errors.Is(c.err, want) {
				t.Errorf("%s: %q does not match %q", c.name, c.err, want)
			}
		}
		for _, not := range c.isNot {
			if errors.Is(c.err, not) {
				t.Errorf("%s: %q matches %q", c.name, c.err, not)
			}
		}
	}
}
