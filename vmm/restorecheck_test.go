package vmm_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/smolvmm/smolvmm/snapshot"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/vmm"
	"golang.org/x/sys/unix"
)

// TestRestoreRefusesForgedState: a snapshot whose state section has a
// valid digest but a state no machine could have written (a forged or
// miswritten file) is refused as corrupt, naming what is wrong, before
// anything of it is applied: before the VM is even needed, so a machine
// without KVM reports the snapshot's fault, not its own.
func TestRestoreRefusesForgedState(t *testing.T) {
	path, _, _ := snapshotCounter(t, vmm.Config{}, "")
	forge := forger(t, path)
	field := func(path ...string) func(st map[string]any, v any) {
		return func(st map[string]any, v any) {
			m := st
			for _, k := range path[:len(path)-1] {
				m = m[k].(map[string]any)
			}
			m[path[len(path)-1]] = v
		}
	}
	noEdit := func(map[string]any) {}
	// blob returns an edit of the KVM structure at path (an index picks
	// an interrupt controller) that writes v, little-endian, at off.
	blob := func(path string, chip, off int, v uint64, n int) func(st map[string]any) {
		return func(st map[string]any) {
			get, set := func() any { return st[path] }, func(b any) { st[path] = b }
			if chip >= 0 {
				c := st[path].([]any)
				get, set = func() any { return c[chip] }, func(b any) { c[chip] = b }
			}
			b, err := base64.StdEncoding.DecodeString(get().(string))
			if err != nil || len(b) < off+n {
				t.Fatalf("%s %d: %d bytes, %v", path, chip, len(b), err)
			}
			var le [8]byte
			binary.LittleEndian.PutUint64(le[:], v)
			copy(b[off:off+n], le[:n])
			set(base64.StdEncoding.EncodeToString(b))
		}
	}
	// struct kvm_irqchip: chip_id and pad, then the chip's state.
	chip := func(c, off int, v uint64, n int) func(st map[string]any) { return blob("IRQChips", c, 8+off, v, n) }
	pit := func(off int, v uint64, n int) func(st map[string]any) { return blob("PIT2", -1, off, v, n) }
	tests := []struct {
		name string
		edit func(st map[string]any)
		nic  *snapshot.NIC // the header's, nil: the snapshot's
		want string
	}{
		// The CLI chose the network from the header (vmm.SnapshotNIC).
		{"header's network card", noEdit, &snapshot.NIC{Present: true}, "the header says network card true, address 000000000000; the state false, 000000000000"},
		{"header's address", noEdit, &snapshot.NIC{Present: true, MAC: [6]byte{2, 0, 0, 0, 0, 1}}, "the header says network card true, address 020000000001; the state false"},
		{"two interrupt controllers", func(st map[string]any) { st["IRQChips"] = st["IRQChips"].([]any)[:2] }, nil, "2 interrupt controllers, want 3"},
		{"interrupt controller out of order", func(st map[string]any) {
			c := st["IRQChips"].([]any)
			c[0], c[1] = c[1], c[0]
		}, nil, "interrupt controller 0: chip 1"},
		// KVM takes any base, and a guest's accesses to its I/O APIC
		// then went to 0xa0000, where no guest can move it.
		{"I/O APIC moved", chip(2, 0, 0xA0000, 8), nil, "interrupt controller 2 (I/O APIC): base 0xa0000, where no guest can move KVM's (0xfec00000)"},
		{"I/O APIC register select", chip(2, 8, 0x100, 4), nil, "I/O APIC): register select 0x100"},
		{"I/O APIC ID", chip(2, 12, 0x10, 4), nil, "I/O APIC): ID 0x10, a 4-bit field"},
		{"I/O APIC irr past its pins", chip(2, 16, 1<<24, 4), nil, "I/O APIC): irr 0x1000000 has bits past its 24 pins"},
		{"I/O APIC remote IRR on an edge entry", chip(2, 24+8*3, 1<<14, 8), nil, "I/O APIC): redirection entry 3 0x4000: remote IRR on an edge-triggered entry"},
		{"8259 priority", chip(0, 4, 8, 1), nil, "interrupt controller 0 (master 8259): priority_add 8"},
		{"8259 vector base", chip(0, 5, 0x21, 1), nil, "interrupt controller 0 (master 8259): irq_base 0x21"},
		{"8259 flag", chip(1, 7, 2, 1), nil, "interrupt controller 1 (slave 8259): poll 2, a flag"},
		{"8259 initialization", chip(0, 9, 4, 1), nil, "(master 8259): init_state 4"},
		{"8259 ELCR mask", chip(1, 15, 0xFF, 1), nil, "interrupt controller 1 (slave 8259): elcr_mask 0xff, KVM's is 0xde"},
		{"8259 ELCR", chip(0, 14, 0x01, 1), nil, "interrupt controller 0 (master 8259): elcr 0x1 sets bits outside 0xf8"},
		{"PIT count", pit(0, 0x10001, 4), nil, "pit2: channel 0: count 65537, where a guest loads 1 to 65536"},
		{"PIT count 0", pit(24, 0, 4), nil, "pit2: channel 1: count 0"},
		{"PIT mode", pit(48+13, 6, 1), nil, "pit2: channel 2: mode 6"},
		{"PIT access mode", pit(12, 4, 1), nil, "pit2: channel 0: rw_mode 4, past 3"},
		{"PIT HPET legacy", pit(72, 1, 4), nil, "pit2: flags 0x1"},
		{"short clock", func(st map[string]any) { st["Clock"] = "AAAA" }, nil, "clock: 3 bytes, want 48"},
		{"no PIT", func(st map[string]any) { delete(st, "PIT2") }, nil, "pit2: 0 bytes, want 112"},
		{"short registers", func(st map[string]any) { field("VCPU", "Regs")(st, "AAAA") }, nil, "regs: 3 bytes, want 144"},
		{"short XSAVE state", func(st map[string]any) { field("VCPU", "XSave")(st, "AAAA") }, nil, "xsave: 3 bytes, want 4096 to 65536"},
		{"huge XSAVE state", func(st map[string]any) {
			field("VCPU", "XSave")(st, base64.StdEncoding.EncodeToString(make([]byte, 64<<10+1)))
		}, nil, "xsave: 65537 bytes, want 4096 to 65536"},
		{"neither XSAVE nor FPU", func(st map[string]any) {
			field("VCPU", "XSave")(st, nil)
			field("VCPU", "FPU")(st, nil)
		}, nil, "neither XSAVE nor FPU"},
		{"no CPUID", func(st map[string]any) { field("VCPU", "CPUID")(st, nil) }, nil, "CPUID: 0 entries"},
		{"UART", func(st map[string]any) { field("UART", "IER")(st, 0xF0) }, nil, "uart: IER 0xf0"},
		{"RTC", func(st map[string]any) { field("RTC", "Index")(st, 0x80) }, nil, "rtc: index 0x80"},
		{"virtio device count", func(st map[string]any) { st["MACs"] = []string{"", ""} }, nil, "2 network addresses for 0 virtio devices"},
		// It restored, and -v printed "boot protocol Protocol(99)".
		{"boot protocol 99", func(st map[string]any) { st["Protocol"] = 99 }, nil, "boot protocol 99: a machine boots by multiboot (1) or the NetBSD native handoff (2)"},
		{"boot protocol auto", func(st map[string]any) { st["Protocol"] = 0 }, nil, "boot protocol 0: a machine boots by"},
		{"boot protocol -1", func(st map[string]any) { st["Protocol"] = -1 }, nil, "boot protocol -1: a machine boots by"},
	}
	for _, tt := range tests {
		p := forge(tt.edit, tt.nic)
		for _, kvmPath := range []string{"", "/nonexistent/kvm"} {
			t.Run(tt.name+" "+kvmPath, func(t *testing.T) {
				m, err := vmm.Restore(vmm.Config{KVMPath: kvmPath}, p)
				if err == nil {
					m.Close()
					t.Fatal("Restore succeeded")
				}
				if !errors.Is(err, snapshot.ErrCorrupt) || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("Restore: %v\nwant %v mentioning %q", err, snapshot.ErrCorrupt, tt.want)
				}
			})
		}
	}
}

// TestRestoreRefusesForgedMemorySize: a snapshot whose state and header
// agree on a memory size no machine has (valid digests) is refused as
// corrupt, naming MemoryMiB, before a VM is made: one of 4096 MiB
// restored and ran with its RAM in one slot across the 32-bit PCI/APIC
// hole, and one of 1 MiB was accepted and ended as a guest crash.
func TestRestoreRefusesForgedMemorySize(t *testing.T) {
	path, _, _ := snapshotCounter(t, vmm.Config{}, "")
	f, err := snapshot.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	good, err := vmm.StateJSON(f.State)
	mem, merr := f.MapMemory()
	f.Close()
	if err != nil || merr != nil {
		t.Fatal(err, merr)
	}
	defer unix.Munmap(mem)
	for _, mib := range []int{1, vmm.MinMemoryMiB - 1, vmm.MaxMemoryMiB + 1, 4096} {
		t.Run(strconv.Itoa(mib), func(t *testing.T) {
			state := editedState(t, good, func(st map[string]any) { st["MemoryMiB"] = mib })
			// The guest's pages, then zeros the writer takes as such
			// without touching them.
			big, err := unix.Mmap(-1, 0, mib<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Munmap(big)
			n := copy(big, mem)
			zero := snapshot.NewPageSet(len(big) / snapshot.PageSize)
			for p := n / snapshot.PageSize; p < len(big)/snapshot.PageSize; p++ {
				zero.Add(p)
			}
			p := filepath.Join(t.TempDir(), "forged.snap")
			out, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			_, err = snapshot.WriteKnown(out, snapshot.NIC{}, state, big, zero)
			if cerr := out.Close(); err != nil || cerr != nil {
				t.Fatal(err, cerr)
			}
			for _, kvmPath := range []string{"", "/nonexistent/kvm"} {
				m, err := vmm.Restore(vmm.Config{KVMPath: kvmPath}, p)
				if err == nil {
					m.Close()
					t.Fatalf("Restore (KVM %q) succeeded", kvmPath)
				}
				want := "MemoryMiB " + strconv.Itoa(mib) + ": a machine has 3 to 3072 MiB"
				if !errors.Is(err, snapshot.ErrCorrupt) || !strings.Contains(err.Error(), want) {
					t.Fatalf("Restore (KVM %q): %v\nwant %v saying %q", kvmPath, err, snapshot.ErrCorrupt, want)
				}
			}
		})
	}
}

// TestRestoreKVMRefusesState: a state of the right shape that this
// host's KVM refuses to set (a forged or miswritten file, or one from a
// KVM that allowed it) is refused naming the part, wrapping
// ErrKVMRefused and KVM's own error; it said "set sregs: invalid
// argument", with nothing to tell what was wrong with what.
func TestRestoreKVMRefusesState(t *testing.T) {
	path, _, _ := snapshotCounter(t, vmm.Config{}, "")
	forge := forger(t, path)
	xsave, err := vmm.HostXSaveSize("/dev/kvm")
	if err != nil || xsave < 4096 {
		t.Fatalf("this host's XSAVE state: %d bytes, %v", xsave, err)
	}
	// edit returns an edit of the vCPU's structure name that sets the
	// 8 bytes at off to v.
	edit := func(name string, off int, v uint64) func(st map[string]any) {
		return func(st map[string]any) {
			c := st["VCPU"].(map[string]any)
			b, err := base64.StdEncoding.DecodeString(c[name].(string))
			if err != nil || len(b) < off+8 {
				t.Fatalf("VCPU.%s: %d bytes, %v", name, len(b), err)
			}
			binary.LittleEndian.PutUint64(b[off:], v)
			c[name] = base64.StdEncoding.EncodeToString(b)
		}
	}
	tests := []struct {
		name string
		edit func(st map[string]any)
		want string
	}{
		// struct kvm_sregs: CR4 after 8 segments, 2 tables, CR0, CR2, CR3.
		{"CR4 reserved bit", edit("Sregs", 8*24+2*16+3*8, 1<<63), "the snapshot's sregs: refused by this host's KVM (the snapshot is corrupt, or was taken on another KVM): set sregs: invalid argument"},
		// struct kvm_vcpu_events: flags at 20 (and the 4 reserved bytes after).
		{"vCPU events flags", edit("Events", 20, 0xffffffff), "the snapshot's vcpu events: refused by this host's KVM"},
		// KVM_SET_XSAVE reads as many bytes as the vCPU's state takes
		// (more than struct kvm_xsave with AMX): a blob of another size
		// than this host's KVM moves is refused, not read past or cut.
		{"XSAVE state larger", func(st map[string]any) {
			c := st["VCPU"].(map[string]any)
			b, _ := base64.StdEncoding.DecodeString(c["XSave"].(string))
			c["XSave"] = base64.StdEncoding.EncodeToString(append(b, make([]byte, 64)...))
		}, "the snapshot's xsave: refused by this host's KVM (the snapshot is corrupt, or was taken on another KVM): set xsave: " + strconv.Itoa(xsave+64) + " bytes in the snapshot, this host's KVM moves " + strconv.Itoa(xsave)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := vmm.Restore(vmm.Config{}, forge(tt.edit, nil))
			if err == nil {
				m.Close()
				t.Fatal("Restore succeeded")
			}
			// KVM's own error, but where the size was refused before KVM saw it.
			if !errors.Is(err, vmm.ErrKVMRefused) || errors.Is(err, syscall.EINVAL) == strings.Contains(tt.want, "bytes in the snapshot") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Restore: %v\nwant %v (and KVM's EINVAL) mentioning %q", err, vmm.ErrKVMRefused, tt.want)
			}
		})
	}
}

// editedState is the state section of the state JSON good with edit
// applied to it.
func editedState(t *testing.T, good []byte, edit func(st map[string]any)) []byte {
	t.Helper()
	var st map[string]any
	d := json.NewDecoder(bytes.NewReader(good))
	d.UseNumber() // a disk's mtime in ns does not survive a float64
	if err := d.Decode(&st); err != nil {
		t.Fatal(err)
	}
	edit(st)
	j, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	state, err := vmm.StateSection(j)
	if err != nil {
		t.Fatal(err)
	}
	return state
}

// forger returns a function that writes a copy of the snapshot at path
// with its state edited, digest and all, and its header's network card
// nic's (nil: the snapshot's).
func forger(t *testing.T, path string) func(edit func(st map[string]any), nic *snapshot.NIC) string {
	t.Helper()
	f, err := snapshot.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	good, err := vmm.StateJSON(f.State)
	if err != nil {
		t.Fatal(err)
	}
	mem, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	mem = mem[f.Header.MemOff : f.Header.MemOff+f.Header.MemSize]
	f.Close()
	return func(edit func(st map[string]any), nic *snapshot.NIC) string {
		state := editedState(t, good, edit)
		p := filepath.Join(t.TempDir(), "forged.snap")
		out, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		h := f.Header.NIC
		if nic != nil {
			h = *nic
		}
		if _, err := snapshot.Write(out, h, state, mem); err != nil {
			t.Fatal(err)
		}
		return p
	}
}

// TestRestoreRefusesForgedDeviceState: PCI and virtio state no guest
// could have set is refused as corrupt, naming it, before the vCPU or any
// device is set (their Restore would refuse it too, but only after the
// vCPU's state was applied); a snapshot of other devices is still
// ErrSnapshotDevices.
func TestRestoreRefusesForgedDeviceState(t *testing.T) {
	disk := filepath.Join(t.TempDir(), "data.img")
	if err := os.WriteFile(disk, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	// Read-only: the guest that goes on after its snapshot leaves it as
	// the snapshot saw it.
	path, _, _ := snapshotCounter(t, vmm.Config{Disks: []blk.Spec{{Path: disk, Options: blk.Options{ReadOnly: true}}}}, "")
	forge := forger(t, path)
	virtio0 := func(st map[string]any) map[string]any { return st["Virtio"].([]any)[0].(map[string]any) }
	tests := []struct {
		name string
		edit func(st map[string]any)
		want error
		text string
	}{
		{"ring outside memory", func(st map[string]any) {
			virtio0(st)["Queues"].([]any)[0].(map[string]any)["PFN"] = 1 << 20
		}, snapshot.ErrCorrupt, "virtio device 0: virtio type 2: queue 0: virtqueue violation: queue PFN 0x100000"},
		{"ISR", func(st map[string]any) { virtio0(st)["ISR"] = 0x80 }, snapshot.ErrCorrupt, "ISR 0x80"},
		{"interrupt pin", func(st map[string]any) {
			fn := st["PCI"].(map[string]any)["Functions"].([]any)[1].(map[string]any)
			space, err := base64.StdEncoding.DecodeString(fn["Space"].(string))
			if err != nil {
				t.Fatal(err)
			}
			space[0x3D] = 4
			fn["Space"] = base64.StdEncoding.EncodeToString(space)
		}, snapshot.ErrCorrupt, "pci: slot 1: register 0x3d is 0x4 in the snapshot, 0x1 here"},
		{"other device", func(st map[string]any) { virtio0(st)["Type"] = 1 }, vmm.ErrSnapshotDevices, "virtio device types [1] in the snapshot, [2] in this machine"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var nic *snapshot.NIC
			if tt.want == vmm.ErrSnapshotDevices {
				nic = &snapshot.NIC{Present: true} // the header as a network card's snapshot has it
			}
			m, err := vmm.Restore(vmm.Config{}, forge(tt.edit, nic))
			if err == nil {
				m.Close()
				t.Fatal("Restore succeeded")
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("Restore: %v\nwant %v mentioning %q", err, tt.want, tt.text)
			}
		})
	}
}

// TestSnapshotNICReadsHeader: SnapshotNIC answers from the header alone,
// without reading the state (which Restore reads, verifies and decodes):
// a snapshot whose state is damaged gets the header's answer, and its
// restore is refused.
func TestSnapshotNICReadsHeader(t *testing.T) {
	path, _, _ := snapshotCounter(t, vmm.Config{}, "")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[snapshot.HeaderSize+10] ^= 0x20
	damaged := filepath.Join(t.TempDir(), "damaged.snap")
	if err := os.WriteFile(damaged, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if has, mac, err := vmm.SnapshotNIC(damaged); has || mac != nil || err != nil {
		t.Fatalf("SnapshotNIC = %t, %v, %v; want the header's false, nil, nil", has, mac, err)
	}
	if m, err := vmm.Restore(vmm.Config{}, damaged); !errors.Is(err, snapshot.ErrCorrupt) {
		if err == nil {
			m.Close()
		}
		t.Fatalf("Restore = %v, want %v", err, snapshot.ErrCorrupt)
	}
}
