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
	cmd := exec.Command(bin, "run", "-k", kernel, "--module", module, "-a", "spin", "-m", strconv.Itoa(memMiB), "--net", "none")
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
	mem, err := bench.ReadMemory(cmd.Process.Pid, memMiB<<20)
	if err != nil {
		t.Fatal(err)
	}
	// A small kernel's run reads ~3 to 10 MiB here, the executable's
	// pages included until they are released.
	if mem.OverheadKiB > 16<<10 {
		t.Errorf("the VMM's RSS without guest RAM is %d KiB with a 32 MiB kernel and module, want < 16 MiB", mem.OverheadKiB)
	}
}
