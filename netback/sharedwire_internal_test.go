package netback

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

// TestReadHubMessageBodyCause: a handshake body that is no JSON of the
// message is a protocol error that keeps the decoder's, which told where
// and what; it was flattened into the text.
func TestReadHubMessageBodyCause(t *testing.T) {
	msg := func(body string) []byte {
		b := make([]byte, hubHeaderSize, hubHeaderSize+len(body))
		copy(b, hubMagic)
		b[4] = hubVersion
		binary.BigEndian.PutUint16(b[6:], uint16(len(body)))
		return append(b, body...)
	}
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	tests := []struct {
		name string
		body string
		as   any
	}{
		{"not JSON", `{"name":`, &syntax},
		{"a field of another type", `{"name":7}`, &typ},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body struct {
				Name string `json:"name"`
			}
			_, _, err := readHubMessage(bytes.NewReader(msg(tt.body)), &body)
			if !errors.Is(err, ErrHubProtocol) || !errors.As(err, tt.as) {
				t.Errorf("err %v, want ErrHubProtocol wrapping the decoder's %T", err, tt.as)
			}
		})
	}
}

// TestReadFramed: a hub's frame stream takes lengths from
// EthernetHeaderSize to MaxFrameSize, both included, and refuses one a
// byte outside either as a protocol error, before reading its bytes.
func TestReadFramed(t *testing.T) {
	framed := func(n uint32, data int) []byte {
		b := binary.BigEndian.AppendUint32(nil, n)
		return append(b, bytes.Repeat([]byte{0x5a}, data)...)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want int    // the frame's length, when read
		err  error  // else the error
		msg  string // and what it says
	}{
		{"shortest", framed(EthernetHeaderSize, EthernetHeaderSize), EthernetHeaderSize, nil, ""},
		{"a byte short of a header", framed(EthernetHeaderSize-1, EthernetHeaderSize-1), 0, ErrHubProtocol, "13-byte frame (limits 14..65553)"},
		{"zero", framed(0, 0), 0, ErrHubProtocol, "0-byte frame"},
		{"longest", framed(MaxFrameSize, MaxFrameSize), MaxFrameSize, nil, ""},
		{"a byte too long", framed(MaxFrameSize+1, MaxFrameSize+1), 0, ErrHubProtocol, "65554-byte frame (limits 14..65553)"},
		{"largest length", framed(0xffffffff, 16), 0, ErrHubProtocol, "4294967295-byte frame"},
		{"cut", framed(100, 99), 0, io.ErrUnexpectedEOF, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frame, err := readFramed(bufio.NewReader(bytes.NewReader(tc.in)), make([]byte, smallFrame))
			if tc.err != nil {
				if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("readFramed = %d bytes, %v; want %v saying %q", len(frame), err, tc.err, tc.msg)
				}
				return
			}
			if err != nil || len(frame) != tc.want || !bytes.Equal(frame, tc.in[4:]) {
				t.Fatalf("readFramed = %d bytes, %v; want the %d bytes sent", len(frame), err, tc.want)
			}
		})
	}
}
