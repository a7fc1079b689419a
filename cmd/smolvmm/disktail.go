package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/smolvmm/smolvmm/virtio/blk"
)

// warnHiddenTail warns on w, for command cmd, when the -d image at path
// ends in a partial sector, which the guest never sees: a file system
// made to the byte would be cut short without a word. The image is still
// used. A path that cannot be read is said elsewhere, in the command's
// own words; so is an image smaller than one sector, which the machine
// refuses (a warning that the guest sees 0 bytes would contradict that).
func warnHiddenTail(w io.Writer, cmd, path string) {
	st, err := os.Stat(path)
	if err != nil || !st.Mode().IsRegular() || st.Size() < blk.SectorSize {
		return
	}
	hidden := blk.HiddenBytes(st.Size())
	if hidden == 0 {
		return
	}
	fmt.Fprintf(w, "smolvmm %s: warning: -d %s: the image is %d bytes, not a whole number of %d-byte sectors, so the guest sees only %d of them and not the last %d; pad it to whole sectors with: truncate -s %%%d %s\n",
		cmd, path, st.Size(), blk.SectorSize, st.Size()-hidden, hidden, blk.SectorSize, shellWord(path))
}

// shellWord is s as one word of a shell command line: as it is when it
// holds nothing a shell reads specially, else in single quotes.
func shellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./+,:@%=") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
