package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIBenchSilentRestore: a snapshot of a guest at its prompt, which
// prints nothing after it, restores as a good bench: --parallel without
// --ready starts every VM at its ready report (each once stayed "not
// started" until the timeout, the report dropped before the bench saw
// it).
func TestCLIBenchSilentRestore(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := codeKernel(t, []byte{
		0x66, 0xBA, 0xF8, 0x03, // mov dx, 0x3f8
		0xB0, '>', 0xEE, // mov al, '>'; out dx, al
		0xB0, ' ', 0xEE, // mov al, ' '; out dx, al
		0xEB, 0xFE, // jmp $: at its prompt, for ever
	})
	dir := t.TempDir()
	snap := filepath.Join(dir, "prompt.snap")
	if out, stderr, status := runCLI(t, "run", "-k", kernel, "-m", "16", "--net", "none", "--ready", "^> ", "--snapshot", snap, "--snapshot-exit"); status != 0 || out != "> " {
		t.Fatalf("snapshot run: status %d, output %q\n%s", status, out, stderr)
	}

	out, stderr, status := runCLI(t, "bench", "--restore", snap, "--net", "none", "--parallel", "2", "--timeout", "10s")
	if status != 0 || !strings.Contains(out, "started 2, failed 0") {
		t.Fatalf("bench --restore --parallel 2 without --ready: status %d\n%s\n%s", status, out, stderr)
	}
}
