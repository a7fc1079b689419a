package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
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

// TestErrorLineEscapesNames: a file name with a newline broke the error
// into two lines (docs/commands.md promises one), and one with an escape
// sequence reached the terminal; the line now carries them escaped.
func TestErrorLineEscapesNames(t *testing.T) {
	bin := smolvmmBin(t)
	dir := t.TempDir()
	text := filepath.Join(dir, "text")
	if err := os.WriteFile(text, bytes.Repeat([]byte("hello "), 100), 0o644); err != nil {
		t.Fatal(err)
	}
	at := func(name string) string { return filepath.Join(dir, name) }
	tests := []struct {
		name   string
		args   []string
		status int
		want   string // in the line, with dir for DIR
	}{
		{"run -k", []string{"run", "-k", at("nl\nx.img")}, 1, `smolvmm run: read kernel: open DIR/nl\nx.img: no such file or directory`},
		{"run -k, an escape sequence", []string{"run", "-k", at("esc\x1b[2J")}, 1, `DIR/esc\x1b[2J: no such file`},
		{"run -d", []string{"run", "-k", text, "-d", at("missing\nfile")}, 1, `-d DIR/missing\nfile: no such file`},
		{"kstrip -o", []string{"kstrip", "-o", at("a\nb/out"), text}, 1, `DIR/a\nb`},
		{"mkimg -i", []string{"mkimg", "-i", at("no\ndir/x.img")}, 1, `DIR/no\ndir`},
		{"a flag's value", []string{"run", "-k", text, "-m", "1\n2"}, 2, `1\n2`},
		{"a backslash and a newline", []string{"run", "-k", at("C:\\new\n")}, 1, `DIR/C:\\new\n: no such file`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(bin, tt.args...)
			cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &stdout, &stderr
			err := cmd.Run()
			status := 0
			if ee, ok := err.(*exec.ExitError); ok {
				status = ee.ExitCode()
			}
			want := strings.ReplaceAll(tt.want, "DIR", dir)
			got := stderr.String()
			if status != tt.status || strings.Count(got, "\n") != 1 || !strings.HasSuffix(got, "\n") || !strings.Contains(got, want) || strings.Contains(got, "\x1b") {
				t.Errorf("status %d, stderr %q; want status %d and one line with %q", status, got, tt.status, want)
			}
		})
	}
}
