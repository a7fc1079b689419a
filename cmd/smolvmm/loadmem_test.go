package main

import (
	"bufio"
	"crypto/rand"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/bench"
	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/internal/regfile"
)

// writeRandomAfter writes prefix then n random bytes to path.
func writeRandomAfter(t *testing.T, path string, prefix []byte, n int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(prefix); err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, int64(n)); err != nil {
		t.Fatal(err)
	}
}

// A run given a kernel and a module of 32 MiB each (about a NetBSD
// GENERIC kernel's size) keeps nothing of them once its guest runs but
// their copy in guest RAM: the VMM's own memory stays what a small
// kernel's run takes. Read whole, they stayed in its heap for the whole
// run: 100 MiB and more.
func TestRunBigInputsLeaveNoMemory(t *testing.T) {
	if !kvmUsable() {
		t.Skip("KVM unusable here: the guest runs on /dev/kvm")
	}
	bin := smolvmmBin(t)
	elf, err := os.ReadFile(guests.ForTest(t, "counter"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kernel, module := filepath.Join(dir, "kernel"), filepath.Join(dir, "module")
	writeRandomAfter(t, kernel, elf, 32<<20)
	writeRandomAfter(t, module, nil, 32<<20)

	const memMiB = 100 // a size no heap arena of the VMM takes
	mem := spinningMemory(t, bin, memMiB, "-k", kernel, "--module", module)
	// A small kernel's run reads ~3 to 10 MiB here, the executable's
	// pages included until they are released.
	if mem.OverheadKiB > 16<<10 {
		t.Errorf("the VMM's RSS without guest RAM is %d KiB with a 32 MiB kernel and module, want < 16 MiB", mem.OverheadKiB)
	}
}

// spinningMemory runs smolvmm run with args, -a spin and -m memMiB on the
// counter guest's kernel or another, and reads the VMM's memory once the
// guest spins.
func spinningMemory(t *testing.T, bin string, memMiB int, args ...string) bench.Memory {
	t.Helper()
	args = append(append([]string{"run"}, args...), "-a", "spin", "-m", strconv.Itoa(memMiB), "--net", "none")
	cmd := exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	spinning := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "counter: spinning") {
				spinning <- true
				io.Copy(io.Discard, out)
				return
			}
		}
		spinning <- false
	}()
	select {
	case ok := <-spinning:
		if !ok {
			t.Fatalf("the guest ended before it spun; stderr:\n%s", stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the guest did not spin in 30 s; stderr:\n%s", stderr.String())
	}
	mem, err := bench.ReadMemory(cmd.Process.Pid, uint64(memMiB)<<20)
	if err != nil {
		t.Fatal(err)
	}
	return mem
}

// A --module that cannot be mapped is read instead (a pseudo-file whose
// size says 0: /proc/kallsyms, ~5 MiB): once the guest runs its
// bytes are released as a mapped module's are. The CLI's Config kept
// them for the whole run, ~2.3 times their size: 14.9 MiB of RSS without
// guest RAM where a run without the module takes 3.2.
func TestRunReadModuleLeavesNoMemory(t *testing.T) {
	if !kvmUsable() {
		t.Skip("KVM unusable here: the guest runs on /dev/kvm")
	}
	const pseudo = "/proc/kallsyms" // the largest procfs file every Linux with kallsyms has
	data, err := os.ReadFile(pseudo)
	// Past regfile.PseudoFileLimit smolvmm refuses the module: a host
	// with that many symbols (a debug kernel) has no file to test with.
	if err != nil || len(data) < 4<<20 || len(data) > regfile.PseudoFileLimit {
		t.Skipf("%s: %d bytes (%v), want a pseudo-file of 4 MiB or more, within the %d bytes smolvmm reads of one", pseudo, len(data), err, regfile.PseudoFileLimit)
	}
	bin := smolvmmBin(t)
	mem := spinningMemory(t, bin, 100, "-k", guests.ForTest(t, "counter"), "--module", pseudo)
	anon := mem.OverheadKiB - mem.FileRSSKiB
	t.Logf("module of %d KiB: anonymous memory %d KiB, file pages %d KiB", len(data)>>10, anon, mem.FileRSSKiB)
	// A run without the module takes ~2 MiB of anonymous memory; kept,
	// the module alone is more than 4.
	if anon > 6<<10 {
		t.Errorf("the VMM's anonymous memory without guest RAM is %d KiB with a %d KiB module read, want < 6 MiB", anon, len(data)>>10)
	}
}
