package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

func TestErrorLine(t *testing.T) {
	for _, tc := range []struct{ command, msg, want string }{
		{"run", "load kernel k: bad", "smolvmm run: load kernel k: bad"},
		{"kstrip", "kstrip: k: not an ELF file", "smolvmm kstrip: k: not an ELF file"},
		{"bench", "smolvmm bench: --compare \"x\": only qemu", "smolvmm bench: --compare \"x\": only qemu"},
		{"up", "smolvmm: up: mkimg: image too small", "smolvmm up: mkimg: image too small"},
		{"up", "mkimg: image too small", "smolvmm up: mkimg: image too small"},
		{"", `unknown command "rnu"`, `smolvmm: unknown command "rnu"`},
		{"", "smolvmm: flag provided but not defined: -x", "smolvmm: flag provided but not defined: -x"},
	} {
		if got := errorLine(tc.command, tc.msg); got != tc.want {
			t.Errorf("errorLine(%q, %q) = %q, want %q", tc.command, tc.msg, got, tc.want)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"smolvmm", "kstrip", "-o", "x", "k"}, "kstrip"},
		{[]string{"smolvmm", "--help"}, ""},
		{[]string{"smolvmm", "rnu"}, ""},
		{[]string{"smolvmm"}, ""},
		{[]string{"smolvmm", "bench", "-n", "1"}, "bench"},
	} {
		if got := commandName(tc.args); got != tc.want {
			t.Errorf("commandName(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}

// TestErrorPrefixes runs the binary: every command's error starts with
// "smolvmm COMMAND: ", once.
func TestErrorPrefixes(t *testing.T) {
	bin := smolvmmBin(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "-k", dir + "/nope"}, "smolvmm run: read kernel: "},
		{[]string{"demo", "-m", "1"}, "smolvmm demo: -m 1: too little RAM"},
		{[]string{"kstrip", dir + "/nope"}, "smolvmm kstrip: "},
		{[]string{"mkimg", "-x", dir + "/nope.tgz", "-i", dir + "/r.img"}, "smolvmm mkimg: "},
		{[]string{"fetch", "--mirror", "ftp://x/", "--cache", dir}, "smolvmm fetch: "},
		{[]string{"bench", "--compare", "xen"}, "smolvmm bench: --compare"},
		{[]string{"up", "--cache", dir, "nope"}, "smolvmm up: "},
		{[]string{"rnu"}, `smolvmm: unknown command "rnu"`},
	} {
		var stderr bytes.Buffer
		cmd := exec.Command(bin, tc.args...)
		cmd.Dir, cmd.Stderr = dir, &stderr
		cmd.Run()
		line := strings.SplitN(stderr.String(), "\n", 2)[0]
		cmdName := strings.SplitN(tc.want, ":", 2)[0] // "smolvmm run"
		if !strings.HasPrefix(line, tc.want) || strings.Contains(line, "smolvmm: smolvmm") ||
			strings.Contains(line, ": "+tc.args[0]+": ") || strings.Count(line, cmdName+":") != 1 {
			t.Errorf("smolvmm %s: %q, want the prefix %q once", strings.Join(tc.args, " "), line, tc.want)
		}
	}
}
