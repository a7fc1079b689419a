package blk_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

func TestParseDiskSpec(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    blk.Spec
		wantErr string
	}{
		{in: "root.img", want: blk.Spec{Path: "root.img"}},
		{in: "/a/b.img,ro", want: blk.Spec{Path: "/a/b.img", Options: blk.Options{ReadOnly: true}}},
		{in: "b.img,serial=DISK1", want: blk.Spec{Path: "b.img", Options: blk.Options{Serial: "DISK1"}}},
		{in: "b.img,serial=X,ro", want: blk.Spec{Path: "b.img", Options: blk.Options{ReadOnly: true, Serial: "X"}}},
		{in: "", wantErr: "empty image path"},
		{in: ",ro", wantErr: "empty image path"},
		{in: "b.img,rw", wantErr: `unknown option "rw"`},
		{in: "b.img,serial=", wantErr: "must be 1 to 20 bytes"},
		{in: "b.img,serial=123456789012345678901", wantErr: "must be 1 to 20 bytes"},
		{in: "b.img,serial=a\tb", wantErr: "not printable"},
		// Printable ASCII is 0x20 to 0x7E: DEL is not.
		{in: "b.img,serial= ~", want: blk.Spec{Path: "b.img", Options: blk.Options{Serial: " ~"}}},
		{in: "b.img,serial=a\x7f", wantErr: `serial "a\x7f": byte 1 is not printable ASCII`},
		{in: "b.img,serial=a\x1f", wantErr: `serial "a\x1f": byte 1 is not printable ASCII`},
		{in: "b.img,serial=a\x80", wantErr: `serial "a\x80": byte 1 is not printable ASCII`},
		// A comma in the path is doubled, as in QEMU's options.
		{in: "c,,ro.img", want: blk.Spec{Path: "c,ro.img"}},
		{in: "c,,ro.img,ro", want: blk.Spec{Path: "c,ro.img", Options: blk.Options{ReadOnly: true}}},
		{in: "a,,,,b,serial=X,,Y", want: blk.Spec{Path: "a,,b", Options: blk.Options{Serial: "X,Y"}}},
		// Each option once: the last one given was taken.
		{in: "b.img,serial=ab,serial=cd", wantErr: `disk "b.img,serial=ab,serial=cd": option serial given twice`},
		{in: "b.img,ro,serial=X,ro", wantErr: `option ro given twice`},
		{in: "c,ro.img", wantErr: `unknown option "ro.img"; known: ro, serial=ID (a comma in the path is written ,,)`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := blk.ParseDiskSpec(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
				}
				// The advice is the CLI's: blk states the facts.
				if twice := strings.Contains(tc.wantErr, "given twice"); twice != errors.Is(err, blk.ErrOptionTwice) || strings.Contains(err.Error(), "; give") {
					t.Errorf("err %v: ErrOptionTwice %v, want %v, and no advice", err, !twice, twice)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
			// String is the inverse: what it writes reads back the same.
			if again, err := blk.ParseDiskSpec(got.String()); err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("%+v.String() = %q, which reads back as %+v, %v", got, got.String(), again, err)
			}
		})
	}
}

func TestDeriveSerial(t *testing.T) {
	a, b := blk.DeriveSerial("/images/root.img"), blk.DeriveSerial("/images/other.img")
	if len(a) != 20 || a == b {
		t.Errorf("serials %q and %q: want 20 bytes, distinct", a, b)
	}
	if blk.DeriveSerial("/images/./root.img") != a {
		t.Error("serial depends on how the same path is spelled")
	}
	if blk.DeriveSerial("/images/root.img") != a {
		t.Error("serial is not stable")
	}
}

func writeImage(t *testing.T, size int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(p, pattern(size, 42), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpenLocking(t *testing.T) {
	p := writeImage(t, 8*512)
	rw, err := blk.Open(p, blk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, opts := range []blk.Options{{}, {ReadOnly: true}} {
		_, err := blk.Open(p, opts)
		// The holder is this test's process (another open of the file).
		// Said once: no errno's text, no second parenthesis.
		want := "disk image " + p + " is in use by another VM: process " + strconv.Itoa(os.Getpid()) + " ("
		if !errors.Is(err, blk.ErrInUse) || !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), ") holds its lock") ||
			strings.Contains(err.Error(), "temporarily unavailable") {
			t.Errorf("second open (ro=%v) while held read-write: %v\nwant %q...\") holds its lock\"", opts.ReadOnly, err, want)
		}
	}
	rw.Close()
	ro1, err := blk.Open(p, blk.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro1.Close()
	ro2, err := blk.Open(p, blk.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("two read-only opens must share the image: %v", err)
	}
	defer ro2.Close()
	if _, err := blk.Open(p, blk.Options{}); err == nil {
		t.Error("read-write open while read-only users hold it succeeded")
	}
}

// TestOpenReadOnlyFile: an image the VMM may not write names the way out,
// ,ro; attached read-only it opens.
func TestOpenReadOnlyFile(t *testing.T) {
	p := writeImage(t, 8*512)
	if os.Geteuid() == 0 {
		// Root ignores permission bits; an immutable file refuses it too.
		if out, err := exec.Command("chattr", "+i", p).CombinedOutput(); err != nil {
			t.Skipf("cannot make a file read-only for root here (chattr +i: %v %s)", err, out)
		}
		t.Cleanup(func() { exec.Command("chattr", "-i", p).Run() })
	} else if err := os.Chmod(p, 0o444); err != nil {
		t.Fatal(err)
	}
	_, err := blk.Open(p, blk.Options{})
	if !errors.Is(err, blk.ErrNotWritable) || !strings.Contains(err.Error(), "attach it read-only") {
		t.Fatalf("read-write open of a read-only image: %v, want ErrNotWritable and advice to attach it read-only", err)
	}
	d, err := blk.Open(p, blk.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only open: %v", err)
	}
	d.Close()
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.img")
	os.WriteFile(empty, nil, 0o644)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, want string
		readOnly   bool
	}{
		{filepath.Join(dir, "missing.img"), "no such file", true},
		{empty, "at least one 512-byte sector", true},
		{dir, "not a regular file (it is a directory)", true},
		// Read-write, a directory failed the open with "cannot open it
		// read-write: is a directory", without the advice a device got.
		{dir, "not a regular file (it is a directory)", false},
		{"/dev/null", "not a regular file (it is a character device)", false},
		{fifo, "not a regular file (it is a FIFO)", false},
	} {
		_, err := blk.Open(tc.path, blk.Options{ReadOnly: tc.readOnly})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
			t.Errorf("Open(%s, read-only %v): %v, want an error naming it and containing %q", tc.path, tc.readOnly, err, tc.want)
		}
		// The advice is the CLI's: blk states the facts.
		if notReg := strings.HasPrefix(tc.want, "not a regular file"); err != nil && (notReg != errors.Is(err, blk.ErrNotRegular) || strings.Contains(err.Error(), "; give")) {
			t.Errorf("Open(%s): %v: ErrNotRegular %v, want %v, and no advice", tc.path, err, !notReg, notReg)
		}
	}
}

// TestFileBackend runs OUT, FLUSH and IN through a real image file
// (preadv/pwritev, fdatasync) and checks the file's bytes.
func TestFileBackend(t *testing.T) {
	p := writeImage(t, 64*512)
	d, err := blk.Open(p, blk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Serial() != blk.DeriveSerial(p) {
		t.Errorf("serial %q, want the derived %q", d.Serial(), blk.DeriveSerial(p))
	}
	r := newBlkRig(t, d)
	data := pattern(3*4096, 5)
	r.mem.WriteAt(data, 0x200000)
	st := r.status()
	bufs := []virtiotest.Buf{{Addr: r.header(blk.TypeOut, 4), Len: 16}}
	for i := uint64(0); i < 3; i++ {
		bufs = append(bufs, virtiotest.Buf{Addr: 0x200000 + 4096*i, Len: 4096})
	}
	bufs = append(bufs, virtiotest.Buf{Addr: st, Len: 1, Write: true})
	r.submit(t, bufs, true)
	flushSt := r.status()
	r.submit(t, []virtiotest.Buf{{Addr: r.header(blk.TypeFlush, 0), Len: 16}, {Addr: flushSt, Len: 1, Write: true}}, false)
	inSt := r.status()
	r.submit(t, []virtiotest.Buf{{Addr: r.header(blk.TypeIn, 4), Len: 16}, {Addr: 0x300000, Len: 2048, Write: true}, {Addr: 0x380000, Len: 10240, Write: true}, {Addr: inSt, Len: 1, Write: true}}, true)
	for _, a := range []uint64{st, flushSt, inSt} {
		if s, _ := r.mem.Read8(a); s != blk.StatusOK {
			t.Errorf("status at %#x = %d", a, s)
		}
	}
	img, _ := os.ReadFile(p)
	if !bytes.Equal(img[4*512:4*512+len(data)], data) || !bytes.Equal(img[:4*512], pattern(64*512, 42)[:4*512]) {
		t.Error("image bytes differ from what was written")
	}
	a, _ := r.mem.Slice(0x300000, 2048)
	b, _ := r.mem.Slice(0x380000, 10240)
	if !bytes.Equal(append(append([]byte{}, a...), b...), data) {
		t.Error("read back differs")
	}
	if err := r.pd.Close(); err != nil {
		t.Fatal(err)
	}
	// Close released the lock.
	d2, err := blk.Open(p, blk.Options{})
	if err != nil {
		t.Fatalf("reopen after Close: %v", err)
	}
	d2.Close()
}

// TestOpenMessageNamesPathOnce: a missing image is named once, with the
// cause, not as "disk image P: open read-write: open P: ...".
func TestOpenMessageNamesPathOnce(t *testing.T) {
	p := filepath.Join(t.TempDir(), "nope.img")
	_, err := blk.Open(p, blk.Options{})
	want := "disk image " + p + ": cannot open it read-write: no such file or directory"
	if !errors.Is(err, os.ErrNotExist) || err.Error() != want {
		t.Errorf("Open = %v\nwant %q (and os.ErrNotExist)", err, want)
	}
}

// TestOpenPartialSector: an image whose size is not a multiple of 512 is
// opened, its whole sectors exposed, and the bytes past them reported.
func TestOpenPartialSector(t *testing.T) {
	for _, tt := range []struct {
		size, sectors, hidden int64
	}{
		{512, 1, 0},
		{1000, 1, 488},
		{4096, 8, 0},
		{4097, 8, 1},
		{1<<20 + 511, 2048, 511},
	} {
		p := filepath.Join(t.TempDir(), "img")
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, tt.size); err != nil {
			t.Fatal(err)
		}
		d, err := blk.Open(p, blk.Options{})
		if err != nil {
			t.Fatalf("%d bytes: %v", tt.size, err)
		}
		if d.Capacity() != uint64(tt.sectors) || d.Size() != tt.size || d.HiddenBytes() != tt.hidden {
			t.Errorf("%d bytes: capacity %d sectors, size %d, hidden %d; want %d sectors, %d hidden",
				tt.size, d.Capacity(), d.Size(), d.HiddenBytes(), tt.sectors, tt.hidden)
		}
		if got := blk.HiddenBytes(tt.size); got != tt.hidden {
			t.Errorf("HiddenBytes(%d) = %d, want %d", tt.size, got, tt.hidden)
		}
		d.Close()
	}
}

// TestOpenNotRaw: an image that is a compressed file or in another disk
// image format is refused, read-only or not, naming its format, and left
// as it was; a raw image whose first bytes come near a signature opens.
func TestOpenNotRaw(t *testing.T) {
	vdi := make([]byte, 0x44)
	copy(vdi, "<<< Oracle VM VirtualBox Disk Image >>>\n")
	copy(vdi[0x40:], "\x7f\x10\xda\xbe")
	// VDI's signature at its offset, with zeros where the banner goes.
	vdiNoBanner := make([]byte, 0x44)
	copy(vdiNoBanner[0x40:], "\x7f\x10\xda\xbe")
	mbr := []byte{0xfa, 0x31, 0xc0, 0x8e, 0xd0} // cli; xor ax,ax; mov ss,ax
	tests := []struct {
		name       string
		head       []byte
		format     string // "": opens
		compressed bool
	}{
		{"gzip", []byte{0x1f, 0x8b, 0x08, 0x00}, "gzip", true},
		{"xz", []byte("\xfd7zXZ\x00\x00\x04"), "xz", true},
		{"bzip2", []byte("BZh91AY&SY"), "bzip2", true},
		{"zstd", []byte{0x28, 0xb5, 0x2f, 0xfd, 0x04}, "zstd", true},
		{"qcow2", []byte("QFI\xfb\x00\x00\x00\x03"), "qcow2", false},
		{"VMDK sparse extent", []byte("KDMV\x01\x00\x00\x00"), "VMDK", false},
		{"VMDK descriptor", []byte("# Disk DescriptorFile\nversion=1\n"), "VMDK", false},
		{"VHDX", []byte("vhdxfile"), "VHDX", false},
		{"dynamic VHD", []byte("conectix\x00\x00\x00\x02\x00\x01\x00\x00"), "VHD", false},
		{"VDI", vdi, "VDI", false},
		{"raw: an MBR", mbr, "", false},
		{"raw: zeroes", nil, "", false},
		{"raw: gzip's magic but another method", []byte{0x1f, 0x8b, 0x07}, "", false},
		{"raw: BZh without a block size", []byte("BZh0"), "", false},
		{"raw: VDI's signature without its banner", vdiNoBanner, "", false},
	}
	for _, tt := range tests {
		for _, ro := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, read-only %t", tt.name, ro), func(t *testing.T) {
				img := make([]byte, 2048)
				copy(img, tt.head)
				p := filepath.Join(t.TempDir(), "disk.img")
				if err := os.WriteFile(p, img, 0o644); err != nil {
					t.Fatal(err)
				}
				d, err := blk.Open(p, blk.Options{ReadOnly: ro})
				if tt.format == "" {
					if err != nil {
						t.Fatalf("raw image refused: %v", err)
					}
					d.Close()
					return
				}
				if err == nil {
					d.Close()
					t.Fatalf("a %s image opened as raw", tt.format)
				}
				var fe *blk.FormatError
				if !errors.Is(err, blk.ErrNotRaw) || !errors.As(err, &fe) || fe.Format != tt.format || fe.Compressed != tt.compressed || fe.Path != p {
					t.Fatalf("err %v (%#v), want a FormatError for %s, compressed %t, ErrNotRaw", err, fe, tt.format, tt.compressed)
				}
				if msg := err.Error(); !strings.HasPrefix(msg, "disk image "+p+": ") || !strings.Contains(msg, tt.format) {
					t.Errorf("message %q: want the path and the format", msg)
				}
				if got, _ := os.ReadFile(p); !bytes.Equal(got, img) {
					t.Error("the refused image changed")
				}
				// The lock went with the refusal.
				if d, err := blk.Open(p, blk.Options{ReadOnly: true}); !errors.Is(err, blk.ErrNotRaw) {
					if d != nil {
						d.Close()
					}
					t.Errorf("second open: %v, want ErrNotRaw again (not in use)", err)
				}
			})
		}
	}
}
