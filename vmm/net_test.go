package vmm_test

import (
	"net"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/virtio"
	vnet "github.com/smolvmm/smolvmm/virtio/net"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestVirtioNetGuest runs the project's own virtio-net driver (checked
// against QEMU's device in package guests) on the user-mode network: it
// sends an ARP request for the gateway and must print the reply.
func TestVirtioNetGuest(t *testing.T) {
	kernel := guest(t, "vnet")
	for _, words := range []string{"poll", "irq"} {
		t.Run(words, func(t *testing.T) {
			mac := net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}
			back, err := netback.Open("user", nil, mac)
			if err != nil {
				t.Fatal(err)
			}
			nic, err := vnet.New(back, mac)
			if err != nil {
				back.Close()
				t.Fatal(err)
			}
			out, e, err := boot(t, vmm.Config{Kernel: kernel, Append: words, MemoryMiB: 32,
				Devices: []virtio.Device{nic}}, 60*time.Second)
			wantDebugExit(t, e, err, 0)
			wantLines(t, out, "vnet: mac 52:54:00:12:34:56", "vnet: link status 0x1",
				"vnet: arp reply 10.0.2.2 is at "+netback.UserGatewayMAC.String(), "vnet: ok")
		})
	}
}
