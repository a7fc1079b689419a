package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/guests"
)

// TestBenchSignalDuringSetup signals bench once it is set up, before its
// first VM starts (the tests' build waits there, benchtesthook.go): it
// must end as run does in its setup, status 130 naming the signal, with
// --compare qemu's directory (the decompressed kernel) removed from
// TMPDIR. Before, it took its signal handler only after its setup, so a
// signal there killed it (SIGTERM: status 143, no message) and left that
// directory behind.
func TestBenchSignalDuringSetup(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm: bench opens it in its setup")
	}
	bin := smolvmmBin(t)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(guests.Demo)
	zw.Close()
	kernel := filepath.Join(t.TempDir(), "demo.elf.gz")
	if err := os.WriteFile(kernel, gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		args  []string
		files bool // --compare qemu's directory exists once set up
	}{
		{"compare qemu", []string{"bench", "-n", "1", "--warmup", "0", "--net", "none", "--compare", "qemu", "-k", kernel}, true},
		{"parallel", []string{"bench", "--parallel", "2", "--net", "none", "-k", kernel}, false},
	}
	for _, tt := range tests {
		for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
			t.Run(tt.name+"/"+unix.SignalName(sig), func(t *testing.T) {
				tmp := t.TempDir()
				cmd := exec.Command(bin, tt.args...)
				cmd.Env = append(os.Environ(), "TMPDIR="+tmp, benchSetupEnv+"=wait")
				pipe, err := cmd.StderrPipe()
				if err != nil {
					t.Fatal(err)
				}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				var stderr strings.Builder
				waiting := make(chan bool, 1)
				read := make(chan struct{})
				go func() {
					defer close(read)
					sc := bufio.NewScanner(pipe)
					said := false
					for sc.Scan() {
						stderr.WriteString(sc.Text() + "\n")
						if !said && sc.Text() == benchSetupWaitLine {
							said = true
							waiting <- true
						}
					}
					if !said {
						waiting <- false
					}
				}()
				select {
				case ok := <-waiting:
					if !ok {
						<-read
						cmd.Wait()
						t.Fatalf("bench ended before it was set up: %s", stderr.String())
					}
				case <-time.After(60 * time.Second):
					cmd.Process.Kill()
					<-read
					cmd.Wait()
					t.Fatalf("bench not set up after 60 s: %s", stderr.String())
				}
				if m, _ := filepath.Glob(filepath.Join(tmp, "smolvmm-bench-files-*")); (len(m) > 0) != tt.files {
					t.Errorf("set up, TMPDIR holds %v; want the --compare qemu directory: %v", m, tt.files)
				}
				cmd.Process.Signal(sig)
				<-read
				err = cmd.Wait()
				if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
					t.Fatalf("exit %v, want status 130; stderr: %s", err, stderr.String())
				}
				want := "smolvmm bench: interrupted by " + unix.SignalName(sig) + " before any VM started, no results written\n"
				if !strings.HasSuffix(stderr.String(), want) {
					t.Errorf("stderr %q does not end with %q", stderr.String(), want)
				}
				if left, _ := os.ReadDir(tmp); len(left) != 0 {
					t.Errorf("left in TMPDIR: %v", left)
				}
			})
		}
	}
}
