package devices

import "testing"

func TestSystemControlPorts(t *testing.T) {
	type exit struct {
		kind ExitKind
		code uint32
	}
	tests := []struct {
		name string
		dev  func(ExitFunc) interface{ Write(uint64, []byte) }
		off  uint64
		data []byte
		want []exit
	}{
		{"8042 pulse reset", func(f ExitFunc) interface{ Write(uint64, []byte) } { return &KeyboardController{Exit: f} }, 4, []byte{0xFE}, []exit{{ExitReset, 0}}},
		{"8042 other command", func(f ExitFunc) interface{ Write(uint64, []byte) } { return &KeyboardController{Exit: f} }, 4, []byte{0xAD}, nil},
		{"8042 data port", func(f ExitFunc) interface{ Write(uint64, []byte) } { return &KeyboardController{Exit: f} }, 0, []byte{0xFE}, nil},
		{"0xCF9 reset", func(f ExitFunc) interface{ Write(uint64, []byte) } { return &ResetControl{Exit: f} }, 0, []byte{0x06}, []exit{{ExitReset, 0}}},
		{"0xCF9 hard bit only", func(f ExitFunc) interface{ Write(uint64, []byte) } { return &ResetControl{Exit: f} }, 0, []byte{0x02}, nil},
		{"port 0x92 fast reset", func(f ExitFunc) interface{ Write(uint64, []byte) } { return &FastA20{Exit: f} }, 0, []byte{0x03}, []exit{{ExitReset, 0}}},
		{"port 0x92 A20 only", func(f ExitFunc) interface{ Write(uint64, []byte) } { return &FastA20{Exit: f} }, 0, []byte{0x02}, nil},
		{"debug exit byte", func(f ExitFunc) interface{ Write(uint64, []byte) } { return &DebugExit{Exit: f} }, 0, []byte{0x21}, []exit{{ExitDebugPort, 0x21}}},
		{"debug exit word", func(f ExitFunc) interface{ Write(uint64, []byte) } { return &DebugExit{Exit: f} }, 0, []byte{0x34, 0x12}, []exit{{ExitDebugPort, 0x1234}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []exit
			d := tt.dev(func(k ExitKind, c uint32) { got = append(got, exit{k, c}) })
			d.Write(tt.off, tt.data)
			if len(got) != len(tt.want) || (len(got) > 0 && got[0] != tt.want[0]) {
				t.Fatalf("exits %v, want %v", got, tt.want)
			}
		})
	}
	if v := rd(&FastA20{}, 0); v != 0x02 {
		t.Errorf("port 0x92 reads %#x, want A20 on (NetBSD skips it when it reads 0xFF)", v)
	}
}
