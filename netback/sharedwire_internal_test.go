package netback

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
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
