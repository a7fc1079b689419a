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
// it), rounds have no first output and the text says why, and both
// --json files read back.
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

	pj := filepath.Join(dir, "p.json")
	out, stderr, status := runCLI(t, "bench", "--restore", snap, "--net", "none", "--parallel", "2", "--timeout", "10s", "--json", pj)
	if status != 0 || !strings.Contains(out, "started 2, failed 0") {
		t.Fatalf("bench --restore --parallel 2 without --ready: status %d\n%s\n%s", status, out, stderr)
	}
	if !strings.Contains(out, "2 VMs printed nothing: started at their ready report") {
		t.Errorf("--parallel output does not say why the VMs have no first output:\n%s", out)
	}
	for _, v := range readParallelJSON(t, pj).VMs {
		if v.FirstOutputMS != 0 || v.ReadyMS <= 0 {
			t.Errorf("vm %d: first output %.3f, ready %.3f ms: want no first output, a ready", v.Index, v.FirstOutputMS, v.ReadyMS)
		}
	}

	rj := filepath.Join(dir, "r.json")
	out, stderr, status = runCLI(t, "bench", "--restore", snap, "--net", "none", "-n", "2", "--warmup", "0", "--timeout", "10s", "--json", rj)
	if status != 0 {
		t.Fatalf("bench --restore -n 2: status %d\n%s\n%s", status, out, stderr)
	}
	if strings.Contains(out, "first-output") || !strings.Contains(out, "first output: none: the restored guest printed nothing after its ready report\n") {
		t.Errorf("bench --restore output: want no first-output row, and a line saying why:\n%s", out)
	}
	res := readBenchJSON(t, rj)
	if s := res.Systems[0]; len(s.Boots) != 2 || s.Error != "" {
		t.Errorf("system %s: %d boots, error %q: want 2, none", s.Name, len(s.Boots), s.Error)
	}
}
