package fstree_test

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"github.com/smolvmm/smolvmm/imagebuilder/testsets"
)

// TestXZFilterChain: a valid .tar.xz made with a filter before LZMA2
// (xz --x86, as some release tooling does) was reported as a "corrupt or
// truncated archive: xz: unsupported filter count". It is refused as a
// filter chain the decoder does not read, with what to do; plain xz reads.
func TestXZFilterChain(t *testing.T) {
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("no xz here")
	}
	raw, err := testsets.Bytes(testsets.Rescue(1000), "tar")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string // "" for read
	}{
		{[]string{"--x86", "--lzma2"}, "set.txz: the xz compression uses the x86 BCJ filter (a chain of 2 filters): only LZMA2 alone is supported; recompress the set with plain xz"},
		{[]string{"--delta", "--lzma2"}, "set.txz: the xz compression uses the delta filter (a chain of 2 filters)"},
		{[]string{"--lzma2"}, ""},
		{nil, ""},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			cmd := exec.Command("xz", append([]string{"-c"}, tc.args...)...)
			cmd.Stdin = bytes.NewReader(raw)
			txz, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			err = fstree.New().AddArchive(bytes.NewReader(txz), "set.txz")
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)) {
				t.Errorf("AddArchive = %v, want %q", err, tc.want)
			}
		})
	}
}
