package bench

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

func TestWriteSVG(t *testing.T) {
	res := fakeResults(t)
	// A system with no boots (QEMU failed) is left out of the chart.
	res.Systems = append(res.Systems, System{Name: "broken", Error: "no console output", Boots: []Boot{}})
	var buf bytes.Buffer
	if err := res.WriteSVG(&buf); err != nil {
		t.Fatal(err)
	}
	series := map[string]int{} // system -> phase rectangles
	dots := map[string]int{}
	dec := xml.NewDecoder(&buf)
	var current string
	depth, seriesDepth, root := 0, -1, ""
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not XML: %v", err)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			depth++
			if root == "" {
				root = e.Name.Local + " " + e.Name.Space
			}
			attr := func(name string) string {
				for _, a := range e.Attr {
					if a.Name.Local == name {
						return a.Value
					}
				}
				return ""
			}
			switch {
			case e.Name.Local == "g" && attr("class") == "series":
				current, seriesDepth = attr("data-system"), depth
				if _, dup := series[current]; dup {
					t.Errorf("two series for %s", current)
				}
				series[current] = 0
			case current != "" && e.Name.Local == "rect" && attr("class") == "phase":
				series[current]++
			case current != "" && e.Name.Local == "circle":
				dots[current]++
			}
		case xml.EndElement:
			if depth == seriesDepth {
				current, seriesDepth = "", -1
			}
			depth--
		}
	}
	if root != "svg http://www.w3.org/2000/svg" {
		t.Errorf("root element %q, want svg in the SVG namespace", root)
	}
	want := map[string]int{"smolvmm": 7, "qemu-fake": 3} // phases of the median boot
	if len(series) != len(want) {
		t.Fatalf("series %v, want one per system with boots: %v", series, want)
	}
	for name, n := range want {
		if series[name] != n {
			t.Errorf("%s: %d phase rectangles, want %d", name, series[name], n)
		}
		if dots[name] != 3 {
			t.Errorf("%s: %d dots, want one per boot (3)", name, dots[name])
		}
	}
}

func TestWriteSVGNothing(t *testing.T) {
	res := &Results{Systems: []System{{Name: "smolvmm", Error: "x"}}}
	err := res.WriteSVG(io.Discard)
	if err == nil || !strings.Contains(err.Error(), "no system has a boot") {
		t.Errorf("error %v", err)
	}
}

// A boot stopped at its ready event ends there in the chart: the stop that
// follows is not drawn as boot time.
func TestWriteSVGStoppedBoot(t *testing.T) {
	s := System{Name: "smolvmm", Boots: []Boot{{Phases: map[string]float64{PhaseFirstOutput: 2, PhaseReady: 5, PhaseStopped: 1005, PhaseClosed: 1009, PhaseExit: 1010}, Status: 130}}}
	s.summarize()
	r := &Results{Config: Config{Kernel: "k", Boots: 1, MemoryMiB: 128}, Systems: []System{s}}
	var buf bytes.Buffer
	if err := r.WriteSVG(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "boot 1: 5.000 ms") || strings.Contains(out, `data-phase="exit"`) || strings.Contains(out, "1.01 s") {
		t.Errorf("the stopped boot does not end at ready in the chart:\n%s", out)
	}
}

func TestFmtMSUnitBoundaries(t *testing.T) {
	for _, tt := range []struct {
		ms   float64
		want string
	}{
		{0.0001234, "0.123 µs"},
		{0.0009994, "0.999 µs"},
		{0.0009996, "1 µs"},
		{0.9994, "999 µs"},
		{0.9997, "1 ms"},
		{1, "1 ms"},
		{1.0004, "1 ms"},
		{74.44, "74.4 ms"},
		{999.4, "999 ms"},
		{999.7, "1 s"},
		{1000, "1 s"},
		{1234, "1.23 s"},
		// No larger unit: seconds stay, and print without an exponent.
		{999400, "999 s"},
		{999600, "1000 s"},
		{999999, "1000 s"},
		{1234567, "1230 s"},
		{2.5e6, "2500 s"},
		{1e9, "1000000 s"},
	} {
		if got := fmtMS(tt.ms); got != tt.want {
			t.Errorf("fmtMS(%v) = %q, want %q", tt.ms, got, tt.want)
		}
	}
}

// TestMedianBootNearestSummaryMedian: the chart's timeline is of the boot
// nearest the median its distribution row shows, and says so (it was
// titled "Median boot" while, with an even number of boots, it ended
// short of that median).
func TestMedianBootNearestSummaryMedian(t *testing.T) {
	boot := func(exit float64) Boot {
		return Boot{Phases: map[string]float64{PhaseFirstOutput: 1, PhaseExit: exit}}
	}
	for _, tt := range []struct {
		name string
		ends []float64
		want float64
	}{
		{"odd", []float64{90, 70, 80}, 80},
		// Median 88.4, the mean of 74.4 and 102.4, equally near: the
		// earlier.
		{"even", []float64{140, 102.4, 60, 74.4}, 74.4},
		{"one", []float64{5}, 5},
	} {
		s := System{Name: "s"}
		for _, e := range tt.ends {
			s.Boots = append(s.Boots, boot(e))
		}
		if got := medianBoot(s).Phases[PhaseExit]; got != tt.want {
			t.Errorf("%s: boot nearest the median ends at %v, want %v", tt.name, got, tt.want)
		}
	}
	var buf bytes.Buffer
	if err := fakeResults(t).WriteSVG(&buf); err != nil {
		t.Fatal(err)
	}
	if svg := buf.String(); !strings.Contains(svg, ">Boot nearest the median, phase by phase") || strings.Contains(svg, "Median boot") {
		t.Errorf("the timeline panel is not titled as the boot nearest the median:\n%s", svg)
	}
}
