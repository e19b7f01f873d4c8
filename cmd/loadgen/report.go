package main

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/enrollq/enrollq/internal/verify"
)

// Report is loadgen's JSON report. Field names are stable: docs and scripts
// read them.
type Report struct {
	Run runInfo `json:"run"`

	Requested        int64            `json:"requested"`       // enrollment requests sent (one per cart item)
	Answered         int64            `json:"answered"`        // admission answers (202 or a refusal)
	Admitted         int64            `json:"admitted"`        // 202: in the queue
	SoldOutEarly     int64            `json:"sold_out_early"`  // 409 sold_out at admission (seat hint)
	RefusedByCode    map[string]int64 `json:"refused_by_code"` // every refusal at admission, by error code
	Enrolled         int64            `json:"enrolled"`        // admitted requests decided "enrolled" (MariaDB)
	RejectedByReason map[string]int64 `json:"rejected_by_reason"`
	Cancelled        int64            `json:"cancelled"` // admitted requests the student left
	Dropped          int64            `json:"dropped"`   // enrollments dropped afterwards

	// Laws. All zero in a clean run.
	Lost                   int64         `json:"lost"`       // admitted, no final decision in MariaDB (-prequeue: and entries the draw missed)
	Duplicated             int64         `json:"duplicated"` // an id admitted twice, or two result frames for one request
	OversoldSections       int64         `json:"oversold_sections"`
	FIFOViolations         int64         `json:"fifo_violations"`
	FalseSoldOut           int64         `json:"false_sold_out"`                  // law 7: a later ticket enrolled after a sold_out with no seat freed between
	PositionIncreases      int64         `json:"position_increases"`              // frames showing a higher position than the one before
	PositionIncreasedReqs  int64         `json:"requests_with_position_increase"` // requests that saw at least one
	ResultMismatches       int64         `json:"result_mismatches"`               // what the student was told ≠ MariaDB
	Unresolved             int64         `json:"unresolved"`                      // admitted, loadgen never learned the decision (-prequeue: or the entry's outcome)
	Unacknowledged         int64         `json:"admitted_unacknowledged"`         // recorded by MariaDB, admission answer lost (transport, 502/503/504) and no retry's 202 seen
	UnknownOutcome         int64         `json:"unknown_outcome"`                 // admissions never answered after every retry (transport, 502/503/504, or the run ended): not a broken law
	Recovered              int64         `json:"recovered_after_lost_answer"`     // requests MariaDB recorded for those pairs: ours, in the admitted set verify checks (and in admitted_unacknowledged)
	Verify                 verify.Report `json:"verify"`
	LawsOK                 bool          `json:"laws_ok"`
	PositionFramesPerReq   float64       `json:"position_frames_per_request"`
	PositionsReachedResult int64         `json:"results_after_positions"` // watched requests whose result followed their position frames

	AdmissionLatencyMS Percentiles `json:"admission_latency_ms"` // request sent → admission answer, client side
	// POST /api/v1/enrollments at the apis (handler time, from their
	// enrollq_http_request_duration_seconds histograms; interpolated within
	// buckets 2× wide).
	ServerAdmissionLatencyMS Percentiles `json:"server_admission_latency_ms"`
	SendLagMS                Percentiles `json:"send_lag_ms"`                // planned click → first request sent (waiting for a free sender)
	TimeToResultMS           Percentiles `json:"time_to_result_ms"`          // admission answer → result frame (queue-ws), client side
	TimeToResultAnyMS        Percentiles `json:"time_to_result_any_ms"`      // same, any source (ws, poll)
	ServerDecisionMS         Percentiles `json:"server_time_to_decision_ms"` // created_at → decided_at in MariaDB
	AdmissionSpanS           float64     `json:"admission_span_s"`           // first request sent → last 202
	AnswerSpanS              float64     `json:"answer_span_s"`              // first request sent → last admission answer
	DecidedAfterLastAdmS     float64     `json:"decided_after_last_admission_s"`
	AdmitRatePerS            float64     `json:"admit_rate_per_s"`  // 202s / admission span
	AnswerRatePerS           float64     `json:"answer_rate_per_s"` // admission answers / answer span
	DrainRatePerS            float64     `json:"drain_rate_per_s"`  // decisions / (last decision − first decision)

	PeakConnections     int64              `json:"peak_connections"` // open client sockets (queue-ws + HTTP), sampled each second
	PeakWSConnections   int64              `json:"peak_ws_connections"`
	PeakHTTPConnections int64              `json:"peak_http_connections"`
	PeakRSSMB           map[string]float64 `json:"peak_rss_mb"` // peak of the summed VmRSS of each process group
	VmHWMMB             map[string]float64 `json:"vm_hwm_mb"`   // summed VmHWM at the end (includes time before the run)
	Processes           map[string]int     `json:"processes"`
	CPUSeconds          map[string]float64 `json:"cpu_seconds"` // CPU time of each process group from the window opening to the end of the wait (2 cores)

	WS      wsReport         `json:"ws"`
	Sources map[string]int64 `json:"results_by_source"`
	Actions actionsReport    `json:"actions"`

	Baselines *Baselines `json:"baselines,omitempty"`

	// -prequeue: the students' requests went into the pre-queue before the
	// opening and admission was the draw at the opening (see its note).
	Prequeue *prequeueReport `json:"prequeue,omitempty"`

	Duration float64  `json:"duration"` // seconds, whole run
	Targets  []Target `json:"targets"`

	Series           []point    `json:"series"`
	LatencyHistogram []Bucket   `json:"admission_latency_histogram"`
	ResultCDF        []CDFPoint `json:"time_to_result_cdf"`
}

type runInfo struct {
	StartedAt    time.Time `json:"started_at"`
	BaseURL      string    `json:"base_url"`
	Students     int       `json:"students"`
	Ramp         string    `json:"ramp"`
	Shape        string    `json:"shape"`
	Concurrency  int       `json:"concurrency"`
	PopularShare float64   `json:"popular_share"`
	PopularCount int       `json:"popular_count"`
	Cart         string    `json:"cart"`
	CancelRate   float64   `json:"cancel_rate"`
	DropRate     float64   `json:"drop_rate"`
	WS           bool      `json:"ws"`
	WSShare      float64   `json:"ws_share"`
	WSVia        string    `json:"ws_via"`
	Sources      string    `json:"sources"`
	Seed         uint64    `json:"seed"`
	Reset        bool      `json:"reset"`
	Courses      int       `json:"courses"`
	WSPlanned    int       `json:"ws_planned,omitempty"`
	WSStudents   int       `json:"ws_students"`
	WSLimited    string    `json:"ws_limited,omitempty"`
	WSHolders    int       `json:"ws_holders,omitempty"` // ws-holder child processes holding the connections (0: loadgen itself)
	// -hold: the open sessions were held idle this long before the window
	// opened, and every process group used this much CPU meanwhile (the cost
	// of an idle crowd: pings, timers, the kernel's loopback work).
	HoldS          float64            `json:"hold_s,omitempty"`
	HoldSessions   int64              `json:"hold_sessions,omitempty"`
	HoldCPUSeconds map[string]float64 `json:"hold_cpu_seconds,omitempty"`
	Poll           bool               `json:"poll"`
	StoppedEarly   string             `json:"stopped_early,omitempty"`
}

type wsReport struct {
	Students       int64            `json:"students_with_ws"`
	Connected      int64            `json:"connected"`
	ConnectFailed  int64            `json:"connect_failed"`
	ConnectErrors  map[string]int64 `json:"connect_errors,omitempty"`
	Reconnects     int64            `json:"reconnects"`
	ServerCloses   int64            `json:"server_closes"`
	PositionFrames int64            `json:"position_frames"`
	ResultFrames   int64            `json:"result_frames"`
	ErrorFrames    map[string]int64 `json:"error_frames,omitempty"`
	BadFrames      int64            `json:"bad_frames"`
	UnknownFrames  int64            `json:"unknown_frames"`
	WriteErrors    int64            `json:"write_errors"`
}

type actionsReport struct {
	CancelsSent   int64 `json:"cancels_sent"`
	CancelsOK     int64 `json:"cancels_ok"`
	CancelsLate   int64 `json:"cancels_too_late"`
	CancelErrors  int64 `json:"cancel_errors"`
	DropsSent     int64 `json:"drops_sent"`
	DropsOK       int64 `json:"drops_ok"`
	DropErrors    int64 `json:"drop_errors"`
	Retries429    int64 `json:"rate_limited_retries"`
	Transport     int64 `json:"transport_errors"`
	Unavailable   int64 `json:"unavailable_answers"` // admissions answered 502, 503 unavailable or 504 (then retried)
	TransportRtry int64 `json:"transport_retries"`   // admissions sent again under their Idempotency-Key: answer lost, or 503 opening
	Replayed      int64 `json:"replayed_answers"`    // admission answers with Idempotent-Replayed: true (the original answer of a retried click)
	Polls         int64 `json:"polls"`
	PollErrors    int64 `json:"poll_errors"`
	PollDecisions int64 `json:"poll_decisions"`
	// The polls' errors by code (API code, http_NNN without one,
	// transport); the cancels' and drops' are in refused_by_code.
	PollErrorCodes map[string]int64 `json:"poll_error_codes,omitempty"`
}

// Target is one of the goals and whether this run met it.
type Target struct {
	Name  string  `json:"name"`
	Goal  string  `json:"goal"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	Met   bool    `json:"met"`
}

// recView is a copy of a reqRec's fields, taken under its lock.
type recView struct {
	ID, Ticket                 int64
	AdmittedAt, ResultAt       int64
	FirstPos, LastPos          int64
	Frames, Increases          int32
	AfterResult, WSResults     int32
	Status, Reason, Source     string
	Mismatch, Watched, Dropped bool
}

func (r *reqRec) view() recView {
	r.mu.Lock()
	defer r.mu.Unlock()
	return recView{ID: r.ID, Ticket: r.Ticket, AdmittedAt: r.AdmittedAt, ResultAt: r.ResultAt, FirstPos: r.FirstPos,
		LastPos: r.LastPos, Frames: r.Frames, Increases: r.Increases, AfterResult: r.AfterResult, WSResults: r.WSResults,
		Status: r.Status, Reason: r.Reason, Source: r.Source, Mismatch: r.Mismatch, Watched: r.Watched, Dropped: r.Dropped}
}

// dbRow is a decision as MariaDB recorded it.
type dbRow struct {
	ID        int64        `db:"id"`
	Status    string       `db:"status"`
	Reason    string       `db:"reason"`
	CreatedAt time.Time    `db:"created_at"`
	DecidedAt sql.NullTime `db:"decided_at"`
}

// readDecisions reads the MariaDB rows of the given request ids.
func (r *run) readDecisions(ctx context.Context, ids []int64) (map[int64]dbRow, error) {
	out := make(map[int64]dbRow, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	lo, hi := slices.Min(ids), slices.Max(ids)
	const q = `SELECT id, status, reason, created_at, decided_at FROM enrollment_requests WHERE id BETWEEN ? AND ?`
	var rows []dbRow
	if err := r.db.SelectContext(ctx, &rows, q, lo, hi); err != nil {
		return nil, fmt.Errorf("read decisions: %w", err)
	}
	want := make(map[int64]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	for _, row := range rows {
		if want[row.ID] {
			out[row.ID] = row
		}
	}
	return out, nil
}

// assembleInput is everything the report is computed from.
type assembleInput struct {
	ServerAdmission Percentiles // from the apis' histograms (servermetrics.go)
	Info            runInfo
	Recs            []recView
	Rows            map[int64]dbRow
	Verify          verify.Report
	Latencies       []float64 // ms
	SendLag         []float64 // ms
	Refused         map[string]int64
	WS              wsReport
	Actions         actionsReport
	DupAdmission    int64
	Requested       int64
	Answered        int64
	FirstSent       int64 // ns on the run clock
	LastAdmitted    int64
	LastAnswered    int64
	PeakConns       int64
	PeakWS          int64
	PeakHTTP        int64
	RSS, HWM        map[string]float64
	Procs           map[string]int
	CPU             map[string]float64
	Series          []point
	Duration        time.Duration

	Baselines        *Baselines
	DBResults        bool  // decisions of unwatched requests come from MariaDB (no polling)
	Unacknowledged   int64 // requests MariaDB recorded whose admission answer was lost
	UnknownOutcome   int64 // admissions never answered after every retry
	Recovered        int64 // requests MariaDB recorded for those
	TransportRetries int64
	Prequeue         *prequeueReport // -prequeue runs
}

var finalStatuses = map[string]bool{"enrolled": true, "rejected": true, "cancelled": true}

// assemble computes the report. It is pure: everything comes from in.
func assemble(in assembleInput) Report {
	rep := Report{
		Run: in.Info, Requested: in.Requested, Answered: in.Answered, Admitted: int64(len(in.Recs)),
		RefusedByCode: maps.Clone(in.Refused), RejectedByReason: map[string]int64{}, Verify: in.Verify,
		WS: in.WS, Actions: in.Actions, Sources: map[string]int64{},
		PeakConnections: in.PeakConns, PeakWSConnections: in.PeakWS, PeakHTTPConnections: in.PeakHTTP,
		PeakRSSMB: in.RSS, VmHWMMB: in.HWM, Processes: in.Procs, CPUSeconds: in.CPU, Series: in.Series,
		Duration: round3(in.Duration.Seconds()),
	}
	if rep.RefusedByCode == nil {
		rep.RefusedByCode = map[string]int64{}
	}
	rep.SoldOutEarly = rep.RefusedByCode["sold_out"]
	rep.Duplicated = in.DupAdmission
	rep.Unacknowledged = in.Unacknowledged
	rep.UnknownOutcome, rep.Recovered = in.UnknownOutcome, in.Recovered
	rep.Actions.TransportRtry = in.TransportRetries

	var ttr, ttrAny, server []float64
	var frames int64
	var minCreated, maxCreated, minDecided, maxDecided time.Time
	decided := 0
	for _, v := range in.Recs {
		row, ok := in.Rows[v.ID]
		switch {
		case v.Status != "":
			rep.Sources[v.Source]++
		case in.DBResults && !v.Watched && ok && finalStatuses[row.Status]:
			rep.Sources["mariadb"]++ // not watched, not polled: read at the end
		default:
			rep.Unresolved++
		}
		if v.WSResults > 1 {
			rep.Duplicated++
		}
		rep.PositionIncreases += int64(v.Increases)
		if v.Increases > 0 {
			rep.PositionIncreasedReqs++
		}
		frames += int64(v.Frames)
		if v.Watched && v.WSResults > 0 && v.Frames > 0 {
			rep.PositionsReachedResult++
		}
		if v.Dropped {
			rep.Dropped++
		}
		if !ok || !finalStatuses[row.Status] {
			rep.Lost++
		}
		if ok {
			switch row.Status {
			case "enrolled":
				rep.Enrolled++
			case "rejected":
				rep.RejectedByReason[row.Reason]++
			case "cancelled":
				rep.Cancelled++
			}
			if v.Mismatch || (v.Status != "" && (v.Status != row.Status || v.Reason != row.Reason)) {
				rep.ResultMismatches++
			}
			if minCreated.IsZero() || row.CreatedAt.Before(minCreated) {
				minCreated = row.CreatedAt
			}
			if row.CreatedAt.After(maxCreated) {
				maxCreated = row.CreatedAt
			}
			if row.DecidedAt.Valid {
				d := row.DecidedAt.Time
				decided++
				if minDecided.IsZero() || d.Before(minDecided) {
					minDecided = d
				}
				if d.After(maxDecided) {
					maxDecided = d
				}
				if row.Status != "cancelled" {
					server = append(server, float64(d.Sub(row.CreatedAt))/1e6)
				}
			}
		} else if v.Mismatch {
			rep.ResultMismatches++
		}
		if v.Status != "" && v.Status != "cancelled" {
			ms := float64(v.ResultAt-v.AdmittedAt) / 1e6
			ttrAny = append(ttrAny, ms)
			if v.Source == srcWS {
				ttr = append(ttr, ms)
			}
		}
	}
	rep.OversoldSections = in.Verify.OversoldSections
	rep.FIFOViolations = in.Verify.FIFOViolations
	rep.FalseSoldOut = in.Verify.FalseSoldOut
	if len(in.Recs) > 0 {
		rep.PositionFramesPerReq = round3(float64(frames) / float64(len(in.Recs)))
	}

	lat := slices.Clone(in.Latencies)
	rep.AdmissionLatencyMS = summarize(lat)
	rep.ServerAdmissionLatencyMS = in.ServerAdmission
	rep.SendLagMS = summarize(slices.Clone(in.SendLag))
	rep.LatencyHistogram = histogram(lat)
	rep.TimeToResultMS = summarize(ttr)
	rep.ResultCDF = cdf(ttr, 200)
	if len(ttr) == 0 { // no queue-ws results: chart what there is
		slices.Sort(ttrAny)
		rep.ResultCDF = cdf(ttrAny, 200)
	}
	rep.TimeToResultAnyMS = summarize(ttrAny)
	rep.ServerDecisionMS = summarize(server)

	if in.LastAdmitted > in.FirstSent {
		rep.AdmissionSpanS = round3(float64(in.LastAdmitted-in.FirstSent) / 1e9)
		rep.AdmitRatePerS = round1(float64(len(in.Recs)) / rep.AdmissionSpanS)
	}
	if in.LastAnswered > in.FirstSent {
		rep.AnswerSpanS = round3(float64(in.LastAnswered-in.FirstSent) / 1e9)
		rep.AnswerRatePerS = round1(float64(in.Answered) / rep.AnswerSpanS)
	}
	if !maxDecided.IsZero() {
		rep.DecidedAfterLastAdmS = round3(max(0, maxDecided.Sub(maxCreated).Seconds()))
		if span := maxDecided.Sub(minDecided).Seconds(); decided > 1 && span > 0 {
			rep.DrainRatePerS = round1(float64(decided) / span)
		}
	}

	rep.CPUSeconds = withOther(rep.CPUSeconds)
	if p := in.Prequeue; p != nil {
		// Admission is the draw: its span is the opening call's.
		rep.Prequeue = p
		rep.Lost += p.Undrawn + p.Missing
		rep.Unresolved += p.Unlearned
		rep.AdmissionSpanS, rep.AdmitRatePerS = p.DrawS, 0
		if p.DrawS > 0 {
			rep.AdmitRatePerS = round1(float64(len(in.Recs)) / p.DrawS)
		}
	}
	if in.Baselines != nil {
		b := *in.Baselines
		b.Ratios = b.ratios(rep.AdmitRatePerS, rep.AnswerRatePerS, rep.DrainRatePerS)
		rep.Baselines = &b
	}
	rep.LawsOK = rep.Lost == 0 && rep.Duplicated == 0 && rep.OversoldSections == 0 && rep.FIFOViolations == 0 &&
		rep.FalseSoldOut == 0 && rep.PositionIncreases == 0 && rep.ResultMismatches == 0 && rep.Unresolved == 0 && in.Verify.OK()
	rep.Targets = targets(rep, in.Info.Students)
	return rep
}

// withOther adds "other" to CPU seconds by process group that hold the
// machine's: the machine's less every group's (the kernel, and whatever else
// ran on the host). It changes and returns m.
func withOther(m map[string]float64) map[string]float64 {
	if m == nil {
		return m
	}
	if total, ok := m["machine"]; ok {
		var ours float64
		for k, v := range m {
			if k != "machine" && k != "other" {
				ours += v
			}
		}
		m["other"] = round1(max(total-ours, 0))
	}
	return m
}

// targets are the goals, measured on this run.
func targets(rep Report, students int) []Target {
	violations := float64(rep.Lost + rep.Duplicated + rep.OversoldSections + rep.FIFOViolations + rep.FalseSoldOut + rep.PositionIncreases +
		rep.ResultMismatches + rep.Unresolved)
	admission := Target{Name: fmt.Sprintf("%d students' requests answered at admission", students), Goal: "≤ 10 s",
		Value: rep.AnswerSpanS, Unit: "s", Met: rep.Answered > 0 && rep.Answered == rep.Requested && rep.AnswerSpanS <= 10}
	latency := "admission latency p99"
	if p := rep.Prequeue; p != nil {
		took := p.AdmittedS
		if took == 0 { // no draw_done_at from the server: the call's own time
			took = p.DrawS
		}
		admission = Target{Name: fmt.Sprintf("%d students' requests admitted (-prequeue: the opening call until the draw's end, admitted_s)", students),
			Goal: "≤ 10 s", Value: took, Unit: "s", Met: p.State == "done" && p.Prequeued > 0 && p.accounted() && took <= 10}
		latency = "admission latency p99 (-prequeue: the answer to a pre-queue entry)"
	}
	return []Target{
		admission,
		{Name: "all admitted requests decided after the last admission", Goal: "≤ 30 s",
			Value: rep.DecidedAfterLastAdmS, Unit: "s", Met: rep.Lost == 0 && rep.DecidedAfterLastAdmS <= 30},
		{Name: latency, Goal: "≤ 50 ms", Value: rep.AdmissionLatencyMS.P99, Unit: "ms",
			Met: rep.AdmissionLatencyMS.N > 0 && rep.AdmissionLatencyMS.P99 <= 50},
		{Name: "lost + duplicated + oversold + FIFO violations + position increases + mismatches + unresolved",
			Goal: "= 0", Value: violations, Unit: "", Met: violations == 0 && rep.Verify.OK()},
	}
}
