package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/bootplan"
	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestKernelFileAdvice: run's advice for a -k file vmm refuses before any
// protocol reads it. A gzipped kernel cut short, once its error named
// the Kernel field, must keep the library's advice to fetch it again,
// not gain "--boot forces a protocol", which changes nothing for it; an
// empty one, once it wrapped vmm.ErrNoBootProtocol as junk does, must
// not be told that --boot forced a protocol that passed it over.
func TestKernelFileAdvice(t *testing.T) {
	dir := t.TempDir()
	file := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cut := gzipBytes(guests.Demo) // kstrip_test.go
	cut = cut[:len(cut)/2]
	cutFile, empty, gzEmpty := file("netbsd.gz", cut), file("empty", nil), file("empty.gz", gzipBytes(nil))
	for _, tt := range []struct {
		name   string
		kernel string
		boot   bootplan.Protocol
		advice string
	}{
		{"cut gzip", cutFile, bootplan.Auto, "the gzip data is corrupt or truncated: download the kernel again"},
		{"cut gzip, --boot multiboot", cutFile, bootplan.Multiboot, "the gzip data is corrupt or truncated: download the kernel again"},
		{"cut gzip, --boot netbsd", cutFile, bootplan.NetBSD, "the gzip data is corrupt or truncated: download the kernel again"},
		// No kernel, but not one the protocol --boot forced passed
		// over: the file is the wrong one.
		{"empty", empty, bootplan.Auto, "check the path given with -k"},
		{"empty, --boot multiboot", empty, bootplan.Multiboot, "check the path given with -k"},
		{"empty, --boot netbsd", empty, bootplan.NetBSD, "check the path given with -k"},
		{"gzip of nothing, --boot multiboot", gzEmpty, bootplan.Multiboot, "check the path given with -k"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := vmm.Config{Kernel: tt.kernel, Boot: tt.boot}
			_, err := vmm.CheckKernel(cfg)
			if err == nil {
				t.Fatal("CheckKernel succeeded")
			}
			msg := errorLine("run", advise(kernelLoadError(err, tt.boot, kernelFile(cfg))))
			if !strings.HasSuffix(msg, " ("+tt.advice+")") || strings.Count(msg, "(") != 1 || strings.Contains(msg, "--boot") {
				t.Errorf("got %q\nwant it to end with the one advice (%s), and no --boot", msg, tt.advice)
			}
		})
	}
}
