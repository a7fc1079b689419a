package vmm

import (
	"os"
	"testing"

	"github.com/smolvmm/smolvmm/snapshot"
)

// TestReadKVMIdentity: /dev/kvm opened twice is one KVM, with a non-zero
// identity where this host lets it be read; another device or a file
// given as the KVM has none.
func TestReadKVMIdentity(t *testing.T) {
	for _, path := range []string{"/dev/null", os.Args[0]} {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if id, ok := readKVMIdentity(f); ok || id != (snapshot.KVMID{}) {
			t.Errorf("%s: identity %x, %v; want none", path, id, ok)
		}
		f.Close()
	}
	a, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no KVM here: %v", err)
	}
	defer a.Close()
	b, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ida, oka := readKVMIdentity(a)
	idb, okb := readKVMIdentity(b)
	if oka != okb || ida != idb {
		t.Fatalf("one KVM, two identities: %x %v, %x %v", ida, oka, idb, okb)
	}
	if !oka {
		t.Skip("this host's KVM identity cannot be read (no sysfs or boot_id)")
	}
	if ida == (snapshot.KVMID{}) {
		t.Fatal("identity read as zero, which says none")
	}
}
