package main

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// The HTML report is one self-contained file: the numbers, the targets and
// four charts drawn as inline SVG (no script, no external asset).

type xy struct{ X, Y float64 }

type lineSeries struct {
	Name  string
	Color string
	Pts   []xy
}

const (
	chartW, chartH             = 600.0, 260.0
	padL, padR, padT, padB     = 64.0, 16.0, 28.0, 40.0
	plotW                      = chartW - padL - padR
	plotH                      = chartH - padT - padB
	colorBlue, colorOrange     = "#2563eb", "#ea580c"
	colorGreen, colorGray      = "#16a34a", "#6b7280"
	svgOpen                    = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 600 260" width="600" height="260" font-family="sans-serif" font-size="11">`
	svgTitleFmt                = `<text x="%g" y="16" font-size="13" font-weight="bold">%s</text>`
	svgAxisLabelFmt            = `<text x="%g" y="%g" text-anchor="middle" fill="#374151">%s</text>`
	svgYAxisLabelFmt           = `<text x="14" y="%g" text-anchor="middle" fill="#374151" transform="rotate(-90 14 %g)">%s</text>`
	maxPointsPerSeriesInChart  = 600
	histogramBarGap            = 2.0
	niceTicks                  = 5
	legendX, legendY, legendDY = chartW - padR - 170, padT + 6, 14.0
)

// niceStep returns a round step so that [0, hi] gets about n ticks.
func niceStep(hi float64, n int) float64 {
	if hi <= 0 {
		return 1
	}
	raw := hi / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			return m * mag
		}
	}
	return 10 * mag
}

func fmtNum(v float64) string {
	switch {
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.FormatInt(int64(v), 10)
	case math.Abs(v) >= 10:
		return strconv.FormatFloat(v, 'f', 0, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

func esc(s string) string { return template.HTMLEscapeString(s) }

// axes draws the frame, grid and tick labels for [0,xmax]×[0,ymax].
func axes(b *strings.Builder, title, xLabel, yLabel string, xmax, ymax float64) {
	fmt.Fprintf(b, svgTitleFmt, padL, esc(title))
	fmt.Fprintf(b, `<rect x="%g" y="%g" width="%g" height="%g" fill="none" stroke="#d1d5db"/>`, padL, padT, plotW, plotH)
	ys := niceStep(ymax, niceTicks)
	for v := 0.0; v <= ymax*1.0001; v += ys {
		y := padT + plotH - v/ymax*plotH
		fmt.Fprintf(b, `<line x1="%g" x2="%g" y1="%.1f" y2="%.1f" stroke="#e5e7eb"/>`, padL, padL+plotW, y, y)
		fmt.Fprintf(b, `<text x="%g" y="%.1f" text-anchor="end" fill="#4b5563">%s</text>`, padL-4, y+4, fmtNum(v))
	}
	xs := niceStep(xmax, 8)
	for v := 0.0; v <= xmax*1.0001; v += xs {
		x := padL + v/xmax*plotW
		fmt.Fprintf(b, `<text x="%.1f" y="%g" text-anchor="middle" fill="#4b5563">%s</text>`, x, padT+plotH+14, fmtNum(v))
	}
	fmt.Fprintf(b, svgAxisLabelFmt, padL+plotW/2, chartH-6, esc(xLabel))
	fmt.Fprintf(b, svgYAxisLabelFmt, padT+plotH/2, padT+plotH/2, esc(yLabel))
}

// lineChart draws series over a shared linear x axis.
func lineChart(title, xLabel, yLabel string, series []lineSeries) template.HTML {
	var b strings.Builder
	b.WriteString(svgOpen)
	xmax, ymax := 0.0, 0.0
	for _, s := range series {
		for _, p := range s.Pts {
			xmax, ymax = max(xmax, p.X), max(ymax, p.Y)
		}
	}
	if xmax <= 0 {
		xmax = 1
	}
	if ymax <= 0 {
		ymax = 1
	}
	ymax *= 1.05
	axes(&b, title, xLabel, yLabel, xmax, ymax)
	for i, s := range series {
		pts := thin(s.Pts, maxPointsPerSeriesInChart)
		if len(pts) > 0 {
			b.WriteString(`<polyline fill="none" stroke-width="1.8" stroke="` + s.Color + `" points="`)
			for _, p := range pts {
				fmt.Fprintf(&b, "%.1f,%.1f ", padL+p.X/xmax*plotW, padT+plotH-p.Y/ymax*plotH)
			}
			b.WriteString(`"/>`)
		}
		y := legendY + float64(i)*legendDY
		fmt.Fprintf(&b, `<rect x="%g" y="%g" width="10" height="3" fill="%s"/><text x="%g" y="%g">%s</text>`,
			legendX, y, s.Color, legendX+14, y+4, esc(s.Name))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // built from numbers and escaped text
}

// thin keeps at most n points (evenly by index, always the last).
func thin(pts []xy, n int) []xy {
	if len(pts) <= n {
		return pts
	}
	out := make([]xy, 0, n+1)
	step := float64(len(pts)) / float64(n)
	for i := 0.0; int(i) < len(pts); i += step {
		out = append(out, pts[int(i)])
	}
	if out[len(out)-1] != pts[len(pts)-1] {
		out = append(out, pts[len(pts)-1])
	}
	return out
}

// histogramChart draws buckets as bars of equal width labelled by edges.
func histogramChart(title, xLabel string, bs []Bucket) template.HTML {
	var b strings.Builder
	b.WriteString(svgOpen)
	ymax := 1.0
	for _, x := range bs {
		ymax = max(ymax, float64(x.Count))
	}
	ymax *= 1.05
	fmt.Fprintf(&b, svgTitleFmt, padL, esc(title))
	fmt.Fprintf(&b, `<rect x="%g" y="%g" width="%g" height="%g" fill="none" stroke="#d1d5db"/>`, padL, padT, plotW, plotH)
	ys := niceStep(ymax, niceTicks)
	for v := 0.0; v <= ymax; v += ys {
		y := padT + plotH - v/ymax*plotH
		fmt.Fprintf(&b, `<line x1="%g" x2="%g" y1="%.1f" y2="%.1f" stroke="#e5e7eb"/>`, padL, padL+plotW, y, y)
		fmt.Fprintf(&b, `<text x="%g" y="%.1f" text-anchor="end" fill="#4b5563">%s</text>`, padL-4, y+4, fmtNum(v))
	}
	if n := len(bs); n > 0 {
		w := plotW / float64(n)
		for i, x := range bs {
			h := float64(x.Count) / ymax * plotH
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s–%s ms: %d</title></rect>`,
				padL+float64(i)*w+histogramBarGap/2, padT+plotH-h, max(w-histogramBarGap, 1), h, colorBlue,
				fmtNum(x.Lo), fmtNum(x.Hi), x.Count)
			fmt.Fprintf(&b, `<text x="%.1f" y="%g" text-anchor="middle" fill="#4b5563">%s</text>`, padL+float64(i)*w, padT+plotH+14, fmtNum(x.Lo))
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%g" text-anchor="middle" fill="#4b5563">%s</text>`, padL+plotW, padT+plotH+14, fmtNum(bs[n-1].Hi))
	}
	fmt.Fprintf(&b, svgAxisLabelFmt, padL+plotW/2, chartH-6, esc(xLabel))
	fmt.Fprintf(&b, svgYAxisLabelFmt, padT+plotH/2, padT+plotH/2, "requests")
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // built from numbers and escaped text
}

type htmlData struct {
	R         Report
	JSON      string
	Charts    []template.HTML
	Rows      [][2]string
	Rejected  [][2]string
	RSS       [][2]string
	CPU       [][2]string
	Refused   [][2]string
	AllTarget bool
	Pre       [][2]string // -prequeue: the pre-queue section
	From      string      // what the series and CPU seconds count from
}

var reportTmpl = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>EnrollQ loadgen report</title>
<style>
body{font-family:system-ui,sans-serif;margin:24px;color:#111827;max-width:1340px}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px}
table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #e5e7eb;padding:3px 8px;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#15803d;font-weight:bold} .bad{color:#b91c1c;font-weight:bold}
.grid{display:flex;flex-wrap:wrap;gap:16px} .card{border:1px solid #e5e7eb;border-radius:6px;padding:8px}
.cols{display:flex;gap:32px;flex-wrap:wrap;align-items:flex-start}
details pre{font-size:11px;max-height:400px;overflow:auto;background:#f9fafb;padding:8px}
</style></head><body>
<h1>EnrollQ load run: {{.R.Run.Students}} students</h1>
<div>{{.R.Run.StartedAt.Format "2006-01-02 15:04:05 MST"}} · {{.R.Run.BaseURL}} · ramp {{.R.Run.Ramp}} ({{.R.Run.Shape}}) · concurrency {{.R.Run.Concurrency}} · cart {{.R.Run.Cart}} · queue-ws: {{.R.Run.WSVia}} · duration {{printf "%.1f" .R.Duration}} s
{{if .R.Run.WSLimited}}<div>queue-ws: {{.R.Run.WSLimited}}</div>{{end}}
{{if .R.Run.WSHolders}}<div>queue-ws connections held by {{.R.Run.WSHolders}} ws-holder processes (loadgen-ws)</div>{{end}}
{{if .R.Run.HoldS}}<div>before the window opened, {{.R.Run.HoldSessions}} sessions were held idle for {{.R.Run.HoldS}} s; CPU seconds meanwhile: {{range $k, $v := .R.Run.HoldCPUSeconds}}{{$k}} {{$v}} · {{end}}</div>{{end}}
{{if .R.Run.StoppedEarly}}<div class="bad">stopped early: {{.R.Run.StoppedEarly}}</div>{{end}}</div>
<h2>Laws: {{if .R.LawsOK}}<span class="ok">all held</span>{{else}}<span class="bad">BROKEN</span>{{end}}</h2>
{{if .R.Prequeue}}<h2>Pre-queue: admission is the draw at the opening</h2>
<p style="max-width:900px">In this mode {{.R.Prequeue.Note}}</p>
<table>{{range .Pre}}<tr><td>{{index . 0}}</td><td class="n">{{index . 1}}</td></tr>{{end}}</table>{{end}}
<h2>Targets</h2>
<table><tr><th>target</th><th>goal</th><th>measured</th><th></th></tr>
{{range .R.Targets}}<tr><td>{{.Name}}</td><td>{{.Goal}}</td><td class="n">{{.Value}} {{.Unit}}</td><td>{{if .Met}}<span class="ok">met</span>{{else}}<span class="bad">not met</span>{{end}}</td></tr>{{end}}
</table>
<div class="cols">
<div><h2>Numbers</h2><table>{{range .Rows}}<tr><td>{{index . 0}}</td><td class="n">{{index . 1}}</td></tr>{{end}}</table></div>
<div><h2>Refused at admission</h2><table>{{range .Refused}}<tr><td>{{index . 0}}</td><td class="n">{{index . 1}}</td></tr>{{end}}</table>
<h2>Rejected by reason</h2><table>{{range .Rejected}}<tr><td>{{index . 0}}</td><td class="n">{{index . 1}}</td></tr>{{end}}</table>
<h2>Peak RSS (MB)</h2><table>{{range .RSS}}<tr><td>{{index . 0}}</td><td class="n">{{index . 1}}</td></tr>{{end}}</table>
<h2>CPU seconds (from the {{.From}})</h2><table>{{range .CPU}}<tr><td>{{index . 0}}</td><td class="n">{{index . 1}}</td></tr>{{end}}</table></div>
</div>
<h2>Charts</h2>
<div class="grid">{{range .Charts}}<div class="card">{{.}}</div>{{end}}</div>
<h2>Raw report</h2>
<details><summary>report.json</summary><pre>{{.JSON}}</pre></details>
</body></html>
`))

// writeHTML renders the report.
func writeHTML(w io.Writer, rep Report, rawJSON []byte) error {
	d := htmlData{R: rep, JSON: string(rawJSON), From: "window opening"}
	num := func(k string, v any) { d.Rows = append(d.Rows, [2]string{k, fmt.Sprint(v)}) }
	if p := rep.Prequeue; p != nil {
		d.From = "pre-queue opening"
		pre := func(k string, v any) { d.Pre = append(d.Pre, [2]string{k, fmt.Sprint(v)}) }
		pre("entries sent (spread "+p.Arrivals+" over the pre-queue, s)", fmt.Sprintf("%d (%g)", p.EntriesSent, p.DurationS))
		pre("answered 202 prequeued", p.Prequeued)
		pre("other answers, by code", fmtCounts(p.ErrorsByCode))
		pre("pre-queued students / entries (server)", fmt.Sprintf("%d / %d", p.Students, p.ServerEntries))
		pre("entries in the drawn order (cursor), state, seed", fmt.Sprintf("%d (%d), %s, %d", p.TotalDrawn, p.Cursor, p.State, p.Seed))
		pre("admitted_s: from sending the opening call to the draw's end at the server", fmt.Sprintf("%g s", p.AdmittedS))
		pre("draw_s: POST /admin/window open=true until its answer (the draw + the opening + the way back)", fmt.Sprintf("%g s", p.DrawS))
		pre("draw on the server (done − started), rate", fmt.Sprintf("%g s, %g entries/s", p.ServerDrawS, p.DrawRatePerS))
		pre("window opened at (s after the pre-queue), attempts", fmt.Sprintf("%g, %d", p.OpenedAtS, p.OpenAttempts))
		pre("admitted by the draw (drawn, with a request id)", p.Admitted)
		pre("refused by the draw, by code", fmtCounts(p.RefusedByCode))
		pre("learned_s: the opening call → every student knows its outcomes (after the window opened)", fmt.Sprintf("%g s (%g s), %d students",
			p.LearnedS, p.LearnedAfterWindowS, p.Learners))
		pre("time to know per student p50 / p99 (ms from the opening call)", fmt.Sprintf("%g / %g", p.TimeToKnowMS.P50, p.TimeToKnowMS.P99))
		pre("learned by drawn frames alone (queue-ws, no HTTP read) / with sessions", fmt.Sprintf("%d / %d", p.LearnedViaWS, p.WithSession))
		pre("learned with GET /me/requests: no session / entries untold at the opened frame / no opened frame",
			fmt.Sprintf("%d: %d / %d / %d (spread %d ms, p50/p99 %g/%g ms)", p.LearnedViaGET, p.ReadsNoSession, p.ReadsMissing,
				p.ReadsFallback, p.ReadSpreadMS, p.LearnLatencyMS.P50, p.LearnLatencyMS.P99))
		pre("outcomes told by drawn frames / read by GET", fmt.Sprintf("%d / %d", p.EntriesByFrame, p.EntriesByGET))
		pre("frames received: drawn / opened / stray drawn", fmt.Sprintf("%d / %d / %d", p.DrawnFrames, p.OpenedFrames, p.StrayFrames))
		if len(p.LearnErrors) > 0 {
			pre("students who could not read their outcome, by code", fmtCounts(p.LearnErrors))
		}
		pre("undrawn / missing / unlearned entries, frame/GET mismatches (all 0 in a clean run)",
			fmt.Sprintf("%d / %d / %d, %d", p.Undrawn, p.Missing, p.Unlearned, p.FrameGETMismatches))
		pre("CPU seconds while the entries were sent", fmtCPU(p.CPUEntries))
		pre("CPU seconds during the opening call (the draw)", fmtCPU(p.CPUDraw))
	}
	num("requested", rep.Requested)
	num("answered", rep.Answered)
	num("admitted", rep.Admitted)
	if rep.Prequeue != nil {
		num("sold out early (refused by the draw)", rep.SoldOutEarly)
	} else {
		num("sold out early (409 at admission)", rep.SoldOutEarly)
	}
	num("enrolled", rep.Enrolled)
	num("cancelled", rep.Cancelled)
	num("dropped afterwards", rep.Dropped)
	num("lost", rep.Lost)
	num("duplicated", rep.Duplicated)
	num("oversold sections", rep.OversoldSections)
	num("FIFO violations", rep.FIFOViolations)
	num("false sold-out (law 7)", rep.FalseSoldOut)
	num("position increases", rep.PositionIncreases)
	num("result mismatches", rep.ResultMismatches)
	num("unresolved", rep.Unresolved)
	num("answers lost: transport errors / 502, 503, 504 / retries / replayed", fmt.Sprintf("%d / %d / %d / %d",
		rep.Actions.Transport, rep.Actions.Unavailable, rep.Actions.TransportRtry, rep.Actions.Replayed))
	num("outcome unknown after every retry / found in MariaDB (recovered) / admitted without a 202 seen",
		fmt.Sprintf("%d / %d / %d", rep.UnknownOutcome, rep.Recovered, rep.Unacknowledged))
	num("admission latency p50 / p95 / p99 (ms)", fmt.Sprintf("%g / %g / %g", rep.AdmissionLatencyMS.P50, rep.AdmissionLatencyMS.P95, rep.AdmissionLatencyMS.P99))
	if sa := rep.ServerAdmissionLatencyMS; sa.N > 0 {
		num("… at the apis (handler time) p50 / p95 / p99 (ms)", fmt.Sprintf("%g / %g / %g", sa.P50, sa.P95, sa.P99))
	}
	num("send lag p50 / p99 (ms, waiting for a sender)", fmt.Sprintf("%g / %g", rep.SendLagMS.P50, rep.SendLagMS.P99))
	num("time to result p50 / p99 (ms, queue-ws)", fmt.Sprintf("%g / %g", rep.TimeToResultMS.P50, rep.TimeToResultMS.P99))
	num("server time to decision p50 / p99 (ms)", fmt.Sprintf("%g / %g", rep.ServerDecisionMS.P50, rep.ServerDecisionMS.P99))
	num("admission span (s)", rep.AdmissionSpanS)
	num("admit rate (/s)", rep.AdmitRatePerS)
	num("drain rate (/s)", rep.DrainRatePerS)
	num("decided after last admission (s)", rep.DecidedAfterLastAdmS)
	num("peak connections (ws / http)", fmt.Sprintf("%d (%d / %d)", rep.PeakConnections, rep.PeakWSConnections, rep.PeakHTTPConnections))
	num("queue-ws connected / failed", fmt.Sprintf("%d / %d", rep.WS.Connected, rep.WS.ConnectFailed))
	num("position frames / result frames", fmt.Sprintf("%d / %d", rep.WS.PositionFrames, rep.WS.ResultFrames))
	if b := rep.Baselines; b != nil {
		num("baseline: Redis alone, admit.lua EVALSHA (/s)", b.Redis.PerS)
		num("baseline: MariaDB alone, batched INSERT (rows/s)", b.MariaDB.RowsPerS)
		for _, k := range sortedKeys(b.Ratios) {
			num("ratio "+k, b.Ratios[k])
		}
	}
	d.Rejected = sortedPairs(rep.RejectedByReason)
	d.Refused = sortedPairs(rep.RefusedByCode)
	for _, k := range sortedKeys(rep.PeakRSSMB) {
		d.RSS = append(d.RSS, [2]string{k, fmtNum(rep.PeakRSSMB[k])})
	}

	for _, k := range sortedKeys(rep.CPUSeconds) {
		d.CPU = append(d.CPU, [2]string{k, fmtNum(rep.CPUSeconds[k])})
	}
	d.Charts = append(d.Charts, histogramChart("Admission latency (client side)", "ms (log buckets)", rep.LatencyHistogram))
	var depth, inflight, drain, admit, answer []xy
	for _, p := range rep.Series {
		depth = append(depth, xy{p.T, float64(p.Waiting + p.Inflight)})
		inflight = append(inflight, xy{p.T, float64(p.Inflight)})
		drain = append(drain, xy{p.T, p.DrainRate})
		admit = append(admit, xy{p.T, p.AdmitRate})
		answer = append(answer, xy{p.T, p.AnswerRate})
	}
	xLabel := "seconds since the " + strings.TrimSuffix(d.From, "ing") + "ed"
	d.Charts = append(d.Charts, lineChart("Queue depth", xLabel, "requests",
		[]lineSeries{{"waiting + in flight", colorBlue, depth}, {"in flight", colorGray, inflight}}))
	admitted := "admitted/s (202)"
	if rep.Prequeue != nil {
		admitted = "drawn requests learned/s"
	}
	d.Charts = append(d.Charts, lineChart("Admission answers, admissions and decisions per second", xLabel, "per second",
		[]lineSeries{{"answered/s (202 + 409)", colorBlue, answer}, {admitted, colorOrange, admit}, {"decided/s", colorGreen, drain}}))
	var c []xy
	for _, p := range rep.ResultCDF {
		c = append(c, xy{p.X / 1000, p.P * 100})
	}
	from := "seconds from admission to result"
	if rep.Prequeue != nil {
		from = "seconds from reading the drawn request id to result"
	}
	d.Charts = append(d.Charts, lineChart("Time to result (CDF)", from, "% of requests",
		[]lineSeries{{"decided within", colorBlue, c}}))
	if err := reportTmpl.Execute(w, d); err != nil {
		return fmt.Errorf("html report: %w", err)
	}
	return nil
}

// fmtCounts is "a 1, b 2" in key order ("none" when empty).
func fmtCounts(m map[string]int64) string {
	var parts []string
	for _, kv := range sortedPairs(m) {
		parts = append(parts, kv[0]+" "+kv[1])
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func fmtCPU(m map[string]float64) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, k+" "+fmtNum(m[k]))
	}
	return strings.Join(parts, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func sortedPairs(m map[string]int64) [][2]string {
	var out [][2]string
	for _, k := range sortedKeys(m) {
		name := k
		if name == "" {
			name = "(none)"
		}
		out = append(out, [2]string{name, strconv.FormatInt(m[k], 10)})
	}
	return out
}
