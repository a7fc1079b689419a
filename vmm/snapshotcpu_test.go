package vmm_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/snapshot"
	"github.com/smolvmm/smolvmm/vmm"
)

// snapshotNew snapshots the counter guest's machine as New left it (no
// guest state changes under the test's feet) and returns the file and the
// machine, open until the test ends.
func snapshotNew(t *testing.T) (string, *vmm.Machine) {
	t.Helper()
	needKVM(t)
	m, err := vmm.New(vmm.Config{Kernel: guest(t, "counter"), MemoryMiB: 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	path := filepath.Join(t.TempDir(), "new.snap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := m.Snapshot(f); err != nil {
		t.Fatal(err)
	}
	return path, m
}

// editSnapshot writes a copy of the snapshot at path with its memory and
// its state, edited: edit gets the state's vCPU object, field by field.
func editSnapshot(t *testing.T, path string, editVCPU func(v map[string]json.RawMessage), editMem func(mem []byte)) string {
	t.Helper()
	return editSnapshotKVM(t, path, nil, editVCPU, editMem)
}

// editSnapshotKVM is editSnapshot with the header's KVM identity
// replaced by kvm's, unless nil.
func editSnapshotKVM(t *testing.T, path string, kvm *snapshot.KVMID, editVCPU func(v map[string]json.RawMessage), editMem func(mem []byte)) string {
	t.Helper()
	f, err := snapshot.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mem, err := f.MapMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	var st, v map[string]json.RawMessage
	j, err := vmm.StateJSON(f.State)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(j, &st); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(st["VCPU"], &v); err != nil {
		t.Fatal(err)
	}
	if editVCPU != nil {
		editVCPU(v)
	}
	if editMem != nil {
		editMem(mem)
	}
	if st["VCPU"], err = json.Marshal(v); err != nil {
		t.Fatal(err)
	}
	j, err = json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if kvm != nil {
		f.Header.KVM = *kvm
	}
	return writeSnapshotCopy(t, f, j, mem)
}

// writeSnapshotCopy writes, in a new file, a snapshot with f's header's
// network card and KVM identity, the state j (the state as JSON, see
// vmm.StateJSON) and mem.
func writeSnapshotCopy(t *testing.T, f *snapshot.File, j, mem []byte) string {
	t.Helper()
	state, err := vmm.StateSection(j)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "edited.snap")
	w, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := snapshot.WriteMeta(w, snapshot.Meta{NIC: f.Header.NIC, KVM: f.Header.KVM}, state, mem, nil); err != nil {
		t.Fatal(err)
	}
	return out
}

// recordedCPUID decodes, and setCPUID encodes, the state's CPUID entries.
func recordedCPUID(t *testing.T, v map[string]json.RawMessage) []vmm.CPUIDEntry {
	t.Helper()
	var es vmm.CPUIDList
	if err := json.Unmarshal(v["CPUID"], &es); err != nil || len(es) == 0 {
		t.Fatalf("state's CPUID %s: %v", v["CPUID"], err)
	}
	return es
}

func setCPUID(t *testing.T, v map[string]json.RawMessage, es []vmm.CPUIDEntry) {
	t.Helper()
	b, err := json.Marshal(vmm.CPUIDList(es))
	if err != nil {
		t.Fatal(err)
	}
	v["CPUID"] = b
}

// leaf1 returns the entry of leaf 1 in es.
func leaf1(t *testing.T, es []vmm.CPUIDEntry) *vmm.CPUIDEntry {
	t.Helper()
	for i := range es {
		if es[i].Function == 1 {
			return &es[i]
		}
	}
	t.Fatal("no CPUID leaf 1")
	return nil
}

// TestRestoreCPUID: a restored vCPU is given exactly the snapshot's CPUID
// entries: the original's, and without a feature the host supports but
// the snapshot's vCPU lacked; KVM_GET_CPUID2 reads the same back (where
// KVM reads back what it was given). A snapshot whose vCPU had a feature
// this host's KVM lacks is refused, naming it. A snapshot whose header
// names this KVM is checked against its record of KVM's answer, without
// asking KVM again (unless it has no record); one naming another KVM, or
// none, is checked against KVM's answer, asked once. Both ways, prepared
// or not.
func TestRestoreCPUID(t *testing.T) {
	path, orig := snapshotNew(t)
	given := vmm.VCPUGivenCPUID(orig)
	read, err := vmm.VCPUCPUID(orig)
	if err != nil {
		t.Fatal(err)
	}
	sup, err := vmm.SupportedCPUIDOf(orig)
	if err != nil {
		t.Fatal(err)
	}
	// KVM keeps OSXSAVE (leaf 1 ECX bit 27) up to date itself; kvm_pvm
	// reads back the host CPU's leaves instead of those it was given.
	const osxsave = 1 << 27
	readsBack := (leaf1(t, read).ECX^leaf1(t, given).ECX)&^osxsave == 0
	t.Logf("KVM_GET_CPUID2 reads back what KVM_SET_CPUID2 gave: %v", readsBack)
	// A feature the vCPU has (the lowest in leaf 1 ECX but XSAVE and
	// OSXSAVE, which its XSAVE state needs), and one the host's KVM
	// lacks.
	has := leaf1(t, given).ECX &^ (1<<26 | osxsave)
	if has == 0 {
		t.Skip("the vCPU has no leaf 1 ECX feature to take away")
	}
	hasBit := 0
	for has&(1<<hasBit) == 0 {
		hasBit++
	}
	// Not TSC deadline (24) nor hypervisor (31): KVM gives both whatever
	// it lists, and the check lets them pass.
	lacks := ^leaf1(t, sup).ECX &^ (1<<24 | 1<<31)
	if lacks == 0 {
		t.Skip("this host's KVM supports every leaf 1 ECX bit")
	}
	lackBit := 0
	for lacks&(1<<lackBit) == 0 {
		lackBit++
	}
	without := func(es []vmm.CPUIDEntry) []vmm.CPUIDEntry {
		es = append([]vmm.CPUIDEntry(nil), es...)
		leaf1(t, es).ECX &^= 1 << hasBit
		return es
	}

	tests := []struct {
		name      string
		edit      func(v map[string]json.RawMessage)
		wantGiven []vmm.CPUIDEntry
		wantRead  []vmm.CPUIDEntry // nil: not comparable here
		text      string           // of the refusal
	}{
		{"as snapshotted", nil, given, read, ""},
		{fmt.Sprintf("without leaf 1 ECX bit %d", hasBit), func(v map[string]json.RawMessage) {
			setCPUID(t, v, without(recordedCPUID(t, v)))
		}, without(given), map[bool][]vmm.CPUIDEntry{true: without(read)}[readsBack], ""},
		{fmt.Sprintf("with unsupported leaf 1 ECX bit %d", lackBit), func(v map[string]json.RawMessage) {
			es := recordedCPUID(t, v)
			leaf1(t, es).ECX |= 1 << lackBit
			setCPUID(t, v, es)
		}, nil, nil, fmt.Sprintf("CPUID leaf 0x1 ECX bit %d, which this host's KVM does not support", lackBit)},
	}
	hf, err := snapshot.OpenHeader(path)
	if err != nil {
		t.Fatal(err)
	}
	this := hf.Header.KVM
	hf.Close()
	if this != vmm.KVMIdentity(orig) {
		t.Fatalf("snapshot's header names KVM %x, the machine's is %x", this, vmm.KVMIdentity(orig))
	}
	other := this
	other[0] ^= 0xff
	kvms := []struct {
		name  string
		id    snapshot.KVMID
		asked int
	}{{"this KVM", this, 0}, {"another KVM", other, 1}, {"no KVM named", snapshot.KVMID{}, 1}}
	if this == (snapshot.KVMID{}) {
		t.Log("this host's KVM identity cannot be read: only restores that ask")
		kvms = kvms[1:]
	}
	noRecord := func(v map[string]json.RawMessage) { v["KVMCPUID"] = json.RawMessage("null") }
	for _, k := range kvms {
		for _, tt := range append(tests, struct {
			name      string
			edit      func(v map[string]json.RawMessage)
			wantGiven []vmm.CPUIDEntry
			wantRead  []vmm.CPUIDEntry
			text      string
		}{"no record of KVM's answer", noRecord, given, read, ""}) {
			asked := k.asked
			if tt.name == "no record of KVM's answer" {
				asked = 1
			}
			for _, prepared := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%s/prepared=%v", k.name, tt.name, prepared), func(t *testing.T) {
					id := k.id
					p := editSnapshotKVM(t, path, &id, tt.edit, nil)
					var opts []vmm.RestoreOption
					var prep *vmm.PreparedRestore
					if prepared {
						prep = vmm.PrepareRestore("", p)
						defer prep.Close()
						opts = append(opts, vmm.WithPrepared(prep))
					}
					m, err := vmm.Restore(vmm.Config{}, p, opts...)
					if tt.text != "" {
						if err == nil {
							m.Close()
						}
						if !errors.Is(err, vmm.ErrCPUID) || !strings.Contains(err.Error(), tt.text) {
							t.Fatalf("Restore = %v, want ErrCPUID mentioning %q", err, tt.text)
						}
						if prepared {
							if n := vmm.PreparedCPUIDAsked(prep); n != asked {
								t.Errorf("KVM_GET_SUPPORTED_CPUID asked %d times, want %d", n, asked)
							}
						}
						return
					}
					if err != nil {
						t.Fatal(err)
					}
					defer m.Close()
					// Once when asked: the CPUID the vCPU was made
					// with was tuned, the answer the snapshot's is
					// checked against was kept.
					if n := vmm.SupportedCPUIDAsked(m); n != asked {
						t.Errorf("KVM_GET_SUPPORTED_CPUID asked %d times, want %d", n, asked)
					}
					restoreCPUIDResult(t, m, tt.wantGiven, tt.wantRead)
				})
			}
		}
	}
}

// restoreCPUIDResult checks the CPUID m's vCPU was given, and what
// KVM_GET_CPUID2 reads back unless wantRead is nil.
func restoreCPUIDResult(t *testing.T, m *vmm.Machine, wantGiven, wantRead []vmm.CPUIDEntry) {
	t.Helper()
	if got := vmm.VCPUGivenCPUID(m); !reflect.DeepEqual(got, wantGiven) {
		t.Fatalf("restored vCPU was given other CPUID entries than the snapshot's:\n got %+v\nwant %+v", got, wantGiven)
	}
	if wantRead == nil {
		return
	}
	got, err := vmm.VCPUCPUID(m)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, wantRead) {
		t.Fatalf("restored vCPU's CPUID (KVM_GET_CPUID2) differs:\n got %+v\nwant %+v", got, wantRead)
	}
}

// TestRestoreTSCFrequency: a snapshot whose vCPU ran its TSC at another
// rate gets that rate set (KVM's TSC scaling; without it, within KVM's
// tolerance of the host's rate only) or is refused, naming both rates.
func TestRestoreTSCFrequency(t *testing.T) {
	path, orig := snapshotNew(t)
	have, err := vmm.VCPUTSCKHz(orig)
	if err != nil || have == 0 {
		t.Skipf("KVM does not report the TSC frequency: %d kHz, %v", have, err)
	}
	scales := vmm.CanScaleTSC(orig)
	t.Logf("host TSC %d kHz, KVM scales the TSC: %v", have, scales)
	tests := []struct {
		name   string
		khz    uint64
		refuse bool
	}{
		{"same", have, false},
		{"1 kHz faster, within KVM's tolerance", have + 1, false},
		{"twice as fast", 2 * have, !scales},
		{"half as fast", have / 2, !scales},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := editSnapshot(t, path, func(v map[string]json.RawMessage) {
				v["TSCKHz"] = json.RawMessage(fmt.Sprint(tt.khz))
			}, nil)
			m, err := vmm.Restore(vmm.Config{}, p)
			if tt.refuse {
				if err == nil {
					m.Close()
				}
				text := fmt.Sprintf("the snapshot's vCPU ran its TSC at %d kHz, this host's runs at %d kHz", tt.khz, have)
				if !errors.Is(err, vmm.ErrTSCFrequency) || !strings.Contains(err.Error(), text) {
					t.Fatalf("Restore = %v, want ErrTSCFrequency mentioning %q", err, text)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if got, err := vmm.VCPUTSCKHz(m); err != nil || got != tt.khz {
				t.Fatalf("restored vCPU's TSC runs at %d kHz (%v), want the snapshot's %d", got, err, tt.khz)
			}
		})
	}
}

// TestRestoreVerifyMemory: a snapshot with one page of its memory damaged
// (a byte of the kernel flipped; a page the file leaves as a hole given a
// non-zero byte) is refused by default, by a restore prepared or not,
// before any machine exists, and restored with SkipMemoryCheck (the
// memory is not read); an intact one passes the check. Restore's choice
// holds whatever PrepareRestore was told.
func TestRestoreVerifyMemory(t *testing.T) {
	path, _ := snapshotNew(t)
	f, err := snapshot.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	memOff := int64(f.Header.MemOff)
	f.Close()
	flipped := sparseCopy(t, path, "flipped.snap", func(f *os.File) {
		// A byte of the kernel, loaded at 1 MiB: a page with data.
		flipByte(t, f, memOff+1<<20+100, true)
	})
	filled := sparseCopy(t, path, "filled.snap", func(f *os.File) {
		// A page the counter guest never touches: a hole of the file.
		flipByte(t, f, memOff+8<<20+123, false)
	})
	tests := []struct {
		name string
		path string
		skip bool
		want error
	}{
		{"intact", path, false, nil},
		{"data byte flipped", flipped, false, snapshot.ErrCorrupt},
		{"hole made non-zero", filled, false, snapshot.ErrCorrupt},
		{"data byte flipped, not checked", flipped, true, nil},
		{"hole made non-zero, not checked", filled, true, nil},
	}
	// Prepared or not; prepared with Restore's choice, or with the other
	// one (Restore's decides).
	preps := []string{"not prepared", "prepared alike", "prepared otherwise"}
	for _, tt := range tests {
		for _, prep := range preps {
			t.Run(tt.name+"/"+prep, func(t *testing.T) {
				var opts []vmm.RestoreOption
				if tt.skip {
					opts = append(opts, vmm.SkipMemoryCheck())
				}
				if prep != preps[0] {
					var prepOpts []vmm.RestoreOption
					if tt.skip == (prep == preps[1]) {
						prepOpts = append(prepOpts, vmm.SkipMemoryCheck())
					}
					p := vmm.PrepareRestore("", tt.path, prepOpts...)
					defer p.Close()
					opts = append(opts, vmm.WithPrepared(p))
				}
				m, err := vmm.Restore(vmm.Config{}, tt.path, opts...)
				if err == nil {
					m.Close()
				}
				if tt.want == nil && err != nil {
					t.Fatalf("Restore = %v", err)
				}
				if tt.want != nil && (m != nil || !errors.Is(err, tt.want) || !strings.Contains(err.Error(), "memory section's CRC-32C") || !strings.Contains(err.Error(), tt.path)) {
					t.Fatalf("Restore = machine %v, %v; want no machine, %v about the memory section of %s", m != nil, err, tt.want, tt.path)
				}
			})
		}
	}
}

// sparseCopy copies the snapshot at path to a file named name, its zero
// pages left as holes, edits it and returns its path.
func sparseCopy(t *testing.T, path, name string, edit func(*os.File)) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), name)
	f, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	page := make([]byte, snapshot.PageSize)
	for off := 0; off < len(b); off += snapshot.PageSize {
		p := b[off:min(off+snapshot.PageSize, len(b))]
		if !bytes.Equal(p, page[:len(p)]) {
			if _, err := f.WriteAt(p, int64(off)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := f.Truncate(int64(len(b))); err != nil {
		t.Fatal(err)
	}
	edit(f)
	return dst
}

// flipByte flips a bit of the byte at off of f, which must be non-zero
// (data) or in a hole of the file, as said.
func flipByte(t *testing.T, f *os.File, off int64, data bool) {
	t.Helper()
	next, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
	if inHole := err != nil || next > off; inHole == data {
		t.Fatalf("byte %#x of %s: in a hole %v, want %v", off, f.Name(), inHole, !data)
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	if data && b[0] == 0 {
		t.Fatalf("byte %#x of %s is zero", off, f.Name())
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreCPUIDRecordCarried: a snapshot of a machine restored without
// asking KVM for the CPUID names the same KVM and carries the record on,
// so that its own restore asks nothing either and gives the vCPU the
// first snapshot's entries.
func TestRestoreCPUIDRecordCarried(t *testing.T) {
	path, orig := snapshotNew(t)
	if vmm.KVMIdentity(orig) == (snapshot.KVMID{}) {
		t.Skip("this host's KVM identity cannot be read: every restore asks")
	}
	m, err := vmm.Restore(vmm.Config{}, path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if n := vmm.SupportedCPUIDAsked(m); n != 0 {
		t.Fatalf("first restore asked KVM_GET_SUPPORTED_CPUID %d times, want 0", n)
	}
	again := filepath.Join(t.TempDir(), "again.snap")
	f, err := os.Create(again)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := m.Snapshot(f); err != nil {
		t.Fatal(err)
	}
	hf, err := snapshot.OpenHeader(again)
	if err != nil {
		t.Fatal(err)
	}
	named := hf.Header.KVM
	hf.Close()
	if named != vmm.KVMIdentity(orig) {
		t.Fatalf("snapshot of the restored machine names KVM %x, want %x", named, vmm.KVMIdentity(orig))
	}
	m2, err := vmm.Restore(vmm.Config{}, again)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if n := vmm.SupportedCPUIDAsked(m2); n != 0 {
		t.Errorf("second restore asked KVM_GET_SUPPORTED_CPUID %d times, want 0", n)
	}
	restoreCPUIDResult(t, m2, vmm.VCPUGivenCPUID(orig), nil)
}
