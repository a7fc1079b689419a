package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/smolvmm/smolvmm/kstrip/kstriptest"
)

// TestReadmeSIGPIPEExample: the exit-status table's 141 row gave
// `smolvmm kstrip --list K | head -1` as a SIGPIPE, but a table that
// fits the pipe's buffer (the g4u kernel's 30 KB listing) is all written
// before head goes away, and the status is then 0 (not always: the
// listing is several writes, and head may leave between two). The row now
// gives kstrip's JSON, which outgrows the buffer on a GENERIC kernel: a
// table of 2000 entries, whose writer is still blocked on the full pipe
// when its reader goes away, dies of SIGPIPE every time; and it says a
// shorter output may end 0.
func TestReadmeSIGPIPEExample(t *testing.T) {
	var row string
	for _, line := range strings.Split(readme(t), "\n") {
		if strings.HasPrefix(line, "| 141 |") {
			row = line
		}
	}
	for _, want := range []string{"`smolvmm kstrip --json K | head -1`", "64 KiB", "may be all written"} {
		if !strings.Contains(row, want) {
			t.Errorf("README's 141 row lacks %q: %s", want, row)
		}
	}
	big := []kstriptest.Entry{{Name: "mainbus", Attach: "mainbus"}}
	for i := range 2000 {
		big = append(big, kstriptest.Entry{Name: fmt.Sprintf("dev%d", i), Attach: fmt.Sprintf("dev%d", i), State: 2,
			Parent: &kstriptest.Parent{IAttr: "mainbus", Name: "mainbus", Unit: -1}})
	}
	kernel := testKernel(t, kstriptest.Options{Bits: 32, Entries: big})
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(smolvmmBin(t), "kstrip", "--json", kernel)
	cmd.Stdout = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	// As head -1: one line, then the reader goes away.
	if _, err := bufio.NewReader(r).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	r.Close()
	err = cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok {
		t.Fatalf("kstrip --json into a pipe closed after a line: %v, want death by SIGPIPE", err)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGPIPE {
		t.Errorf("kstrip --json into a pipe closed after a line: %v, want death by SIGPIPE", err)
	}
}
