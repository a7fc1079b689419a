package fetch

import (
	"errors"
	"strings"
	"testing"
)

var hexA = strings.Repeat("a", 128)

func TestParseDigests(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Digests
		wantErr string
	}{
		{"netbsd format", "SHA512 (base.tgz) = " + hexA + "\nSHA512 (rescue.tar.xz) = " + strings.ToUpper(hexA) + "\n",
			Digests{"base.tgz": hexA, "rescue.tar.xz": hexA}, ""},
		{"blank lines and CRLF", "\r\nSHA512 (a.tgz) = " + hexA + "\r\n\n", Digests{"a.tgz": hexA}, ""},
		{"name with parens", "SHA512 (a (1).tgz) = " + hexA, Digests{"a (1).tgz": hexA}, ""},
		{"html page", "  <!DOCTYPE html><html>", nil, "HTML"},
		{"empty", "", nil, "no `SHA512"},
		{"md5 file", "MD5 (base.tgz) = 0123456789abcdef0123456789abcdef", nil, `line 1`},
		{"short digest", "SHA512 (a.tgz) = abcd", nil, "4 hex digits"},
		{"not hex", "SHA512 (a.tgz) = " + strings.Repeat("zz", 64), nil, "not hex"},
		{"path in name", "SHA512 (../x) = " + hexA, nil, "bad file name"},
		{"missing equals", "SHA512 (a.tgz) " + hexA, nil, `missing ") = "`},
		// The last line's digest was taken: a mismatch on every run.
		{"name twice, digests differ", "SHA512 (a.tgz) = " + hexA + "\nSHA512 (b.tgz) = " + hexA + "\nSHA512 (a.tgz) = " + strings.Repeat("b", 128), nil, `lines 1 and 3 list a.tgz with different digests`},
		{"name twice, same digest", "SHA512 (a.tgz) = " + hexA + "\nSHA512 (a.tgz) = " + strings.ToUpper(hexA), Digests{"a.tgz": hexA}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDigests([]byte(tt.in))
			if tt.wantErr != "" {
				if !errors.Is(err, ErrNotDigestFile) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrNotDigestFile containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s: %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

// TestDigestsSets: a set listed as two archives is named once; "[rescue
// rescue]" was printed.
func TestDigestsSets(t *testing.T) {
	d := Digests{"rescue.tgz": "1", "rescue.tar.xz": "2", "base.tgz": "3"}
	if got := strings.Join(d.Sets(), " "); got != "base rescue" {
		t.Errorf("Sets() = %q, want %q", got, "base rescue")
	}
}

func TestSetFile(t *testing.T) {
	d := Digests{"rescue.tgz": "1", "base.tar.xz": "2", "kern-GENERIC.tgz": "3"}
	tests := []struct{ set, file, sum, err string }{
		{"rescue", "rescue.tgz", "1", ""},
		{"base", "base.tar.xz", "2", ""},
		{"base.tar.xz", "base.tar.xz", "2", ""},
		{"comp", "", "", "base, kern-GENERIC, rescue"},
		// The other series' extension: the name the release has.
		{"rescue.tar.xz", "", "", `"rescue.tar.xz": the release's SHA512 lists rescue.tgz, not rescue.tar.xz`},
		{"base.tgz", "", "", `"base.tgz": the release's SHA512 lists base.tar.xz, not base.tgz`},
		{"comp.tgz", "", "", "base, kern-GENERIC, rescue"},
	}
	for _, tt := range tests {
		file, sum, err := d.SetFile(tt.set)
		if tt.err != "" {
			if !errors.Is(err, ErrUnknownSet) || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: err = %v, want ErrUnknownSet listing %q", tt.set, err, tt.err)
			}
			continue
		}
		if err != nil || file != tt.file || sum != tt.sum {
			t.Errorf("%s: %q %q %v, want %q %q", tt.set, file, sum, err, tt.file, tt.sum)
		}
	}
}

func TestParseIndex(t *testing.T) {
	page := `<a href="../">../</a> <a href="NetBSD-9.3/">NetBSD-9.3/</a> <A HREF="NetBSD-10.0/">x</a>
<a href="README">README</a> <a href="/icons/x/">i</a> <a href="?C=M;O=A">sort</a> <a href="https://x/y/">ext</a>
<a href="./NetBSD-9.2/">y</a> <a href="NetBSD-9.3/">dup</a>`
	got := strings.Join(parseIndex(page), " ")
	if want := "NetBSD-10.0 NetBSD-9.2 NetBSD-9.3"; got != want {
		t.Errorf("parseIndex = %q, want %q", got, want)
	}
	abs := `<a href="/pub/NetBSD/NetBSD-9.3/">a</a> <a href="http://m.example/pub/NetBSD/NetBSD-10.1/">b</a>
<a href="/pub/">parent</a> <a href="/pub/NetBSD/NetBSD-9.3/i386/">deeper</a> <a href="http://other.example/pub/NetBSD/x/">elsewhere</a> <a href="NetBSD-8.2/">rel</a>`
	if got := strings.Join(parseIndexAt(abs, "http://m.example/pub/NetBSD/"), " "); got != "NetBSD-10.1 NetBSD-8.2 NetBSD-9.3" {
		t.Errorf("parseIndexAt with absolute links = %q, want the three direct subdirectories", got)
	}
	if got := strings.Join(versionsIn([]string{"NetBSD-10.0", "NetBSD-9.3", "NetBSD-archive", "NetBSD-9.3.1", "NetBSD-9.2", "NetBSD-10.1_RC1", "NetBSD-daily", "misc"}), " "); got != "10.1_RC1 10.0 9.3.1 9.3 9.2" {
		t.Errorf("versionsIn = %q, want releases only, newest first", got)
	}
	if got := strings.Join(archesIn([]string{"amd64", "i386", "source", "shared", "images"}), " "); got != "amd64 i386" {
		t.Errorf("archesIn = %q", got)
	}
}

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		in          string
		start, size int64
		ok          bool
	}{
		{"bytes 100-199/200", 100, 200, true},
		{"bytes 0-0/*", 0, -1, true},
		{"bytes 300-399/200", 0, 0, false},
		{"bytes */200", 0, 0, false},
		{"items 1-2/3", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tt := range tests {
		start, size, ok := parseContentRange(tt.in)
		if ok != tt.ok || (ok && (start != tt.start || size != tt.size)) {
			t.Errorf("%q: %d %d %v, want %d %d %v", tt.in, start, size, ok, tt.start, tt.size, tt.ok)
		}
	}
}

func FuzzParseDigests(f *testing.F) {
	f.Add([]byte("SHA512 (rescue.tgz) = " + hexA + "\n"))
	f.Add([]byte("<html>"))
	f.Add([]byte("SHA512 () = \n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseDigests(data)
		if err != nil {
			return
		}
		for name, sum := range d {
			if name == "" || strings.Contains(name, "/") || len(sum) != 128 {
				t.Fatalf("accepted bad entry %q = %q", name, sum)
			}
		}
	})
}

// TestVersionLess: a release candidate or beta comes before its release
// (10.0_RC1 sorted after 10.0, as newer).
func TestVersionLess(t *testing.T) {
	tests := []struct {
		a, b string
		less bool
	}{
		{"9.3", "10.0", true},
		{"9.3", "9.3.1", true},
		{"10.0_RC1", "10.0", true},
		{"10.0", "10.0_RC1", false},
		{"11.0_BETA", "11.0", true},
		{"11.0_BETA", "11.0_RC1", true},
		{"10.0_RC1", "10.0_RC2", true},
		{"10.0_RC1", "10.0.1", true},
		{"10.0.1", "10.0_RC1", false},
		{"9.3", "10.0_RC1", true},
		{"10.0", "10.0", false},
	}
	for _, tt := range tests {
		if got := versionLess(tt.a, tt.b); got != tt.less {
			t.Errorf("versionLess(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.less)
		}
	}
	got := strings.Join(versionsIn([]string{"NetBSD-10.0_RC1", "NetBSD-11.0", "NetBSD-10.0", "NetBSD-11.0_BETA", "NetBSD-11.0_RC1"}), " ")
	if want := "11.0 11.0_RC1 11.0_BETA 10.0 10.0_RC1"; got != want {
		t.Errorf("versionsIn = %q, want %q", got, want)
	}
}

// parseIndex extracts relative subdirectory links ("9.3/", "i386/") from an
// HTML directory listing of no known URL (parseIndexAt's).
func parseIndex(page string) []string { return parseIndexAt(page, "") }
