package lockholder

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestParse(t *testing.T) {
	const locks = `1: FLOCK  ADVISORY  WRITE 19409 fe:00:9987687 0 EOF
1: -> FLOCK  ADVISORY  WRITE 20000 fe:00:9987687 0 EOF
2: POSIX  ADVISORY  WRITE 30000 fe:00:9987687 0 EOF
3: FLOCK  ADVISORY  READ 19410 fe:00:9987687 0 EOF
4: FLOCK  ADVISORY  READ 19410 fe:00:9987687 0 EOF
5: FLOCK  ADVISORY  WRITE 40000 fe:00:99876870 0 EOF
6: FLOCK  ADVISORY  WRITE 50000 fe:01:9987687 0 EOF
7: FLOCK  ADVISORY  WRITE 103:05:42 0 EOF
8: OFDLCK ADVISORY  WRITE -1 fe:00:9987687 0 EOF
garbage
`
	dev := uint64(0xfe<<8 | 0x00)
	got := parse([]byte(locks), dev, 9987687)
	if want := []int{19409, 19410}; !reflect.DeepEqual(got, want) {
		t.Errorf("parse = %v, want %v", got, want)
	}
	// A device number with a major above 255 and a minor above 255.
	big := uint64(0x103)<<8 | 0x05 | uint64(0x1)<<20
	if got := parse([]byte("1: FLOCK  ADVISORY  WRITE 7 103:105:42 0 EOF\n"), big, 42); !reflect.DeepEqual(got, []int{7}) {
		t.Errorf("parse with major 0x103 minor 0x105 = %v, want [7]", got)
	}
}

// TestDescribe takes a real lock in this process, through a second open
// file description, and finds this process holding it.
func TestDescribe(t *testing.T) {
	if _, err := os.Stat(locksFile); err != nil {
		t.Skipf("no %s here: %v", locksFile, err)
	}
	p := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	holder, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	other, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if got := Describe(other); got != "" {
		t.Errorf("before the lock: %q", got)
	}
	if err := syscall.Flock(int(holder.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	got := Describe(other)
	want := "process " + strconv.Itoa(os.Getpid()) + " ("
	if !strings.HasPrefix(got, want) || !strings.Contains(got, filepath.Base(os.Args[0])) {
		t.Errorf("Describe = %q, want %q and this test binary's name", got, want)
	}
}

// TestCommandLine: a holder's command line is shown without the
// credentials of any URL on it, whatever the scheme, before it is
// shortened (which could otherwise cut a URL before its "@").
func TestCommandLine(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"smolvmm\x00run\x00-k\x00netbsd\x00", "smolvmm run -k netbsd"},
		{"smolvmm\x00fetch\x00--mirror\x00http://mirroruser:S3cretT0ken@127.0.0.1:8080/pub/NetBSD\x00", "smolvmm fetch --mirror http://xxxxx@127.0.0.1:8080/pub/Ne..."},
		{"smolvmm\x00fetch\x00--mirror\x00https://T0KEN@mirror.example/pub\x00", "smolvmm fetch --mirror https://xxxxx@mirror.example/pub"},
		{"smolvmm\x00fetch\x00--mirror=ftp://u:p@h\x00x\x00", "smolvmm fetch --mirror=ftp://xxxxx@h x"},
		{"a\x00http://h/p@q\x00", "a http://h/p@q"}, // "@" in the path: no user part
		{"a\x00http://u:p@h/x\x00b\x00s3://k@b\x00", "a http://xxxxx@h/x b s3://xxxxx@b"},
		{"smolvmm\x00fetch\x00--mirror\x00http://mirroruser:AVeryLongSecretTokenThatRunsPastSixtyBytes@127.0.0.1/pub\x00", "smolvmm fetch --mirror http://xxxxx@127.0.0.1/pub"},
		{"smolvmm\x00fetch\x00--mirror\x00http://mirroruser:AVeryLongSecretTokenThatRunsPastSixtyBytes@127.0.0.1/pub/NetBSD/long/path\x00", "smolvmm fetch --mirror http://xxxxx@127.0.0.1/pub/NetBSD/..."},
		{"://@\x00", "://xxxxx@"},
	}
	for _, tt := range tests {
		if got := commandLine([]byte(tt.raw)); got != tt.want {
			t.Errorf("commandLine(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}
