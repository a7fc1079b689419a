package snapshot_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"go/parser"
	"go/token"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/snapshot"
)

// TestHeaderDigestAsDocumented is an independent reader's check of the
// header's SHA-256: it takes the header bytes hashed from the package
// doc's layout (the row for offset 48) and hashes them, then the state,
// as a reader with only the doc would, and compares with what Write put
// there.
func TestHeaderDigestAsDocumented(t *testing.T) {
	ranges := documentedDigestRanges(t)
	for _, tc := range []struct {
		name  string
		meta  snapshot.Meta
		state []byte
		mem   []byte
	}{
		{"no state, zero memory", snapshot.Meta{}, nil, make([]byte, snapshot.PageSize)},
		{"network card and KVM", snapshot.Meta{NIC: snapshot.NIC{Present: true, MAC: [6]byte{2, 0, 0, 0, 0, 1}}, KVM: snapshot.KVMID{9}},
			[]byte("some state"), append(make([]byte, snapshot.PageSize), bytes.Repeat([]byte{7}, snapshot.PageSize)...)},
		{"state over a page", snapshot.Meta{}, bytes.Repeat([]byte("s"), 5000), bytes.Repeat([]byte{1}, 2*snapshot.PageSize)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if _, err := snapshot.WriteMeta(&b, tc.meta, tc.state, tc.mem, nil); err != nil {
				t.Fatal(err)
			}
			file := b.Bytes()
			le := binary.LittleEndian
			stateOff, stateLen := le.Uint64(file[24:]), le.Uint64(file[32:])
			s := sha256.New()
			for _, r := range ranges {
				s.Write(file[r[0] : r[1]+1])
			}
			s.Write(file[stateOff : stateOff+stateLen])
			if got, want := s.Sum(nil), file[48:80]; !bytes.Equal(got, want) {
				t.Errorf("SHA-256 as documented is %x, the header says %x", got, want)
			}
			if _, _, err := snapshot.Read(bytes.NewReader(file), int64(len(file))); err != nil {
				t.Errorf("Read: %v", err)
			}
		})
	}
}

// documentedDigestRanges returns the header's byte ranges (first, last)
// that the package doc's layout says the SHA-256 at offset 48 covers.
func documentedDigestRanges(t *testing.T) [][2]int {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "snapshot.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	var row string
	for _, line := range strings.Split(f.Doc.Text(), "\n") {
		if fields := strings.Fields(line); len(fields) > 2 && fields[0] == "48" && fields[1] == "32" {
			row = line
		}
	}
	m := regexp.MustCompile(`bytes (\d+)-(\d+) and (\d+)-(\d+)`).FindStringSubmatch(row)
	if m == nil {
		t.Fatalf("the layout's row for offset 48 does not say which header bytes its SHA-256 covers: %q", row)
	}
	n := make([]int, 4)
	for i := range n {
		n[i], _ = strconv.Atoi(m[i+1])
	}
	return [][2]int{{n[0], n[1]}, {n[2], n[3]}}
}
