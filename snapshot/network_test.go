package snapshot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var (
	leased16  = netip.MustParseAddr("10.0.2.16")
	longName  = "/run/user/1000/smolvmm/net/lab.sock" // over MaxNetName
	sampleMem = func() []byte {
		mem := make([]byte, 2*PageSize)
		copy(mem, "guest page zero")
		return mem
	}
)

// TestNetworkRoundTrip: each network a writer records reads back as
// recorded, bytes 107-127 as the package doc lays them out; a name longer
// than the header's room reads back as its digest, which HasName matches.
func TestNetworkRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		net      Network
		want     Network
		rec      []byte // bytes 107-127
		hasName  string // a name HasName must take
		notNamed string // and one it must not
	}{
		{"none recorded", Network{}, Network{}, make([]byte, 21), "", "cb"},
		{"own user network", Network{Kind: NetUser, Addr: netip.MustParseAddr("10.0.2.15")}, Network{Kind: NetUser, Addr: netip.MustParseAddr("10.0.2.15")},
			append([]byte{1, 10, 0, 2, 15}, make([]byte, 16)...), "", "cb"},
		{"shared by name", Network{Kind: NetShared, Name: "cb", Addr: leased16}, Network{Kind: NetShared, Name: "cb", Addr: leased16},
			append([]byte{2, 10, 0, 2, 16, 'c', 'b'}, make([]byte, 14)...), "cb", "cbx"},
		{"shared, name of 16 bytes", Network{Kind: NetShared, Name: "0123456789abcdef"}, Network{Kind: NetShared, Name: "0123456789abcdef"},
			append([]byte{2, 0, 0, 0, 0}, "0123456789abcdef"...), "0123456789abcdef", "0123456789abcde"},
		{"shared by a long path", Network{Kind: NetShared, Name: longName, Addr: leased16}, Network{Kind: NetShared, NameDigest: NetNameDigest(longName), Addr: leased16},
			nil, longName, "/run/user/1000/smolvmm/net/lab2.sock"},
		{"tap, address not known", Network{Kind: NetTap, Name: "tap0"}, Network{Kind: NetTap, Name: "tap0"},
			append([]byte{3, 0, 0, 0, 0, 't', 'a', 'p', '0'}, make([]byte, 12)...), "tap0", "tap1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if _, err := WriteMeta(&b, Meta{NIC: sampleNIC, Net: tt.net}, []byte("state"), sampleMem(), nil); err != nil {
				t.Fatal(err)
			}
			raw := b.Bytes()
			if tt.rec != nil && !bytes.Equal(raw[107:128], tt.rec) {
				t.Errorf("header bytes 107-127 = % x; want % x", raw[107:128], tt.rec)
			}
			if tt.rec == nil {
				d := NetNameDigest(longName)
				if raw[107] != 0x82 || !bytes.Equal(raw[112:128], d[:]) {
					t.Errorf("header bytes 107-127 = % x; want 0x82, the address, then the name's digest % x", raw[107:128], d)
				}
			}
			h, _, err := Read(bytes.NewReader(raw), int64(len(raw)))
			if err != nil {
				t.Fatal(err)
			}
			if h.Net != tt.want {
				t.Errorf("Header.Net = %+v; want %+v", h.Net, tt.want)
			}
			if tt.hasName != "" && !h.Net.HasName(tt.hasName) {
				t.Errorf("HasName(%q) = false; want true", tt.hasName)
			}
			if h.Net.HasName(tt.notNamed) {
				t.Errorf("HasName(%q) = true; want false", tt.notNamed)
			}
		})
	}
}

// TestNetworkWriteRefusals: a record no reader would take is refused
// before anything is written.
func TestNetworkWriteRefusals(t *testing.T) {
	tests := []struct {
		name   string
		nic    NIC
		net    Network
		detail string
	}{
		{"no card", NIC{}, Network{Kind: NetUser}, "user network recorded for a machine without a network card"},
		{"name of an own user network", sampleNIC, Network{Kind: NetUser, Name: "cb"}, `a name "cb" for a user-mode network of the machine's own`},
		{"shared without a name", sampleNIC, Network{Kind: NetShared}, "shared network without a name"},
		{"undefined kind", sampleNIC, Network{Kind: 9, Name: "x"}, "network kind 9 is not defined"},
		{"IPv6 address", sampleNIC, Network{Kind: NetUser, Addr: netip.MustParseAddr("fe80::1")}, "network address fe80::1 is not an IPv4 address"},
		{"address without a kind", sampleNIC, Network{Addr: leased16}, "without a network kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			_, err := WriteMeta(&b, Meta{NIC: tt.nic, Net: tt.net}, []byte("state"), sampleMem(), nil)
			if err == nil || !strings.Contains(err.Error(), tt.detail) {
				t.Fatalf("WriteMeta = %v; want an error mentioning %q", err, tt.detail)
			}
			if b.Len() != 0 {
				t.Errorf("wrote %d bytes; want none", b.Len())
			}
			if cerr := tt.net.Check(tt.nic); cerr == nil || cerr.Error() != err.Error() {
				t.Errorf("Check = %v; want WriteMeta's refusal, %v", cerr, err)
			}
		})
	}
}

// TestNetworkReadRefusals: a network record no writer makes is corrupt,
// even with its digest right.
func TestNetworkReadRefusals(t *testing.T) {
	le := binary.LittleEndian
	resign := func(b []byte) []byte {
		d := digest(b[:HeaderSize], b[HeaderSize:HeaderSize+le.Uint64(b[32:])])
		copy(b[digestOff:], d[:])
		return b
	}
	withNet := func(n Network) []byte {
		var b bytes.Buffer
		if _, err := WriteMeta(&b, Meta{NIC: sampleNIC, Net: n}, []byte("state"), sampleMem(), nil); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	tests := []struct {
		name   string
		b      []byte
		detail string
	}{
		{"address without a kind", func() []byte { b := withNet(Network{}); b[108] = 10; return resign(b) }(), "header bytes 108-127 are not zero with no network recorded"},
		{"kind 5", func() []byte { b := withNet(Network{Kind: NetUser}); b[107] = 5; return resign(b) }(), "network kind 5 in header byte 107 is not defined"},
		{"name of an own user network", func() []byte { b := withNet(Network{Kind: NetUser}); b[112] = 'x'; return resign(b) }(), "a name in header bytes 112-127 for a user-mode network"},
		{"empty tap name", func() []byte { b := withNet(Network{Kind: NetTap, Name: "t"}); b[112] = 0; return resign(b) }(), "tap network name in header bytes 112-127 is empty"},
		{"bytes after the name's end", func() []byte { b := withNet(Network{Kind: NetTap, Name: "t"}); b[120] = 'x'; return resign(b) }(), "has bytes after its end"},
		{"zero digest", func() []byte {
			b := withNet(Network{Kind: NetShared, Name: longName})
			clear(b[112:128])
			return resign(b)
		}(), "shared network name digest in header bytes 112-127 is zero"},
		{"no card", func() []byte {
			b := withNet(Network{Kind: NetUser})
			b[flagsOff] = 0
			clear(b[macOff:kvmOff])
			return resign(b)
		}(), "user network in the header of a machine without a network card"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Read(bytes.NewReader(tt.b), int64(len(tt.b)))
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.detail) {
				t.Fatalf("Read = %v; want ErrCorrupt mentioning %q", err, tt.detail)
			}
		})
	}
}

// asVersion8 turns b, a snapshot this package wrote, into the version-8
// file a smolvmm before the network record wrote of the same machine:
// version 8, bytes 107-127 zero, its SHA-256 over those.
func asVersion8(b []byte) []byte {
	binary.LittleEndian.PutUint32(b[8:], 8)
	clear(b[netOff:HeaderSize])
	d := digest(b[:HeaderSize], b[HeaderSize:HeaderSize+binary.LittleEndian.Uint64(b[32:])])
	copy(b[digestOff:], d[:])
	return b
}

// TestVersion8: a writer writes version 10; a version-9 file (version
// 10's header) reads as written, and a version-8 file (no network
// record) as before: its header, state and memory as written, no
// network recorded, by Read, and by Open, OpenHeader then ReadState, and
// VerifyMemory.
func TestVersion8(t *testing.T) {
	for _, net := range []Network{{}, {Kind: NetShared, Name: "cb", Addr: leased16}} {
		t.Run(net.Kind.String(), func(t *testing.T) {
			var b bytes.Buffer
			state := []byte("the state")
			if _, err := WriteMeta(&b, Meta{NIC: sampleNIC, KVM: sampleKVM, Net: net}, state, sampleMem(), nil); err != nil {
				t.Fatal(err)
			}
			v10 := bytes.Clone(b.Bytes())
			if v := binary.LittleEndian.Uint32(v10[8:]); v != 10 {
				t.Fatalf("WriteMeta wrote version %d; want 10", v)
			}
			h10, _, err := Read(bytes.NewReader(v10), int64(len(v10)))
			if err != nil {
				t.Fatal(err)
			}
			v9 := bytes.Clone(v10)
			binary.LittleEndian.PutUint32(v9[8:], 9)
			d := digest(v9[:HeaderSize], v9[HeaderSize:HeaderSize+binary.LittleEndian.Uint64(v9[32:])])
			copy(v9[digestOff:], d[:])
			h9, got9, err := Read(bytes.NewReader(v9), int64(len(v9)))
			want9 := h10
			want9.Version = 9
			copy(want9.Digest[:], d[:])
			if err != nil || h9 != want9 || !bytes.Equal(got9, state) {
				t.Errorf("Read of a version-9 file = %+v, %q, %v; want %+v, %q", h9, got9, err, want9, state)
			}
			v8 := asVersion8(b.Bytes())
			h, got, err := Read(bytes.NewReader(v8), int64(len(v8)))
			if err != nil {
				t.Fatalf("Read of a version-8 file: %v", err)
			}
			want := h9
			want.Version, want.Net = 8, Network{}
			copy(want.Digest[:], v8[digestOff:memDigestOff])
			if h != want {
				t.Errorf("Read's header = %+v\nwant %+v", h, want)
			}
			if !bytes.Equal(got, state) {
				t.Errorf("Read's state = %q; want %q", got, state)
			}
			path := filepath.Join(t.TempDir(), "v8.snap")
			if err := os.WriteFile(path, v8, 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := OpenHeader(path)
			if err != nil {
				t.Fatalf("OpenHeader of a version-8 file: %v", err)
			}
			defer f.Close()
			if f.Header.Version != 8 || f.Header.Net != (Network{}) {
				t.Errorf("OpenHeader's header: version %d, network %+v; want 8 and none", f.Header.Version, f.Header.Net)
			}
			if err := f.ReadState(); err != nil || !bytes.Equal(f.State, state) {
				t.Errorf("ReadState = %v, State %q; want %q", err, f.State, state)
			}
			o, err := Open(path)
			if err != nil {
				t.Fatalf("Open of a version-8 file: %v", err)
			}
			defer o.Close()
			if err := o.VerifyMemory(); err != nil {
				t.Errorf("VerifyMemory of a version-8 file: %v", err)
			}
		})
	}
}
