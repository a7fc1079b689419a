package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/fetch"
	"github.com/smolvmm/smolvmm/fetch/fetchtest"
)

// TestInterruptedDownloadMessage: a signal during a download ends fetch
// and up with status 130 and one line that names the signal and says
// what is kept. It was "interrupted: truncated transfer: GET ...:
// terminated signal received (run again)".
func TestInterruptedDownloadMessage(t *testing.T) {
	bin := smolvmmBin(t)
	kernel := bytes.Repeat([]byte("kernel "), 20000)
	kernelFile := fetchtest.KernelPath("9.3", "i386", fetch.KernelName)
	digests := "NetBSD-9.3/i386/binary/kernel/SHA512"
	const partial = "; the partial download is kept and resumed next time"
	tests := []struct {
		name    string
		cmd     string
		sig     syscall.Signal
		stall   string // the file whose transfer stalls
		want    string
		keepsPt bool
	}{
		{"fetch kernel SIGTERM", "fetch", syscall.SIGTERM, kernelFile, "smolvmm fetch: interrupted by SIGTERM" + partial, true},
		{"fetch kernel SIGINT", "fetch", syscall.SIGINT, kernelFile, "smolvmm fetch: interrupted by SIGINT" + partial, true},
		{"fetch digests SIGTERM", "fetch", syscall.SIGTERM, digests, "smolvmm fetch: interrupted by SIGTERM", false},
		{"fetch kernel SIGHUP", "fetch", syscall.SIGHUP, kernelFile, "smolvmm fetch: interrupted by SIGHUP" + partial, true},
		{"up kernel SIGHUP", "up", syscall.SIGHUP, kernelFile, "smolvmm up: interrupted by SIGHUP" + partial, true},
		{"up kernel SIGTERM", "up", syscall.SIGTERM, kernelFile, "smolvmm up: interrupted by SIGTERM" + partial, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cmd == "up" {
				upNeedKVM(t)
			}
			srv := fetchtest.NewServer(fetchtest.Release{Version: "9.3", Arch: "i386", Kernel: kernel,
				Sets: map[string][]byte{"rescue.tgz": fetchtest.RescueSet()}})
			defer srv.Close()
			srv.SetFault(tt.stall, fetchtest.Fault{StallAt: 100})
			work, cache := t.TempDir(), t.TempDir()
			args := []string{tt.cmd, "--mirror", srv.Mirror(), "--cache", cache}
			if tt.cmd == "up" {
				args = append(args, "rescue")
			}
			cmd := exec.Command(bin, args...)
			cmd.Dir = work
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			part := filepath.Join(cache, "9.3", "i386", "kernel", fetch.KernelName+".part")
			// The signal comes once the stalled transfer has begun: its
			// request logged and, for the kernel, bytes in its .part file.
			deadline := time.Now().Add(30 * time.Second)
			for !stalled(srv, tt.stall) || tt.keepsPt && fileSize(part) == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("the transfer of %s never began; stderr:\n%s", tt.stall, stderr.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err := cmd.Process.Signal(tt.sig); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
				t.Errorf("ended with %v, want status 130", err)
			}
			// up logs its steps first; the error is the last line.
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			if last := lines[len(lines)-1]; last != tt.want {
				t.Errorf("last line %q\nwant      %q", last, tt.want)
			}
			if tt.keepsPt && fileSize(part) == 0 {
				t.Errorf("%s was not kept", part)
			}
		})
	}
}

// stalled reports whether srv was asked for the file rel.
func stalled(srv *fetchtest.Server, rel string) bool {
	for _, r := range srv.Requests() {
		if r.Path == rel {
			return true
		}
	}
	return false
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}
