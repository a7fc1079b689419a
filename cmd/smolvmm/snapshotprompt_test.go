package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// TestNoSnapshotReadyUnended: a --snapshot run never ready because its
// --ready pattern waits for the end of a line the guest never ended (a
// prompt matched with $) says so, rather than asking for a --ready that
// was given.
func TestNoSnapshotReadyUnended(t *testing.T) {
	long := strings.Repeat("x", 100)
	tests := []struct {
		name, ready, unended, want string
	}{
		{"$", `login: $`, "xxxxlogin: ", `: --ready 'login: $' ends with $, so it is matched only against complete lines; the guest's last line "xxxxlogin: " never ended (a prompt): leave out $`},
		{"\\b", `ready\b`, "ready", `--ready 'ready\b' ends with \b, so`},
		{"the alternative that matched", `done\b|login: $`, "login: ", `--ready 'done\b|login: $' ends with $, so it is matched only against complete lines; the guest's last line "login: " never ended (a prompt): leave out $`},
		{"\\z", `^\$ \z`, "$ ", `--ready '^\$ \z' ends with \z, so it is matched only against complete lines; the guest's last line "$ " never ended (a prompt): leave out \z`},
		{"a long line", `login: $`, long + "login: ", `the guest's last line ..."` + long[:53] + `login: " never ended`},
		{"control bytes", `login: $`, "\x1b[2Jlogin: ", `the guest's last line "\x1b[2Jlogin: " never ended`},
		{"no such line", `login: $`, "", "(mark readiness with --ready or --ready-port, or have the guest write port 0x505)"},
	}
	for _, tt := range tests {
		e := &noSnapshotError{path: "p.snap", ready: regexp.MustCompile(tt.ready), unended: tt.unended}
		msg := e.Error()
		if !strings.HasPrefix(msg, "--snapshot p.snap: the guest never became ready, so no snapshot was taken and the file is as it was") || !strings.Contains(msg, tt.want) {
			t.Errorf("%s: %q, want it to say %q", tt.name, msg, tt.want)
		}
	}
}

// TestCLISnapshotPromptWithDollar: --ready 'login: $' on a guest that
// prints "xxxxlogin: " and waits never snapshots, and the warning says
// why: the $ waits for a line end that never comes.
func TestCLISnapshotPromptWithDollar(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := spinKernel(t)
	k, err := os.ReadFile(kernel)
	if err != nil {
		t.Fatal(err)
	}
	// At the entry (offset 32): mov $0x3f8,%dx; each byte with
	// mov $c,%al; out %al,(%dx); then jmp .
	k = append(k[:32], 0x66, 0xBA, 0xF8, 0x03)
	for _, c := range []byte("boot\r\nxxxxlogin: ") {
		k = append(k, 0xB0, c, 0xEE)
	}
	k = append(k, 0xEB, 0xFE)
	if err := os.WriteFile(kernel, k, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	snap := keep(t, dir, "keep.snap") // snapshotsafe_test.go
	cmd := exec.Command(smolvmmBin(t), "run", "-m", "16", "--net", "none", "-k", kernel, "--ready", "login: $", "--snapshot", snap)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out []byte
	buf := make([]byte, 64)
	for !bytes.Contains(out, []byte("login: ")) {
		n, err := stdout.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			cmd.Wait()
			t.Fatalf("the guest printed %q (%v); stderr: %s", out, err, stderr.String())
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	io.Copy(io.Discard, stdout)
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("exit %v, want status 130; stderr: %s", err, stderr.String())
	}
	want := `the guest never became ready, so no snapshot was taken and the file is as it was: --ready 'login: $' ends with $, so it is matched only against complete lines; the guest's last line "xxxxlogin: " never ended (a prompt): leave out $`
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q, want it to say %q", stderr.String(), want)
	}
	checkOnlyKept(t, dir, snap) // snapshotsafe_test.go
}
