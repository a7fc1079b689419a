package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadFlagValueStatus: a bad flag value is a mistake on the command
// line, status 2 (README), with advice that fits it. Each of these gave
// status 1, or (--uid -5) status 2 with the wrong advice.
func TestBadFlagValueStatus(t *testing.T) {
	bin := smolvmmBin(t)
	dir := t.TempDir()
	kernel := filepath.Join(dir, "netbsd")
	if err := os.WriteFile(kernel, netbsdELF(3, nil), 0o644); err != nil { // EM_386
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		want     string
		needsKVM bool
	}{
		{"mkimg --timestamp garbage", []string{"mkimg", "-s", "rescue", "-i", filepath.Join(dir, "x.img"), "--timestamp", "garbage"},
			`--timestamp "garbage": want Unix seconds or an RFC 3339 time`, false},
		{"kstrip --keep empty", []string{"kstrip", "--keep", "", kernel}, `--keep "" names nothing`, false},
		{"kstrip --keep comma", []string{"kstrip", "--keep", ",", kernel}, `--keep "," names nothing`, false},
		{"demo --uid negative", []string{"demo", "--uid", "-5", "--gid", "3"}, "--uid -5 --gid 3: ids are not negative", false},
		{"run bad module type", []string{"run", "-k", kernel, "--net", "none", "--module", kernel + ",bogus"},
			`type "bogus": unknown module type: want kmod, fs, splash or rndseed`, true},
		{"run bad console", []string{"run", "-k", kernel, "--net", "none", "-a", "console=bogus"},
			"console=bogus: the handoff passes console=com (serial) or console=pc", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needsKVM && !kvmUsable() {
				t.Skip("needs /dev/kvm: the kernel's boot protocol judges the value")
			}
			cmd := exec.Command(bin, tt.args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
				t.Errorf("exit %v, want status 2; stderr: %s", err, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.want)
			}
		})
	}
}
