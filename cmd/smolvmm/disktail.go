package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/smolvmm/smolvmm/internal/regfile"
	"github.com/smolvmm/smolvmm/virtio/blk"
)

// warnDiskTail is warnHiddenTail for the -d image d of a command that has
// not opened it yet: only once it opens as the machine will open it (its
// ,ro), since an image refused is said by the machine, and a warning before
// that refusal advised changing a file the user may not read or write.
func warnDiskTail(w io.Writer, cmd string, d blk.Spec) {
	if st, err := os.Stat(d.Path); err != nil || !st.Mode().IsRegular() || blk.HiddenBytes(st.Size()) == 0 {
		return // nothing to warn of: no need to open it
	}
	disk, err := blk.Open(d.Path, d.Options)
	if err != nil {
		return
	}
	disk.Close()
	warnHiddenTail(w, cmd, d.Path)
}

// warnHiddenTail warns on w, for command cmd, when the -d image at path
// ends in a partial sector, which the guest never sees: a file system
// made to the byte would be cut short without a word. The image is still
// used. The caller has opened it as the machine will (bench's
// checkDiskFile), or calls warnDiskTail: an image that cannot be opened is
// said elsewhere, in the command's own words; so is an image smaller than
// one sector, which the machine refuses (a warning that the guest sees 0
// bytes would contradict that).
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

// checkDiskFormat refuses the -d image d when it is compressed or in a
// disk image format other than raw, as the machine would refuse it, and
// says how to make a raw image of it. What cannot be read is said when the
// machine opens it.
func checkDiskFormat(d blk.Spec) error {
	f, size, err := regfile.Open(d.Path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if err := blk.CheckRaw(f, size, d.Path); err != nil {
		return notRawAdvice(err, d.Options)
	}
	return nil
}

// decompressor is the command that decompresses a compressed image
// (blk.FormatError's Format), keeping it: keep, for a file with the
// format's suffix, which names the output; else stream writes to a file.
// A switch, not a map: a package-level map is built at every start.
func decompressor(format string) (suffix, keep, stream string, ok bool) {
	switch format {
	case "gzip":
		return ".gz", "gunzip -k", "gzip -dc", true
	case "xz":
		return ".xz", "xz -dk", "xz -dc", true
	case "bzip2":
		return ".bz2", "bunzip2 -k", "bzip2 -dc", true
	case "zstd":
		return ".zst", "zstd -d", "zstd -dc", true
	}
	return "", "", "", false
}

// notRawAdvice adds to blk's refusal of an image that is not raw
// (blk.FormatError) the command that makes a raw image of it, and the -d
// that gives it with the options opts of the refused -d (,ro, ,serial=);
// other errors are returned as they are.
func notRawAdvice(err error, opts blk.Options) error {
	var fe *blk.FormatError
	if !errors.As(err, &fe) {
		return err
	}
	p := fe.Path
	disk := func(out string) string { return shellWord(blk.Spec{Path: out, Options: opts}.String()) }
	if suffix, keep, stream, ok := decompressor(fe.Format); ok {
		if out := strings.TrimSuffix(p, suffix); out != p && out != "" && !strings.HasSuffix(out, "/") {
			return fmt.Errorf("%w (decompress it, keeping the original, with: %s %s, and give -d %s)", err, keep, shellWord(p), disk(out))
		}
		out := p + ".raw"
		return fmt.Errorf("%w (decompress it, keeping the original, with: %s %s > %s, and give -d %s)", err, stream, shellWord(p), shellWord(out), disk(out))
	}
	out := strings.TrimSuffix(p, filepath.Ext(p)) + ".raw"
	if out == p {
		out = p + ".raw"
	}
	return fmt.Errorf("%w (convert it to a raw image with: qemu-img convert -O raw %s %s, and give -d %s)", err, shellWord(p), shellWord(out), disk(out))
}
