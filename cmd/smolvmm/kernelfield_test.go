package main

import (
	"bytes"
	"compress/gzip"
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
// not gain "--boot forces a protocol", which changes nothing for it.
func TestKernelFileAdvice(t *testing.T) {
	dir := t.TempDir()
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(guests.Demo)
	zw.Close()
	cut := filepath.Join(dir, "netbsd.gz")
	if err := os.WriteFile(cut, z.Bytes()[:z.Len()/2], 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		kernel string
		boot   bootplan.Protocol
		advice string
	}{
		{"cut gzip", cut, bootplan.Auto, "the gzip data is corrupt or truncated: download the kernel again"},
		{"cut gzip, --boot multiboot", cut, bootplan.Multiboot, "the gzip data is corrupt or truncated: download the kernel again"},
		{"cut gzip, --boot netbsd", cut, bootplan.NetBSD, "the gzip data is corrupt or truncated: download the kernel again"},
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
