package blk_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/virtio/blk"
)

// qemuBinary is an installed qemu-system-i386 or -x86_64, or skips.
func qemuBinary(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"qemu-system-i386", "qemu-system-x86_64"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("neither qemu-system-i386 nor qemu-system-x86_64 is installed (apt-get install qemu-system-x86)")
	return ""
}

// qemuCommand is QEMU with path as a virtio disk, paused (-S), its
// monitor on stdio: it quits when it reads "quit", or fails at once when
// it cannot lock the image.
func qemuCommand(ctx context.Context, qemu, path string, ro bool) *exec.Cmd {
	drive := "file=" + strings.ReplaceAll(path, ",", ",,") + ",format=raw,if=none,id=d0"
	if ro {
		drive += ",readonly=on"
	}
	return exec.CommandContext(ctx, qemu, "-nodefaults", "-display", "none", "-S", "-monitor", "stdio",
		"-drive", drive, "-device", "virtio-blk-pci,drive=d0")
}

// QEMU refuses an image an open disk writes, and a disk refuses an image
// QEMU writes, naming the QEMU process; a read-only QEMU and a read-only
// disk share one. (The context bounds a QEMU that would wait forever.)
func TestQEMULockInterop(t *testing.T) {
	qemu := qemuBinary(t)
	for _, tc := range []struct {
		name           string
		qemuFirst      bool
		qemuRO, diskRO bool
		refused        bool
	}{
		{"disk rw, then QEMU rw", false, false, false, true},
		{"disk rw, then QEMU ro", false, true, false, true},
		{"disk ro, then QEMU rw", false, false, true, true},
		{"disk ro, then QEMU ro", false, true, true, false},
		{"QEMU rw, then disk rw", true, false, false, true},
		{"QEMU rw, then disk ro", true, false, true, true},
		{"QEMU ro, then disk rw", true, true, false, true},
		{"QEMU ro, then disk ro", true, true, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			p := tempImage(t)
			if !tc.qemuFirst {
				d, err := blk.Open(p, blk.Options{ReadOnly: tc.diskRO})
				if err != nil {
					t.Fatal(err)
				}
				defer d.Close()
				cmd := qemuCommand(ctx, qemu, p, tc.qemuRO)
				cmd.Stdin = strings.NewReader("quit\n")
				out, err := cmd.CombinedOutput()
				var ee *exec.ExitError
				switch {
				case tc.refused && (!errors.As(err, &ee) || !strings.Contains(string(out), "Failed to get")):
					t.Errorf("QEMU: %v, want it to fail to get its lock:\n%s", err, out)
				case !tc.refused && err != nil:
					t.Errorf("QEMU: %v, want it to start and quit:\n%s", err, out)
				}
				return
			}
			cmd := qemuCommand(ctx, qemu, p, tc.qemuRO)
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// The monitor answers commands only once the machine,
			// its drive open and locked, is made: its banner may come
			// before.
			if _, err := io.WriteString(stdin, "info block\n"); err != nil {
				t.Fatal(err)
			}
			out := bufio.NewReader(stdout)
			for {
				line, err := out.ReadString('\n')
				if err != nil {
					cmd.Process.Kill()
					cmd.Wait()
					t.Fatalf("QEMU did not list its drive: %v\n%s", err, stderr.String())
				}
				if strings.Contains(line, "(raw") {
					break
				}
			}
			d, openErr := blk.Open(p, blk.Options{ReadOnly: tc.diskRO})
			if openErr == nil {
				d.Close()
			}
			io.WriteString(stdin, "quit\n")
			go io.Copy(io.Discard, stdout)
			if err := cmd.Wait(); err != nil {
				t.Errorf("QEMU: %v\n%s", err, stderr.String())
			}
			holder := "process " + strconv.Itoa(cmd.Process.Pid) + " ("
			switch {
			case tc.refused && (!errors.Is(openErr, blk.ErrInUse) || !strings.Contains(openErr.Error(), holder)):
				t.Errorf("Open: %v, want ErrInUse naming %q", openErr, holder)
			case !tc.refused && openErr != nil:
				t.Errorf("Open: %v, want it to open", openErr)
			}
		})
	}
}
