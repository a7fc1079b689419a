package vmm_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/smolvmm/smolvmm/vmm"
)

// TestReadyAddrUnresolvable: a ReadyAddr whose host name does not resolve
// is refused by New and Restore, ErrConfig naming the field, before
// anything is opened; the prober used to dial it in vain while Run ran.
func TestReadyAddrUnresolvable(t *testing.T) {
	defer vmm.SetReadyLookup(func(_ context.Context, _, host string) ([]netip.Addr, error) {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	})()
	kvm := filepath.Join(t.TempDir(), "kvm") // no such device: a Config that passed would fail there
	for _, op := range []string{"New", "Restore"} {
		t.Run(op, func(t *testing.T) {
			cfg := vmm.Config{Kernel: "exit", KernelImage: exitGuest(), KVMPath: kvm, ReadyAddr: "nonexistent.invalid:80"}
			m, err := newOrRestore(t, op, cfg)
			if err == nil {
				m.Close()
				t.Fatal("succeeded")
			}
			var ve *vmm.Error
			var de *net.DNSError
			if !errors.Is(err, vmm.ErrConfig) || !errors.As(err, &ve) || ve.Field != "ReadyAddr" || !errors.As(err, &de) ||
				!strings.Contains(err.Error(), "nonexistent.invalid") {
				t.Fatalf("%s = %v (Field %q); want ErrConfig with Field ReadyAddr wrapping the lookup's error", op, err, fieldOf(ve))
			}
		})
	}
}

// countLookups makes New and Restore count their lookups of ReadyAddr's
// host, made by the system's resolver, until the test ends.
func countLookups(t *testing.T) *atomic.Int32 {
	var n atomic.Int32
	t.Cleanup(vmm.SetReadyLookup(func(ctx context.Context, network, host string) ([]netip.Addr, error) {
		n.Add(1)
		return net.DefaultResolver.LookupNetIP(ctx, network, host)
	}))
	return &n
}

// TestReadyAddrEmptyHost: a ReadyAddr without a host (":8080", the local
// system to net.Dial) or with an unspecified IP address is accepted by
// New and Restore without a lookup; ":PORT" was refused as a lookup of
// "" that found no such host. Both then fail at what comes after the
// configuration's checks (no KVM device, no snapshot here).
func TestReadyAddrEmptyHost(t *testing.T) {
	var lookups atomic.Int32
	defer vmm.SetReadyLookup(func(_ context.Context, _, host string) ([]netip.Addr, error) {
		lookups.Add(1)
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	})()
	kvm := filepath.Join(t.TempDir(), "kvm") // no such device
	for _, addr := range []string{":8080", ":http", "[::]:8080", "0.0.0.0:8080"} {
		for _, op := range []string{"New", "Restore"} {
			t.Run(addr+"/"+op, func(t *testing.T) {
				cfg := vmm.Config{Kernel: "exit", KernelImage: exitGuest(), KVMPath: kvm, ReadyAddr: addr}
				m, err := newOrRestore(t, op, cfg)
				if err == nil {
					m.Close()
					t.Fatal("succeeded without a KVM device")
				}
				var ve *vmm.Error
				errors.As(err, &ve)
				if errors.Is(err, vmm.ErrConfig) || fieldOf(ve) == "ReadyAddr" {
					t.Fatalf("%s = %v (Field %q); want it past ReadyAddr's check", op, err, fieldOf(ve))
				}
			})
		}
	}
	if n := lookups.Load(); n != 0 {
		t.Errorf("%d lookups, want none", n)
	}
}
