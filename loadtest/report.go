package loadtest

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
)

// WriteHTML writes res as one self-contained page (inline SVG, no
// scripts, no external files): the summary table and the charts.
func WriteHTML(w io.Writer, res *Result) error {
	var rows strings.Builder
	res.Summary(&rows)
	page := struct {
		Title   string
		Summary string
		Charts  []template.HTML
	}{Title: title(res), Summary: rows.String()}
	add := func(c chart) { page.Charts = append(page.Charts, c.svg()) }

	var egress, peers, cont, base []pt
	for _, s := range res.Series {
		egress = append(egress, pt{s.T, s.OriginMbps})
		peers = append(peers, pt{s.T, float64(s.Peers)})
		cont = append(cont, pt{s.T, s.Continuity})
	}
	eg := chart{Title: "Origin egress (Mbit/s) over time", X: "s", Y: "Mbit/s", Lines: []line{{"coopcast", "#1f77b4", egress}}}
	if res.Baseline != nil {
		for _, s := range res.Baseline.Series {
			base = append(base, pt{s.T, s.OriginMbps})
		}
		eg.Lines = append(eg.Lines, line{"plain HTTP origin (baseline)", "#d62728", base})
	}
	add(eg)
	add(chart{Title: "Peers over time", X: "s", Y: "peers", Lines: []line{{"peers alive", "#2ca02c", peers}}})
	add(chart{Title: "Continuity per second", X: "s", Y: "share on time", Lines: []line{{"continuity", "#9467bd", cont}}, YMin: 0, YMax: 1, Fixed: true})
	add(cdfChart("Startup (ms), CDF", res.StartupCDF, "#ff7f0e"))
	add(cdfChart("Latency (ms), CDF", res.LatencyCDF, "#17becf"))
	add(cdfChart("Repair time (ms), CDF", res.RepairCDF, "#8c564b"))
	add(depthChart(res.DepthHist))
	return reportTmpl.Execute(w, page)
}

func title(res *Result) string {
	s := res.Scenario
	name := s.Name
	if name == "" {
		name = "custom"
	}
	mode := ""
	if res.Sim != nil {
		mode = " (simulated, " + res.Sim.Net.Name + " model)"
	}
	return fmt.Sprintf("coopcast loadtest%s: %s, %d peers, %.0f s, %d bit/s, %s source", mode, name, s.Peers, s.DurationS, s.Bitrate, s.Source)
}

type pt struct{ X, Y float64 }

type line struct {
	Name, Color string
	Pts         []pt
}

type chart struct {
	Title, X, Y string
	Lines       []line
	YMin, YMax  float64
	Fixed       bool // use YMin..YMax as given
	Bars        bool // draw the first line as bars
}

func cdfChart(title string, q []float64, color string) chart {
	var pts []pt
	for p, v := range q {
		pts = append(pts, pt{v, float64(p) / 100})
	}
	return chart{Title: title, X: "ms", Y: "share of samples", Lines: []line{{title, color, pts}}, YMin: 0, YMax: 1, Fixed: true}
}

func depthChart(hist [][]int) chart {
	// Peers at each depth, summed over the trees.
	var sum []int
	for _, h := range hist {
		for d, n := range h {
			for len(sum) <= d {
				sum = append(sum, 0)
			}
			sum[d] += n
		}
	}
	var pts []pt
	for d, n := range sum {
		if d > 0 {
			pts = append(pts, pt{float64(d), float64(n)})
		}
	}
	return chart{Title: "Depth histogram (peers at each depth, all trees)", X: "depth", Y: "peers", Lines: []line{{"peers", "#7f7f7f", pts}}, Bars: true}
}

const (
	cw, ch             = 560.0, 260.0
	left, right, top   = 56.0, 16.0, 28.0
	bottom             = 40.0
	plotW, plotH       = cw - left - right, ch - top - bottom
	emptyChartSentence = "no data in this run"
)

// svg draws the chart: axes with ticks, one polyline (or bars) a line,
// a legend.
func (c chart) svg() template.HTML {
	var b strings.Builder
	fmt.Fprintf(&b, `<figure><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-label="%s">`, cw, ch, cw, ch, template.HTMLEscapeString(c.Title))
	fmt.Fprintf(&b, `<text x="%.0f" y="18" class="t">%s</text>`, left, template.HTMLEscapeString(c.Title))
	xmin, xmax, ymin, ymax := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	n := 0
	for _, l := range c.Lines {
		for _, p := range l.Pts {
			xmin, xmax = math.Min(xmin, p.X), math.Max(xmax, p.X)
			ymin, ymax = math.Min(ymin, p.Y), math.Max(ymax, p.Y)
			n++
		}
	}
	if n == 0 {
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" class="e">%s</text></svg></figure>`, cw/2-60, ch/2, emptyChartSentence)
		return template.HTML(b.String())
	}
	if c.Fixed {
		ymin, ymax = c.YMin, c.YMax
	} else {
		ymin = math.Min(0, ymin)
		ymax = niceCeil(ymax)
	}
	if c.Bars {
		xmin, xmax = xmin-0.5, xmax+0.5
	}
	if xmax <= xmin {
		xmax = xmin + 1
	}
	if ymax <= ymin {
		ymax = ymin + 1
	}
	sx := func(x float64) float64 { return left + (x-xmin)/(xmax-xmin)*plotW }
	sy := func(y float64) float64 { return top + plotH - (y-ymin)/(ymax-ymin)*plotH }
	// Axes and ticks.
	fmt.Fprintf(&b, `<path d="M%.1f %.1fV%.1fH%.1f" class="a"/>`, left, top, top+plotH, left+plotW)
	for i := 0; i <= 4; i++ {
		y := ymin + (ymax-ymin)*float64(i)/4
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="g"/><text x="%.1f" y="%.1f" class="l" text-anchor="end">%s</text>`,
			left, left+plotW, sy(y), sy(y), left-4, sy(y)+4, tick(y))
		if !c.Bars {
			x := xmin + (xmax-xmin)*float64(i)/4
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="l" text-anchor="middle">%s</text>`, sx(x), top+plotH+16, tick(x))
		}
	}
	if c.Bars {
		// Bars stand on whole numbers (depths): label those, about ten.
		step := math.Max(1, math.Ceil((xmax-xmin)/10))
		for x := math.Ceil(xmin); x <= xmax; x += step {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="l" text-anchor="middle">%s</text>`, sx(x), top+plotH+16, tick(x))
		}
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="l" text-anchor="middle">%s</text>`, left+plotW/2, ch-4, template.HTMLEscapeString(c.X))
	fmt.Fprintf(&b, `<text x="12" y="%.1f" class="l" transform="rotate(-90 12 %.1f)" text-anchor="middle">%s</text>`, top+plotH/2, top+plotH/2, template.HTMLEscapeString(c.Y))
	for i, l := range c.Lines {
		if c.Bars && i == 0 {
			bw := plotW / (xmax - xmin) * 0.8
			for _, p := range l.Pts {
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, sx(p.X)-bw/2, sy(p.Y), bw, sy(ymin)-sy(p.Y), l.Color)
			}
			continue
		}
		var pts []string
		for _, p := range l.Pts {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", sx(p.X), sy(p.Y)))
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`, strings.Join(pts, " "), l.Color)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="10" height="10" fill="%s"/><text x="%.1f" y="%.1f" class="l">%s</text>`,
			left+plotW-200, top+4+float64(i)*14, l.Color, left+plotW-186, top+13+float64(i)*14, template.HTMLEscapeString(l.Name))
	}
	b.WriteString(`</svg></figure>`)
	return template.HTML(b.String())
}

func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func tick(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return strings.TrimSuffix(fmt.Sprintf("%.3g", v/1e6), ".0") + "M"
	case a >= 1e4:
		return strings.TrimSuffix(fmt.Sprintf("%.3g", v/1e3), ".0") + "k"
	case v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) < 10:
		return fmt.Sprintf("%.2g", v)
	case math.Abs(v) < 100:
		return fmt.Sprintf("%.3g", v)
	}
	return fmt.Sprintf("%.0f", v)
}

var reportTmpl = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:18px}pre{background:#f6f6f6;padding:12px;overflow:auto}
.charts{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;border:1px solid #ddd}
.t{font-weight:600;font-size:13px}.l{font-size:11px;fill:#444}.e{font-size:13px;fill:#888}
.a{stroke:#333;fill:none}.g{stroke:#eee}
</style></head><body>
<h1>{{.Title}}</h1>
<pre>{{.Summary}}</pre>
<div class="charts">{{range .Charts}}{{.}}{{end}}</div>
</body></html>
`))
