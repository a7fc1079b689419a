package vmm

import (
	"encoding/binary"
	"os"
	"sync"
	"testing"

	"github.com/smolvmm/smolvmm/virtio"
	vnet "github.com/smolvmm/smolvmm/virtio/net"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

// linkBackend drops what the guest sends and has nothing to receive; the
// test takes its link down and up (vnet.LinkBackend), as a shared
// network's goes while its daemon is gone.
type linkBackend struct {
	virtiotest.Link
	done chan struct{}
	once sync.Once
}

func newLinkBackend() *linkBackend { return &linkBackend{done: make(chan struct{})} }

func (b *linkBackend) ReadFrame([]byte) (int, error) {
	<-b.done
	return 0, os.ErrClosed
}

func (b *linkBackend) WriteFrame([]byte) error { return nil }

func (b *linkBackend) Close() error {
	b.once.Do(func() { close(b.done) })
	return nil
}

// TestNICLinkChangeInterrupts: a network card given in Devices is handed
// its transport's configuration-change interrupt (SetConfigChanged), so
// that its link going down and up raises ISR bit 1 for a driver that
// negotiated STATUS, as NetBSD's vioif needs to see its carrier change.
// Without the hand-off the status changed unseen.
func TestNICLinkChangeInterrupts(t *testing.T) {
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err != nil {
		t.Skipf("KVM unusable here (%v)", err)
	} else {
		f.Close()
	}
	be := newLinkBackend()
	nic, err := vnet.New(be, []byte{0x52, 0x54, 0x00, 0x12, 0x34, 0x56})
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{Kernel: "spin", KernelImage: spinGuest(), Devices: []virtio.Device{nic}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	bar, _ := m.virtio[0].dev.PCIConfig().BAR(0)
	var b [4]byte
	m.pio.Write(bar+virtio.RegStatus, []byte{virtio.StatusAcknowledge | virtio.StatusDriver})
	binary.LittleEndian.PutUint32(b[:], 1<<vnet.FeatureMAC|1<<vnet.FeatureStatus)
	m.pio.Write(bar+virtio.RegGuestFeatures, b[:])
	m.pio.Write(bar+virtio.RegStatus, []byte{virtio.StatusAcknowledge | virtio.StatusDriver | virtio.StatusDriverOK})
	isr := func() uint8 {
		var v [1]byte
		m.pio.Read(bar+virtio.RegISR, v[:])
		return v[0]
	}
	isr() // clear
	for _, up := range []bool{false, true} {
		be.Set(up)
		if got := isr(); got&virtio.ISRConfig == 0 {
			t.Errorf("link up=%v: ISR %#x, want the configuration-change bit %#x", up, got, virtio.ISRConfig)
		}
	}
}
