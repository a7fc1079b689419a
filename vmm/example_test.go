package vmm_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/snapshot"
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

// Snapshot a machine once its guest is ready, into a file that a
// snapshot.Target replaces only with a complete snapshot, and restore it:
// the restored guest goes on from where it was, without booting again
// (it does not print its first line twice). A program that snapshots a
// running machine when it chooses calls
//
//	err := t.Write(func(w io.Writer) error { _, err := m.Snapshot(w); return err })
//
// which, as SnapshotOnReady's writer here, writes a temporary beside the
// file and renames it over the file once complete. A plain file given to
// Snapshot must be new or truncated: a snapshot is read from its file's
// first byte to its last.
func ExampleMachine_Snapshot() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "demo.snap")
	t, err := snapshot.OpenTarget(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	w := t.NewWriter()
	var snapErr error
	m, err := vmm.New(vmm.Config{
		Kernel:          "demo",
		KernelImage:     guests.Demo,
		Append:          "console=com",
		MemoryMiB:       16,
		Ready:           regexp.MustCompile("^smolvmm-demo: hello"),
		SnapshotOnReady: w,
		SnapshotExit:    true,
		// On the vCPU thread, the guest paused: the file is in place
		// before Run returns.
		OnSnapshot: func(_ vmm.SnapshotInfo, err error) { snapErr = w.Finish(err) },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	exit, err := m.Run(context.Background())
	m.Close()
	t.Close()
	if err != nil || snapErr != nil {
		fmt.Println(err, snapErr)
		return
	}
	fmt.Println("first run:", exit.Reason)

	var console bytes.Buffer
	r, err := vmm.Restore(vmm.Config{Console: &console}, path)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	exit, err = r.Run(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("restored run:", exit.Reason, exit.Code)
	lines := bufio.NewScanner(&console)
	for lines.Scan() {
		if l := lines.Text(); strings.HasPrefix(l, "smolvmm-demo:") {
			fmt.Println(l)
		}
	}
	// Prints (TestExampleMachine_Snapshot runs it where /dev/kvm is
	// usable, and checks):
	// first run: snapshot
	// restored run: debug-exit 0
	// smolvmm-demo: done
}

// exampleSnapshotOutput is what ExampleMachine_Snapshot prints.
const exampleSnapshotOutput = `first run: snapshot
restored run: debug-exit 0
smolvmm-demo: done
`

// TestExample runs Example and compares what it prints. An Example with
// an Output comment could not skip on a host without KVM, as every other
// guest test does.
func TestExample(t *testing.T) {
	if out := runExample(t, Example); out != exampleOutput {
		t.Errorf("Example printed:\n%s\nwant:\n%s", out, exampleOutput)
	}
}

// TestExampleMachine_Snapshot runs ExampleMachine_Snapshot and compares
// what it prints, as TestExample.
func TestExampleMachine_Snapshot(t *testing.T) {
	if out := runExample(t, ExampleMachine_Snapshot); out != exampleSnapshotOutput {
		t.Errorf("ExampleMachine_Snapshot printed:\n%s\nwant:\n%s", out, exampleSnapshotOutput)
	}
}

// runExample runs example, where KVM is usable, and returns what it
// printed.
func runExample(t *testing.T, example func()) string {
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
		example()
	}()
	w.Close()
	return <-got
}
