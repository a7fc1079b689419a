package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/virtio/blk"
)

// TestHiddenTailWarning: run and bench warn, once, of a -d image whose
// size is not a multiple of 512, naming it, its size, the bytes the guest
// does not see and how to pad it; they still use it. An image of whole
// sectors gets no warning.
func TestHiddenTailWarning(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	bad := guests.ForTest(t, "bad")
	tests := []struct {
		name string
		cmd  []string
		file string
		opts string // after the -d path
		size int64
		want string // "" for no warning
	}{
		{"run", []string{"run", "-m", "32", "--net", "none", "-k", bad, "-a", "halt"}, "odd.img", "", 1000,
			"smolvmm run: warning: -d DIR/odd.img: the image is 1000 bytes, not a whole number of 512-byte sectors, so the guest sees only 512 of them and not the last 488; pad it to whole sectors with: truncate -s %512 DIR/odd.img\n"},
		{"run: a name to quote", []string{"run", "-m", "32", "--net", "none", "-k", bad, "-a", "halt"}, "my disk.img", "", 4097,
			"smolvmm run: warning: -d DIR/my disk.img: the image is 4097 bytes, not a whole number of 512-byte sectors, so the guest sees only 4096 of them and not the last 1; pad it to whole sectors with: truncate -s %512 'DIR/my disk.img'\n"},
		{"run: whole sectors", []string{"run", "-m", "32", "--net", "none", "-k", bad, "-a", "halt"}, "even.img", "", 4096, ""},
		// Read-only: bench warns of a writable disk too (benchrw_test.go).
		{"bench", []string{"bench", "-k", bad, "-a", "halt", "--net", "none", "-n", "2", "--warmup", "0"}, "odd.img", ",ro", 1000,
			"smolvmm bench: warning: -d DIR/odd.img: the image is 1000 bytes, not a whole number of 512-byte sectors, so the guest sees only 512 of them and not the last 488; pad it to whole sectors with: truncate -s %512 DIR/odd.img\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			img := filepath.Join(dir, tt.file)
			if err := os.WriteFile(img, make([]byte, tt.size), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(smolvmmBin(t), append(tt.cmd, "-d", img+tt.opts)...)
			cmd.Dir = dir
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			got := stderr.String()
			const head = "warning: -d"
			if tt.want == "" {
				if strings.Contains(got, head) {
					t.Errorf("warned of an image of whole sectors:\n%s", got)
				}
				return
			}
			want := strings.ReplaceAll(tt.want, "DIR", dir)
			if n := strings.Count(got, want); n != 1 {
				t.Errorf("stderr has the warning %d times, want once (exit %v); want\n%s\ngot\n%s", n, err, want, got)
			}
			if n := strings.Count(got, head); n != 1 {
				t.Errorf("%d disk warnings, want 1:\n%s", n, got)
			}
			if st, _ := os.Stat(img); st.Size() != tt.size {
				t.Errorf("the image is %d bytes after the run, was %d", st.Size(), tt.size)
			}
		})
	}
}

// TestHiddenTailWarningSizes: the warning is for an image with whole
// sectors and a partial one after them. An image smaller than one sector
// gets none: the guest sees no part of it because the machine refuses it
// ("a disk needs at least one 512-byte sector"), and a warning that it
// "sees only 0 of them" before that refusal contradicted it.
func TestHiddenTailWarningSizes(t *testing.T) {
	tests := []struct {
		size int64
		warn bool
	}{
		{0, false},
		{3, false},
		{511, false},
		{512, false},
		{513, true},
		{1000, true},
		{4096, false},
	}
	for _, tt := range tests {
		img := filepath.Join(t.TempDir(), "d.img")
		if err := os.WriteFile(img, make([]byte, tt.size), 0o644); err != nil {
			t.Fatal(err)
		}
		var w bytes.Buffer
		warnHiddenTail(&w, "run", img)
		if got := w.Len() > 0; got != tt.warn {
			t.Errorf("%d-byte image: warned %v, want %v: %q", tt.size, got, tt.warn, w.String())
		}
	}
}

// TestNotRawDisk: a -d image that is compressed or a qcow2 image is
// refused before the VM boots, by run, demo and bench, naming its format
// and the command that makes a raw image of it (and the -d that gives it,
// with the refused -d's options), and is left as it was (read-write, it
// was written into as a raw disk).
func TestNotRawDisk(t *testing.T) {
	bad := guests.ForTest(t, "bad")
	gz := append([]byte{0x1f, 0x8b, 0x08, 0}, make([]byte, 1020)...)
	qcow := append([]byte("QFI\xfb\x00\x00\x00\x03"), make([]byte, 1016)...)
	tests := []struct {
		name, file string
		content    []byte
		cmd        []string
		want       string
	}{
		{"run gzip", "raw.img.gz", gz, []string{"run", "-m", "32", "--net", "none", "-k", bad, "-a", "halt"},
			"smolvmm run: disk image DIR/raw.img.gz: gzip-compressed, not a raw disk image (it starts with gzip's signature; the guest would see the file's bytes as its sectors) (decompress it, keeping the original, with: gunzip -k DIR/raw.img.gz, and give -d DIR/raw.img)\n"},
		{"demo qcow2", "t.qcow2", qcow, []string{"demo"},
			"smolvmm demo: disk image DIR/t.qcow2: a qcow2 image, not a raw disk image (it starts with qcow2's signature; the guest would see the file's bytes as its sectors) (convert it to a raw image with: qemu-img convert -O raw DIR/t.qcow2 DIR/t.raw, and give -d DIR/t.raw)\n"},
		{"bench qcow2 read-only", "t.qcow2", qcow, []string{"bench", "-k", bad, "-a", "halt", "--net", "none", "-n", "1", "--warmup", "0"},
			"smolvmm bench: ld0: disk image DIR/t.qcow2: a qcow2 image, not a raw disk image (it starts with qcow2's signature; the guest would see the file's bytes as its sectors) (convert it to a raw image with: qemu-img convert -O raw DIR/t.qcow2 DIR/t.raw, and give -d DIR/t.raw,ro)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			img := filepath.Join(dir, tt.file)
			if err := os.WriteFile(img, tt.content, 0o644); err != nil {
				t.Fatal(err)
			}
			d := img
			if strings.Contains(tt.name, "read-only") {
				d += ",ro"
			}
			_, stderr, status := runCLI(t, append(tt.cmd, "-d", d)...)
			if want := strings.ReplaceAll(tt.want, "DIR", dir); status != 1 || stderr != want {
				t.Errorf("status %d, stderr\n%s\nwant status 1, stderr\n%s", status, stderr, want)
			}
			if got, _ := os.ReadFile(img); !bytes.Equal(got, tt.content) {
				t.Error("the image changed")
			}
		})
	}
}

// TestNotRawAdvice: the command that makes a raw image of a compressed or
// non-raw image, by its format and name.
func TestNotRawAdvice(t *testing.T) {
	tests := []struct {
		path, format string
		compressed   bool
		opts         blk.Options
		want         string
	}{
		{"raw.img.gz", "gzip", true, blk.Options{}, "gunzip -k raw.img.gz, and give -d raw.img)"},
		{"disk.img.xz", "xz", true, blk.Options{}, "xz -dk disk.img.xz, and give -d disk.img)"},
		{"disk.bz2", "bzip2", true, blk.Options{}, "bunzip2 -k disk.bz2, and give -d disk)"},
		{"disk.img.zst", "zstd", true, blk.Options{}, "zstd -d disk.img.zst, and give -d disk.img)"},
		{"disk.img", "gzip", true, blk.Options{}, "gzip -dc disk.img > disk.img.raw, and give -d disk.img.raw)"},
		{"/d/.gz", "gzip", true, blk.Options{}, "gzip -dc /d/.gz > /d/.gz.raw, and give -d /d/.gz.raw)"},
		{"my disk.gz", "gzip", true, blk.Options{}, "gunzip -k 'my disk.gz', and give -d 'my disk')"},
		{"vm.qcow2", "qcow2", false, blk.Options{}, "qemu-img convert -O raw vm.qcow2 vm.raw, and give -d vm.raw)"},
		{"vm.raw", "VMDK", false, blk.Options{}, "qemu-img convert -O raw vm.raw vm.raw.raw, and give -d vm.raw.raw)"},
		{"vm", "VDI", false, blk.Options{}, "qemu-img convert -O raw vm vm.raw, and give -d vm.raw)"},
		// The refused -d's options go with the image that replaces it.
		{"raw.bin.gz", "gzip", true, blk.Options{ReadOnly: true}, "gunzip -k raw.bin.gz, and give -d raw.bin,ro)"},
		{"d.img", "gzip", true, blk.Options{Serial: "disk 1"}, "gzip -dc d.img > d.img.raw, and give -d 'd.img.raw,serial=disk 1')"},
		{"a,b.vhd", "VHD", false, blk.Options{ReadOnly: true, Serial: "s1"}, "qemu-img convert -O raw a,b.vhd a,b.raw, and give -d a,,b.raw,ro,serial=s1)"},
	}
	for _, tt := range tests {
		err := notRawAdvice(&blk.FormatError{Path: tt.path, Format: tt.format, Compressed: tt.compressed}, tt.opts)
		if !errors.Is(err, blk.ErrNotRaw) || !strings.HasSuffix(err.Error(), tt.want) {
			t.Errorf("%s (%s): %v, want ErrNotRaw and the advice ending %q", tt.path, tt.format, err, tt.want)
		}
	}
	if other := errors.New("x"); notRawAdvice(other, blk.Options{}) != other {
		t.Error("another error was changed")
	}
}
