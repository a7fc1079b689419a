package bench

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
)

// phaseColors gives each phase a colour in the charts.
var phaseColors = map[string]string{
	PhaseRuntime:        "#9e9e9e",
	PhaseMain:           "#8d6e63",
	PhaseVMCreated:      "#5c6bc0",
	PhaseDevicesCreated: "#26a69a",
	PhaseKernelLoaded:   "#ffa726",
	PhaseFirstRun:       "#ab47bc",
	PhaseFirstOutput:    "#42a5f5",
	PhaseReady:          "#66bb6a",
	PhaseStopped:        "#78909c",
	PhaseGuestExit:      "#ef5350",
	PhaseClosed:         "#ffee58",
	PhaseExit:           "#37474f",
}

// Chart geometry, in SVG user units (pixels at 100%).
const (
	svgWidth  = 960
	svgLeft   = 120 // system names
	svgRight  = 40
	svgRowH   = 34
	svgBarH   = 20
	svgTitleH = 40
	svgAxisH  = 34
	svgGap    = 56
)

// WriteSVG draws r: the phase timeline of each system's boot nearest the
// median (the boot whose total time is nearest the median total) and the distribution of its total
// (exit) times, systems side by side on one logarithmic time axis, since
// their times differ by orders of magnitude. Each system's shapes are in
// one <g class="series" data-system="NAME">.
func (r *Results) WriteSVG(w io.Writer) error {
	systems := make([]System, 0, len(r.Systems))
	for _, s := range r.Systems {
		if len(s.Boots) > 0 {
			systems = append(systems, s)
		}
	}
	if len(systems) == 0 {
		return fmt.Errorf("svg: no system has a boot to draw")
	}
	ax := newLogAxis(systems)
	n := len(systems)
	panel1 := svgTitleH + 24
	panel2 := panel1 + n*svgRowH + svgAxisH + svgGap
	legendY := panel2 + n*svgRowH + svgAxisH + 16
	memY := legendY + 3*22 + 10
	height := memY
	if r.restored() {
		height += memoryPanelH(systems)
	}

	var b bytes.Buffer
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		svgWidth, height, svgWidth, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="16" font-weight="bold">%s</text>`+"\n", svgLeft,
		esc(fmt.Sprintf("Boot of %s: %d boots per system, %d MiB", r.Config.Kernel, r.Config.Boots, r.Config.MemoryMiB)))
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-weight="bold">Boot nearest the median, phase by phase (ms since process start, log scale)</text>`+"\n", svgLeft, panel1-8)
	ax.draw(&b, panel1, n*svgRowH)
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-weight="bold">Total time (exit, or ready when stopped there) of every boot: dots; bar: min to max; thick mark: median; thin mark: p95</text>`+"\n", svgLeft, panel2-8)
	ax.draw(&b, panel2, n*svgRowH)

	for i, s := range systems {
		fmt.Fprintf(&b, `<g class="series" data-system="%s">`+"\n", esc(s.Name))
		y1 := panel1 + i*svgRowH + (svgRowH-svgBarH)/2
		y2 := panel2 + i*svgRowH + (svgRowH-svgBarH)/2
		for _, y := range []int{y1, y2} {
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", svgLeft-8, y+svgBarH/2, esc(s.Name))
		}
		drawTimeline(&b, ax, medianBoot(s), y1)
		drawDistribution(&b, ax, s, y2)
		b.WriteString("</g>\n")
	}
	drawLegend(&b, systems, legendY)
	if r.restored() {
		drawMemory(&b, systems, memY)
	}
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

// HasBoots reports whether a system has a boot, which WriteSVG needs.
func (r *Results) HasBoots() bool {
	for _, s := range r.Systems {
		if len(s.Boots) > 0 {
			return true
		}
	}
	return false
}

// medianBoot returns a boot whose end is nearest the median of the boots'
// ends, as drawDistribution marks it: the middle one, or, with an even
// number of boots, whose median is the mean of the two middle ends (which
// no boot may have), the earlier of those two, both as near. The chart
// calls it the boot nearest the median, not the median boot, whose end
// would be the median's.
func medianBoot(s System) Boot {
	boots := append([]Boot(nil), s.Boots...)
	sort.SliceStable(boots, func(i, j int) bool { return bootEnd(boots[i]) < bootEnd(boots[j]) })
	return boots[(len(boots)-1)/2]
}

// bootEnd is when a boot ended: its exit, or, for a boot the bench stopped,
// its ready event (what follows times the stop).
func bootEnd(b Boot) float64 {
	if b.Stopped() {
		return b.Phases[PhaseReady]
	}
	return b.Phases[PhaseExit]
}

type mark struct {
	phase string
	ms    float64
}

func drawTimeline(b *bytes.Buffer, ax logAxis, boot Boot, y int) {
	var marks []mark
	for _, p := range PhaseOrder {
		if t, ok := boot.Phases[p]; ok && t <= bootEnd(boot) {
			marks = append(marks, mark{p, t})
		}
	}
	sort.SliceStable(marks, func(i, j int) bool { return marks[i].ms < marks[j].ms })
	x0 := float64(svgLeft)
	for _, m := range marks {
		x1 := ax.x(m.ms)
		fmt.Fprintf(b, `<rect class="phase" data-phase="%s" x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>%s: %.3f ms</title></rect>`+"\n",
			m.phase, x0, y, math.Max(x1-x0, 0.5), svgBarH, phaseColors[m.phase], m.phase, m.ms)
		x0 = x1
	}
	if len(marks) > 0 {
		last := marks[len(marks)-1]
		fmt.Fprintf(b, `<text x="%.1f" y="%d" dominant-baseline="middle" font-size="11">%s</text>`+"\n",
			x0+4, y+svgBarH/2, esc(fmtMS(last.ms)))
	}
}

func drawDistribution(b *bytes.Buffer, ax logAxis, s System, y int) {
	if len(s.Boots) == 0 {
		return
	}
	ends := make([]float64, len(s.Boots))
	for i, boot := range s.Boots {
		ends[i] = bootEnd(boot)
	}
	sum := Summarize(ends)
	mid := y + svgBarH/2
	fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#90a4ae" stroke-width="6"/>`+"\n", ax.x(sum.Min), ax.x(sum.Max)+0.5, mid, mid)
	for i := range s.Boots {
		// Spread the dots vertically so that equal times stay visible.
		dy := float64(i%5-2) * 3
		fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s" fill-opacity="0.7"><title>boot %d: %.3f ms</title></circle>`+"\n",
			ax.x(ends[i]), float64(mid)+dy, phaseColors[PhaseExit], i+1, ends[i])
	}
	fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#d81b60" stroke-width="3"><title>median %.3f ms</title></line>`+"\n",
		ax.x(sum.Median), ax.x(sum.Median), y-2, y+svgBarH+2, sum.Median)
	fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#d81b60" stroke-width="1"><title>p95 %.3f ms</title></line>`+"\n",
		ax.x(sum.P95), ax.x(sum.P95), y, y+svgBarH, sum.P95)
	fmt.Fprintf(b, `<text x="%.1f" y="%d" dominant-baseline="middle" font-size="11">median %s, p95 %s</text>`+"\n",
		ax.x(sum.Max)+8, mid, esc(fmtMS(sum.Median)), esc(fmtMS(sum.P95)))
}

func drawLegend(b *bytes.Buffer, systems []System, y int) {
	seen := map[string]bool{}
	for _, s := range systems {
		for _, p := range s.Phases {
			seen[p.Phase] = true
		}
	}
	x, row := svgLeft, 0
	fmt.Fprintf(b, `<g class="legend">`+"\n")
	for _, p := range PhaseOrder {
		if !seen[p] {
			continue
		}
		if x > svgWidth-svgRight-150 {
			x, row = svgLeft, row+1
		}
		yy := y + row*22
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="14" height="14" fill="%s"/><text x="%d" y="%d">up to %s</text>`+"\n",
			x, yy, phaseColors[p], x+20, yy+11, p)
		x += 160
	}
	b.WriteString("</g>\n")
}

// memoryPanelH is the height of drawMemory's panel.
func memoryPanelH(systems []System) int {
	n := 0
	for _, s := range systems {
		if s.Memory != nil {
			n++
		}
	}
	return 24 + n*20 + 10
}

// drawMemory writes each system's memory as one line of text, for a
// restore beside a boot: RSS, the guest pages resident (a restore's:
// mapped, see Memory.GuestRSSKiB) and written, and the VMM's own.
func drawMemory(b *bytes.Buffer, systems []System, y int) {
	fmt.Fprintf(b, `<g class="memory">`+"\n")
	fmt.Fprintf(b, `<text x="%d" y="%d" font-weight="bold">Memory (MiB, at %s): RSS; guest RAM mapped (fault-around included), of it written; VMM overhead</text>`+"\n",
		svgLeft, y+12, memorySampledAt(systems))
	row := 0
	for _, s := range systems {
		m := s.Memory
		if m == nil {
			continue
		}
		row++
		yy := y + 12 + row*20
		fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="end">%s</text>`, svgLeft-8, yy, esc(s.Name))
		fmt.Fprintf(b, `<text x="%d" y="%d" data-system="%s">RSS %.2f; guest mapped %.2f, written %.2f; overhead %.2f</text>`+"\n",
			svgLeft, yy, esc(s.Name), kib2mib(m.RSSKiB), kib2mib(m.GuestRSSKiB), kib2mib(m.GuestWrittenKiB), kib2mib(m.OverheadKiB))
	}
	b.WriteString("</g>\n")
}

// memorySampledAt names the event the memory samples were taken at.
func memorySampledAt(systems []System) string {
	at := ""
	for _, s := range systems {
		if m := s.Memory; m != nil {
			if at != "" && at != m.SampledAt {
				return "ready or first output"
			}
			at = m.SampledAt
		}
	}
	return at
}

// logAxis maps milliseconds to x on a base-10 logarithmic scale.
type logAxis struct{ lo, hi float64 }

func newLogAxis(systems []System) logAxis {
	lo, hi := math.Inf(1), 0.0
	for _, s := range systems {
		for _, boot := range s.Boots {
			for _, t := range boot.Phases {
				if t > 0 && t <= bootEnd(boot) {
					lo, hi = math.Min(lo, t), math.Max(hi, t)
				}
			}
		}
	}
	if hi == 0 {
		lo, hi = 1, 10
	}
	a := logAxis{lo: math.Pow(10, math.Floor(math.Log10(lo))), hi: math.Pow(10, math.Ceil(math.Log10(hi)))}
	if a.hi <= a.lo {
		a.hi = a.lo * 10
	}
	return a
}

// x places ms; times at or below the axis's start go to its left edge.
func (a logAxis) x(ms float64) float64 {
	w := float64(svgWidth - svgLeft - svgRight - 120)
	if ms <= a.lo {
		return svgLeft
	}
	return svgLeft + w*math.Log10(ms/a.lo)/math.Log10(a.hi/a.lo)
}

// draw puts decade grid lines and labels under a panel of height h at y.
func (a logAxis) draw(b *bytes.Buffer, y, h int) {
	b.WriteString(`<g class="axis">` + "\n")
	for d := a.lo; d <= a.hi*1.0001; d *= 10 {
		x := a.x(d)
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#cfd8dc"/>`+"\n", x, x, y, y+h)
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle" font-size="11" fill="#455a64">%s</text>`+"\n", x, y+h+14, esc(fmtMS(d)))
		for k := 2.0; k < 10 && d*k < a.hi; k++ {
			xk := a.x(d * k)
			fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#eceff1"/>`+"\n", xk, xk, y, y+h)
		}
	}
	fmt.Fprintf(b, `<line x1="%d" x2="%.1f" y1="%d" y2="%d" stroke="#455a64"/>`+"\n", svgLeft, a.x(a.hi), y+h, y+h)
	b.WriteString("</g>\n")
}

// fmtMS prints a time to 3 significant digits with a unit that keeps it
// short. The unit is picked after the rounding: 999.7 ms is "1 s", not
// "1e+03 ms". Seconds are the largest unit: 1000 s and more print whole,
// without %g's exponent.
func fmtMS(ms float64) string {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(ms, 'g', 3, 64), 64)
	switch {
	case r/1000 >= 999.5:
		return fmt.Sprintf("%.0f s", r/1000)
	case r >= 1000:
		return fmt.Sprintf("%.3g s", r/1000)
	case r >= 1:
		return fmt.Sprintf("%.3g ms", r)
	}
	return fmt.Sprintf("%.3g µs", r*1000)
}

func esc(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
