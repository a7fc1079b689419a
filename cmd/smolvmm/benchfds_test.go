package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestBenchParallelFDsREADME: the descriptors each --parallel VM takes,
// as the refusal under ulimit -n 40 counts them, are docs/bench.md's: 5, and
// 6 with --ready, whose VMs get a ready pipe for the VMM's own ready
// report (once a restore's alone; a booted guest's boot-timer write
// counts as its line too), or with --restore, without --ready too (a
// restore that prints nothing starts at that report).
func TestBenchParallelFDsREADME(t *testing.T) {
	dir := t.TempDir()
	snap := emptySnapshot(t, dir)
	kvm := filepath.Join(dir, "kvm") // refused before KVM is opened
	text := strings.Join(strings.Fields(docs(t)), " ")
	for _, tt := range []struct {
		name   string
		args   []string
		fds    string
		readme string
	}{
		{"boots", nil, "5", "the bench keeps 5 descriptors per VM"},
		{"boots, ready", []string{"--ready", "^x"}, "6", "6 with `--ready` or `--restore`, its ready pipe"},
		{"restores", []string{"--restore", snap}, "6", "6 with `--ready` or `--restore`, its ready pipe"},
		{"restores, ready", []string{"--restore", snap, "--ready", "^x"}, "6", "6 with `--ready` or `--restore`, its ready pipe"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{smolvmmBin(t), "bench", "--parallel", "100", "--net", "none", "--kvm-device", kvm}, tt.args...)
			cmd := exec.Command("/bin/sh", append([]string{"-c", `ulimit -n 40 && exec "$0" "$@"`}, args...)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			_ = cmd.Run()
			m := regexp.MustCompile(`each VM takes (\d+):`).FindStringSubmatch(stderr.String())
			if m == nil || m[1] != tt.fds {
				t.Fatalf("stderr %q: want each VM to take %s", stderr.String(), tt.fds)
			}
			if !strings.Contains(text, tt.readme) {
				t.Errorf("the documentation (README.md, docs/*.md) lacks %q", tt.readme)
			}
		})
	}
}
