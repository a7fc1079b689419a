package vmm_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/vmm"
)

// Boot a guest and wait for its end. guests.Demo is the multiboot guest
// built into smolvmm (what `smolvmm demo` boots); for NetBSD, set Kernel to
// the kernel's path instead of KernelImage, and add its root disk with
// Disks: []blk.Spec{{Path: "root.img"}} and a terminal with Input: os.Stdin
// and Console: os.Stdout.
func Example() {
	ctx := context.Background()
	var console bytes.Buffer
	var phases []vmm.Phase
	m, err := vmm.New(vmm.Config{
		Kernel:      "demo",
		KernelImage: guests.Demo,
		Append:      "console=com root=ld0a",
		MemoryMiB:   128,
		Console:     &console,
		OnEvent:     func(e vmm.Event) { phases = append(phases, e.Phase) }, // and e.Time
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	exit, err := m.Run(ctx) // exit.Reason: reset, debug-exit, halted, shutdown, stopped
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("exit:", exit.Reason, exit.Code)
	fmt.Println("phases:", phases)
	lines := bufio.NewScanner(&console)
	for lines.Scan() {
		if l := lines.Text(); strings.HasPrefix(l, "cmdline:") || strings.HasPrefix(l, "smolvmm-demo: done") {
			fmt.Println(l)
		}
	}
	// Prints (TestExample runs it where /dev/kvm is usable, and checks):
	// exit: debug-exit 0
	// phases: [vm-created devices-created kernel-loaded first-run first-output exit]
	// cmdline: "demo console=com root=ld0a"
	// smolvmm-demo: done
}

// exampleOutput is what Example prints.
const exampleOutput = `exit: debug-exit 0
phases: [vm-created devices-created kernel-loaded first-run first-output exit]
cmdline: "demo console=com root=ld0a"
smolvmm-demo: done
`

// TestExample runs Example and compares what it prints. An Example with
// an Output comment could not skip on a host without KVM, as every other
// guest test does.
func TestExample(t *testing.T) {
	needKVM(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	got := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		got <- string(b)
	}()
	func() {
		defer func() { os.Stdout = stdout }()
		Example()
	}()
	w.Close()
	if out := <-got; out != exampleOutput {
		t.Errorf("Example printed:\n%s\nwant:\n%s", out, exampleOutput)
	}
}
