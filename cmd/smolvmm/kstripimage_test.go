package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/kstrip"
)

// kstrip refuses the image a gzipped file decompressed to when it is no
// kernel however given (a file system image, a tar archive) or gzip data
// still (a kernel gzipped twice); advise says what to give instead, once,
// as it does for a file that is not ELF.
func TestKstripImageNotKernelAdvice(t *testing.T) {
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}
	ext2 := make([]byte, 2048)
	ext2[1080], ext2[1081] = 0x53, 0xef
	ustar := make([]byte, 1024)
	copy(ustar, "./etc/motd")
	copy(ustar[257:], "ustar\x0000")
	const give = "give an uncompressed or gzipped NetBSD kernel"
	tests := []struct {
		name, advice string
		image        []byte // what the gzipped file decompressed to
	}{
		{"ext2 image", give, ext2},
		{"tar archive", give, ustar},
		{"gzipped twice", "decompress one layer, keeping the original, with gzip -dc FILE > KERNEL.gz, and give kstrip KERNEL.gz", gz([]byte("kernel"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := kstrip.Parse(tt.image)
			if err == nil {
				t.Fatal("parsed")
			}
			if strings.Contains(err.Error(), "give ") {
				t.Errorf("kstrip's error %q advises", err)
			}
			got := advise(fmt.Errorf("kstrip: k.gz: %w", err))
			if !strings.HasSuffix(got, " ("+tt.advice+")") || strings.Count(got, "(") != strings.Count(err.Error(), "(")+1 {
				t.Errorf("advise: %q, want it to end (%s), the only advice", got, tt.advice)
			}
			// up's own kernel from the mirror: its user gave none.
			if got := advise(mirrorKernelError("k", err)); strings.Contains(got, "give") {
				t.Errorf("advise: %q, want no kernel asked of up's user", got)
			}
		})
	}
}
