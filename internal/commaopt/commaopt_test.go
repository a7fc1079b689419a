package commaopt

import (
	"slices"
	"testing"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", []string{""}},
		{"a.img", []string{"a.img"}},
		{"a.img,ro", []string{"a.img", "ro"}},
		{"a,,b.img,ro", []string{"a,b.img", "ro"}},
		{"a,,,ro", []string{"a,", "ro"}},
		{"a,,,,b", []string{"a,,b"}},
		{"a,", []string{"a", ""}},
		{",,", []string{","}},
		{",", []string{"", ""}},
		{"a,serial=x,,y", []string{"a", "serial=x,y"}},
	}
	for _, tt := range tests {
		if got := Split(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("Split(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCut(t *testing.T) {
	tests := []struct {
		in, first, rest string
		found           bool
	}{
		{"mod", "mod", "", false},
		{"mod,a,b", "mod", "a,b", true},
		{"x,,y.img,a,,b", "x,y.img", "a,,b", true},
		{"x,,y.img", "x,y.img", "", false},
		{"x,", "x", "", true},
		{",args", "", "args", true},
	}
	for _, tt := range tests {
		first, rest, found := Cut(tt.in)
		if first != tt.first || rest != tt.rest || found != tt.found {
			t.Errorf("Cut(%q) = %q, %q, %v, want %q, %q, %v", tt.in, first, rest, found, tt.first, tt.rest, tt.found)
		}
	}
}
