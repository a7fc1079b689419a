package vmm_test

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/snapshot"
	"github.com/smolvmm/smolvmm/vmm"
)

// lineWatch is a console that closes seen when a line containing want
// has been written.
type lineWatch struct {
	mu   sync.Mutex
	b    strings.Builder
	want string
	seen chan struct{}
}

func (w *lineWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	had := strings.Contains(w.b.String(), w.want)
	w.b.Write(p)
	if !had && strings.Contains(w.b.String(), w.want) {
		close(w.seen)
	}
	return len(p), nil
}

func (w *lineWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// sameMemory fails t unless the snapshot at path verifies against its
// digest and its memory section is mem, byte for byte.
func sameMemory(t *testing.T, path string, mem []byte) {
	t.Helper()
	f, err := snapshot.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.VerifyMemory(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := b[f.Header.MemOff:]
	if len(got) != len(mem) {
		t.Fatalf("%s: memory section of %d bytes, the guest has %d", path, len(got), len(mem))
	}
	var bad []int
	for p := 0; p < len(mem); p += snapshot.PageSize {
		if !bytes.Equal(got[p:p+snapshot.PageSize], mem[p:p+snapshot.PageSize]) {
			bad = append(bad, p/snapshot.PageSize)
		}
	}
	if len(bad) > 0 {
		t.Fatalf("%s: %d pages differ from the guest's memory, the first %#x", path, len(bad), bad[0])
	}
}

// symbolRange returns where the function name lies in the ELF file
// kernel.
func symbolRange(t *testing.T, kernel, name string) (start, end uint64) {
	t.Helper()
	f, err := elf.Open(kernel)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range syms {
		if s.Name == name && s.Size > 0 {
			return s.Value, s.Value + s.Size
		}
	}
	t.Fatalf("%s: no symbol %s", kernel, name)
	return 0, 0
}

// snapshotRIP returns the instruction pointer the snapshot at path
// recorded: struct kvm_regs holds it after the 16 general registers.
func snapshotRIP(t *testing.T, path string) uint64 {
	t.Helper()
	f, err := snapshot.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	j, err := vmm.StateJSON(f.State)
	if err != nil {
		t.Fatal(err)
	}
	var st struct{ VCPU struct{ Regs []byte } }
	if err := json.Unmarshal(j, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.VCPU.Regs) < 136 {
		t.Fatalf("%s: registers of %d bytes", path, len(st.VCPU.Regs))
	}
	return binary.LittleEndian.Uint64(st.VCPU.Regs[128:])
}

// scatterPages are the pages above 4 MiB the counter guest's "scatter"
// writes up to count n in RAM of top bytes (scatter_page in counter.c).
func scatterPages(n, top uint32) map[int]bool {
	pages := map[int]bool{}
	for i := uint32(1); i <= n; i++ {
		pages[int((4<<20)/snapshot.PageSize+(i*2654435761)%((top-4<<20)/snapshot.PageSize))] = true
	}
	return pages
}

// TestSnapshotMemoryExact: a snapshot holds guest memory exactly, for a
// guest that wrote non-zero words into pages scattered over its RAM and
// zeroed some again: one booted (and the snapshot populates none of the
// pages the guest never touched), one restored and written further, and
// one restored and not yet run, whose pages are all still the snapshot
// file's (absent from the process's page tables, yet not zero).
func TestSnapshotMemoryExact(t *testing.T) {
	needKVM(t)
	const words = "scatter spin n=160 at=100"
	dir := t.TempDir()
	one := filepath.Join(dir, "one.snap")
	f, err := os.Create(one)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	kernel := guest(t, "counter")
	spinStart, spinEnd := symbolRange(t, kernel, "spin_forever")
	var snapErr error
	var out lineWatch
	m, err := vmm.New(vmm.Config{Kernel: kernel, Append: words, MemoryMiB: 16, Console: &out,
		SnapshotOnReady: f, SnapshotExit: true, OnSnapshot: func(_ vmm.SnapshotInfo, err error) { snapErr = err }})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	e, err := m.Run(context.Background())
	if err != nil || snapErr != nil || e.Reason != vmm.ExitSnapshot {
		t.Fatalf("snapshot run: exit %+v, %v, snapshot %v\n%s", e, err, snapErr, out.String())
	}
	mem := m.Memory().Bytes()
	// The pages above 4 MiB no count wrote were never touched, and the
	// snapshot did not touch them either. (Transparent huge pages would
	// populate their neighbours with the guest's pages.)
	if thp, _ := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled"); bytes.Contains(thp, []byte("[always]")) {
		t.Log("transparent huge pages always on: the pages' residency is not checked")
	} else {
		resident := make([]byte, len(mem)/snapshot.PageSize)
		if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&mem[0])), uintptr(len(mem)), uintptr(unsafe.Pointer(&resident[0]))); errno != 0 {
			t.Fatalf("mincore: %v", errno)
		}
		touched := scatterPages(100, 16<<20)
		var populated int
		for p := (4 << 20) / snapshot.PageSize; p < len(resident); p++ {
			if !touched[p] && resident[p]&1 != 0 {
				populated++
			}
		}
		if populated > 0 {
			t.Errorf("after the snapshot, %d pages the guest never touched are resident", populated)
		}
	}
	sameMemory(t, one, mem)
	m.Close()

	// With a PrepareRestore or without: the snapshot file a restored
	// machine's memory maps is known to its snapshots either way.
	for _, prepared := range []bool{false, true} {
		name := "restored, not run"
		if prepared {
			name += ", prepared"
		}
		t.Run(name, func(t *testing.T) {
			var opts []vmm.RestoreOption
			var p *vmm.PreparedRestore
			if prepared {
				p = vmm.PrepareRestore("", one)
				defer p.Close()
				opts = append(opts, vmm.WithPrepared(p))
			}
			r, err := vmm.Restore(vmm.Config{}, one, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if prepared && !vmm.PreparedTaken(p) {
				t.Fatal("Restore did not take the preparation over")
			}
			path := filepath.Join(t.TempDir(), "again.snap")
			g, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			if _, err := r.Snapshot(g); err != nil {
				t.Fatal(err)
			}
			sameMemory(t, path, r.Memory().Bytes())
		})
	}

	t.Run("restored, written further", func(t *testing.T) {
		w := &lineWatch{want: "counter: spinning", seen: make(chan struct{})}
		r, err := vmm.Restore(vmm.Config{Console: w}, one)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		ran := make(chan error, 1)
		go func() {
			_, err := r.Run(context.Background())
			ran <- err
		}()
		select {
		case <-w.seen:
		case err := <-ran:
			t.Fatalf("the restored guest stopped first: %v\n%s", err, w.String())
		}
		// The line is out, but the guest may not have returned from
		// printf yet: snapshots until one finds it in spin_forever,
		// where its memory no longer changes (the first, almost always).
		path := filepath.Join(t.TempDir(), "two.snap")
		for try := 1; ; try++ {
			g, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			_, err = r.Snapshot(g)
			g.Close()
			if err != nil {
				t.Fatal(err)
			}
			if rip := snapshotRIP(t, path); rip >= spinStart && rip < spinEnd {
				break
			} else if try == 100 {
				t.Fatalf("100 snapshots, none in spin_forever [%#x, %#x): the last at %#x", spinStart, spinEnd, rip)
			}
		}
		sameMemory(t, path, r.Memory().Bytes())
		r.Close()
		<-ran
	})
}
