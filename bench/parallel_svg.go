package bench

import (
	"bytes"
	"fmt"
	"io"
	"math"
)

// Parallel chart geometry, in SVG user units.
const (
	psvgRowH   = 12
	psvgBarH   = 8
	psvgPanelW = 360
	psvgLeft   = 60
	psvgGap    = 80
)

// WriteSVG draws r: on the left each VM's start (a bar from its process
// start to its ready event, failed VMs as a red mark with the reason as a
// tooltip) on a linear time axis; on the right its memory (RSS, and PSS
// over it, without guest RAM). Each VM's shapes are in one
// <g class="vm" data-index="I">.
func (r *ParallelResults) WriteSVG(w io.Writer) error {
	if len(r.VMs) == 0 {
		return fmt.Errorf("svg: no VM to draw")
	}
	maxMS := math.Max(r.AllReadyMS, 1)
	var maxKiB int64 = 1
	for _, v := range r.VMs {
		if v.Memory != nil {
			maxKiB = max(maxKiB, v.Memory.OverheadRSSKiB)
		}
	}
	top := 70
	n := len(r.VMs)
	memX := psvgLeft + psvgPanelW + psvgGap
	width := memX + psvgPanelW + 40
	height := top + n*psvgRowH + 60

	var b bytes.Buffer
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n",
		width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	title := fmt.Sprintf("%d VMs of %s started at once: %d started, all ready after %s, %.1f starts/s per core",
		r.N, r.Config.Kernel, r.Started, fmtMS(r.AllReadyMS), r.StartsPerSecPerCore)
	if r.Started == 0 {
		title = fmt.Sprintf("%d VMs of %s started at once: none started", r.N, r.Config.Kernel)
	}
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", psvgLeft, esc(title))
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-weight="bold">process start to ready (ms since the first start)</text>`+"\n", psvgLeft, top-12)
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-weight="bold">memory without guest RAM (MiB): RSS light, PSS dark</text>`+"\n", memX, top-12)
	xt := func(ms float64) float64 { return psvgLeft + psvgPanelW*ms/maxMS }
	xm := func(kib int64) float64 { return float64(memX) + psvgPanelW*float64(kib)/float64(maxKiB) }
	axis := top + n*psvgRowH + 4
	fmt.Fprintf(&b, `<g class="axis"><line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#455a64"/><text x="%d" y="%d">0</text><text x="%d" y="%d" text-anchor="end">%s</text>`,
		psvgLeft, psvgLeft+psvgPanelW, axis, axis, psvgLeft, axis+14, psvgLeft+psvgPanelW, axis+14, esc(fmtMS(maxMS)))
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#455a64"/><text x="%d" y="%d">0</text><text x="%d" y="%d" text-anchor="end">%.2f MiB</text></g>`+"\n",
		memX, memX+psvgPanelW, axis, axis, memX, axis+14, memX+psvgPanelW, axis+14, kib2mib(maxKiB))
	for _, v := range r.VMs {
		y := top + v.Index*psvgRowH
		fmt.Fprintf(&b, `<g class="vm" data-index="%d">`, v.Index)
		if !v.Started() {
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="#e53935"><title>vm %d: %s</title></rect>`,
				psvgLeft-10, y, psvgBarH, psvgBarH, v.Index, esc(v.Error))
		} else {
			fmt.Fprintf(&b, `<rect class="start" x="%.1f" y="%d" width="%.1f" height="%d" fill="#42a5f5"><title>vm %d: started %.3f ms, ready %.3f ms</title></rect>`,
				xt(v.StartMS), y, math.Max(xt(v.ReadyMS)-xt(v.StartMS), 0.5), psvgBarH, v.Index, v.StartMS, v.ReadyMS)
		}
		if m := v.Memory; m != nil {
			unsettled := ""
			if m.Unsettled {
				unsettled = " (read before it had settled)"
			}
			fmt.Fprintf(&b, `<rect class="rss" x="%d" y="%d" width="%.1f" height="%d" fill="#c5e1a5"><title>vm %d: RSS %d KiB%s</title></rect>`,
				memX, y, xm(m.OverheadRSSKiB)-float64(memX), psvgBarH, v.Index, m.OverheadRSSKiB, unsettled)
			fmt.Fprintf(&b, `<rect class="pss" x="%d" y="%d" width="%.1f" height="%d" fill="#558b2f"><title>vm %d: PSS %d KiB</title></rect>`,
				memX, y, math.Max(xm(m.OverheadPSSKiB)-float64(memX), 0), psvgBarH, v.Index, m.OverheadPSSKiB)
		}
		b.WriteString("</g>\n")
	}
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}
