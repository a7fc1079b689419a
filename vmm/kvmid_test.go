package vmm

import (
	"os"
	"path/filepath"
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

// TestKVMIdentityFromTheKernel: a boot_id or misc node that is an ordinary
// file or directory (bind-mounted over the real one, say) tells nothing:
// with either, the identity is none, so a restore asks KVM.
func TestKVMIdentityFromTheKernel(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "boot_id")
	if err := os.WriteFile(fake, []byte("0b4c7a4e-9a51-4a5e-8d8e-2f3c1d0e9b7a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := readBootID(); !ok {
		t.Skip("this host's boot_id cannot be read")
	}
	savedBoot, savedNode := bootIDPath, kvmMiscNode
	t.Cleanup(func() { bootIDPath, kvmMiscNode = savedBoot, savedNode })
	bootIDPath = fake
	if b, ok := readBootID(); ok {
		t.Errorf("boot_id %q read from an ordinary file", b)
	}
	bootIDPath = savedBoot

	kvm, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no KVM here: %v", err)
	}
	defer kvm.Close()
	if _, ok := readKVMIdentity(kvm); !ok {
		t.Skip("this host's KVM identity cannot be read")
	}
	kvmMiscNode = dir
	if id, ok := readKVMIdentity(kvm); ok {
		t.Errorf("identity %x from a misc node that is an ordinary directory", id)
	}
}
