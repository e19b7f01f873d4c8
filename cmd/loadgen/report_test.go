package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/enrollq/enrollq/cmd/loadgen/students"
	"github.com/enrollq/enrollq/internal/verify"
)

func TestParseFrame(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want frame
	}{
		{`{"type":"position","request_id":12,"position":5,"ahead":4,"eta_seconds":3,"ts":1700000000000}`,
			frame{Type: "position", RequestID: 12, Position: 5, HasPos: true, Ahead: 4, ETA: 3, HasETA: true, TS: 1700000000000}},
		{`{"type":"position","request_id":12,"position":1,"ahead":0,"ts":1}`,
			frame{Type: "position", RequestID: 12, Position: 1, HasPos: true, TS: 1}},
		{`{"type":"result","request_id":7,"status":"rejected","reason":"sold_out","position":0,"ts":2}`,
			frame{Type: "result", RequestID: 7, Status: "rejected", Reason: "sold_out", HasPos: true, TS: 2}},
		{` { "type" : "result" , "request_id" : 8 , "status" : "enrolled", "reason": "" } `,
			frame{Type: "result", RequestID: 8, Status: "enrolled"}},
		{`{"type":"error","request_id":9,"code":"not_found","message":"신청을 찾을 수 없습니다.","message_en":"No such request."}`,
			frame{Type: "error", RequestID: 9, Code: "not_found"}},
		// escapes and floats go through encoding/json
		{`{"type":"error","code":"bad_message","message_en":"send {\"type\":\"watch\"}"}`,
			frame{Type: "error", Code: "bad_message"}},
		{`{"type":"position","request_id":3,"position":2.0,"extra":{"a":[1]},"ok":true,"x":null}`,
			frame{Type: "position", RequestID: 3, Position: 2, HasPos: true}},
		{`{"type":"drawn","course_id":12,"request_id":3051}`,
			frame{Type: "drawn", CourseID: 12, RequestID: 3051}},
		{`{"type":"drawn","course_id":12,"request_id":3051,"ts":1796635928239}`,
			frame{Type: "drawn", CourseID: 12, RequestID: 3051, TS: 1796635928239}},
		{`{"type":"drawn","course_id":14,"error":"sold_out"}`,
			frame{Type: "drawn", CourseID: 14, Error: "sold_out"}},
		{`{"type":"opened","students":90000,"spread_ms":30000,"ts":1763900000000}`,
			frame{Type: "opened", Students: 90000, SpreadMS: 30000, TS: 1763900000000}},
		{`{"type":"drawn","course_id":14.0,"error":"sold_out"}`, // through encoding/json
			frame{Type: "drawn", CourseID: 14, Error: "sold_out"}},
	} {
		got, err := parseFrame([]byte(tc.in))
		if err != nil {
			t.Errorf("parseFrame(%s): %v", tc.in, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(frame{})); diff != "" {
			t.Errorf("parseFrame(%s) (-want +got):\n%s", tc.in, diff)
		}
	}
	for _, bad := range []string{``, `[1]`, `{"type":`, `{"type":"x"`, `nonsense`} {
		if _, err := parseFrame([]byte(bad)); err == nil {
			t.Errorf("parseFrame(%q): want an error", bad)
		}
	}
}

func TestPositionTracking(t *testing.T) {
	r := &reqRec{ID: 1, FirstPos: 10, LastPos: 10}
	for _, p := range []int64{10, 9, 7, 7, 3} {
		if r.observePosition(p) {
			t.Errorf("position %d after %d counted as an increase", p, r.LastPos)
		}
	}
	if !r.observePosition(4) {
		t.Error("4 after 3 is an increase")
	}
	r.observePosition(2)
	if r.Increases != 1 || r.Frames != 7 || r.LastPos != 2 {
		t.Errorf("increases=%d frames=%d last=%d, want 1 7 2", r.Increases, r.Frames, r.LastPos)
	}
	if !r.observeResult("enrolled", "", srcWS, 5) {
		t.Error("first result not reported as first")
	}
	if r.observeResult("enrolled", "", srcWS, 6) {
		t.Error("second result reported as first")
	}
	if r.WSResults != 2 || r.Mismatch {
		t.Errorf("ws results %d mismatch %v, want 2 false", r.WSResults, r.Mismatch)
	}
	r.observePosition(1)
	if r.AfterResult != 1 || r.Frames != 7 {
		t.Errorf("a position after the result: after=%d frames=%d", r.AfterResult, r.Frames)
	}
	r.observeResult("rejected", "sold_out", srcPoll, 7)
	if !r.Mismatch || r.Status != "enrolled" {
		t.Errorf("disagreeing sources: mismatch=%v status=%s", r.Mismatch, r.Status)
	}
}

func TestTrackerDuplicates(t *testing.T) {
	tr := newTracker()
	if !tr.add(&reqRec{ID: 5}) || !tr.add(&reqRec{ID: 6}) {
		t.Fatal("add failed")
	}
	if tr.add(&reqRec{ID: 5}) {
		t.Error("second admission of id 5 accepted")
	}
	if tr.dups.Load() != 1 || len(tr.snapshot()) != 2 || tr.get(6) == nil || tr.get(7) != nil {
		t.Errorf("dups=%d n=%d", tr.dups.Load(), len(tr.snapshot()))
	}
}

func ms(n int) int64 { return int64(time.Duration(n) * time.Millisecond) }

func TestAssemble(t *testing.T) {
	t0 := time.Date(2026, 2, 10, 1, 0, 0, 0, time.UTC)
	at := func(msec int) sql.NullTime {
		return sql.NullTime{Time: t0.Add(time.Duration(msec) * time.Millisecond), Valid: true}
	}
	recs := []recView{
		{ID: 1, Ticket: 1, AdmittedAt: ms(10), ResultAt: ms(110), Status: "enrolled", Source: srcWS, Frames: 3, WSResults: 1, Watched: true},
		{ID: 2, Ticket: 2, AdmittedAt: ms(20), ResultAt: ms(320), Status: "rejected", Reason: "time_conflict", Source: srcWS, WSResults: 1, Watched: true, Increases: 2, Frames: 4},
		{ID: 3, Ticket: 3, AdmittedAt: ms(30), ResultAt: ms(1030), Status: "enrolled", Source: srcPoll, Dropped: true},
		{ID: 4, Ticket: 4, AdmittedAt: ms(40), ResultAt: ms(100), Status: "cancelled", Source: srcCancel, WSResults: 2, Watched: true},
		{ID: 5, Ticket: 5, AdmittedAt: ms(50)}, // never learned
		{ID: 6, Ticket: 6, AdmittedAt: ms(60), ResultAt: ms(200), Status: "enrolled", Source: srcWS, WSResults: 1}, // MariaDB says otherwise
	}
	rows := map[int64]dbRow{
		1: {ID: 1, Status: "enrolled", CreatedAt: t0, DecidedAt: at(90)},
		2: {ID: 2, Status: "rejected", Reason: "time_conflict", CreatedAt: t0.Add(10 * time.Millisecond), DecidedAt: at(290)},
		3: {ID: 3, Status: "enrolled", CreatedAt: t0.Add(20 * time.Millisecond), DecidedAt: at(500)},
		4: {ID: 4, Status: "cancelled", CreatedAt: t0.Add(30 * time.Millisecond), DecidedAt: at(60)},
		6: {ID: 6, Status: "rejected", Reason: "sold_out", CreatedAt: t0.Add(40 * time.Millisecond), DecidedAt: at(1040)},
	}
	in := assembleInput{
		Info: runInfo{Students: 4}, Recs: recs, Rows: rows, Verify: verify.Report{Lost: 1},
		Latencies: []float64{5, 1, 3, 2, 4}, Refused: map[string]int64{"sold_out": 3, "already_enrolled": 1},
		DupAdmission: 1, Requested: 10, Answered: 10,
		FirstSent: ms(0), LastAdmitted: ms(4000), LastAnswered: ms(5000),
		Duration: 12 * time.Second,
	}
	rep := assemble(in)
	check := func(name string, got, want any) {
		t.Helper()
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
	check("admitted", rep.Admitted, int64(6))
	check("sold out early", rep.SoldOutEarly, int64(3))
	check("enrolled", rep.Enrolled, int64(2))
	check("rejected", rep.RejectedByReason, map[string]int64{"time_conflict": 1, "sold_out": 1})
	check("cancelled", rep.Cancelled, int64(1))
	check("dropped", rep.Dropped, int64(1))
	check("lost", rep.Lost, int64(1))             // id 5 has no row
	check("duplicated", rep.Duplicated, int64(2)) // id admitted twice + two result frames for 4
	check("unresolved", rep.Unresolved, int64(1)) // id 5
	check("mismatches", rep.ResultMismatches, int64(1))
	check("increases", rep.PositionIncreases, int64(2))
	check("increased reqs", rep.PositionIncreasedReqs, int64(1))
	check("sources", rep.Sources, map[string]int64{srcWS: 3, srcPoll: 1, srcCancel: 1})
	check("latency", rep.AdmissionLatencyMS, Percentiles{P50: 3, P95: 5, P99: 5, Max: 5, N: 5})
	// ws results, cancelled excluded: 100, 300, 140 ms
	check("time to result", rep.TimeToResultMS, Percentiles{P50: 140, P95: 300, P99: 300, Max: 300, N: 3})
	check("time to result any", rep.TimeToResultAnyMS.N, 4)
	check("admission span", rep.AdmissionSpanS, 4.0)
	check("answer span", rep.AnswerSpanS, 5.0)
	check("admit rate", rep.AdmitRatePerS, 1.5)
	// last decision 1040 ms, last creation 40 ms
	check("decided after last admission", rep.DecidedAfterLastAdmS, 1.0)
	// 5 decisions between 60 ms and 1040 ms
	check("drain rate", rep.DrainRatePerS, round1(5/0.98))
	check("laws ok", rep.LawsOK, false)
	check("targets", len(rep.Targets), 4)
	if rep.Targets[0].Met != true || rep.Targets[3].Met != false {
		t.Errorf("targets: %+v", rep.Targets)
	}

	// A clean run.
	clean := assemble(assembleInput{Info: runInfo{Students: 1}, Recs: recs[:1], Rows: rows, Requested: 1, Answered: 1,
		Latencies: []float64{3}, FirstSent: 1, LastAdmitted: ms(100), LastAnswered: ms(100)})
	if !clean.LawsOK {
		t.Errorf("clean run not ok: %+v", clean)
	}
	for _, tg := range clean.Targets {
		if !tg.Met {
			t.Errorf("clean run: target %q not met (%v)", tg.Name, tg.Value)
		}
	}

	// The HTML report renders, self-contained.
	raw, _ := json.Marshal(rep)
	var buf bytes.Buffer
	if err := writeHTML(&buf, rep, raw); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	for _, want := range []string{"<svg", "Admission latency", "Queue depth", "Time to result (CDF)", "not met", "BROKEN"} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML report lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "http://", "https://"} {
		if strings.Contains(strings.ReplaceAll(html, `xmlns="http://www.w3.org/2000/svg"`, ""), bad) {
			t.Errorf("HTML report should be self-contained, found %q", bad)
		}
	}
}

func TestPlanStudents(t *testing.T) {
	toks := make([]students.Token, 500)
	for i := range toks {
		toks[i] = students.Token{StudentID: int64(i + 1)}
	}
	courses := make([]int64, 300)
	for i := range courses {
		courses[i] = int64(1000 + i)
	}
	cfg := config{Seed: 9, PopularCount: 10, PopularShare: 0.5, CartMin: 1, CartMax: 3, CancelRate: 0.1, DropRate: 0.1,
		WS: true, WSShare: 0.5, Shape: "burst", Ramp: time.Second}
	a := planStudents(cfg, toks, courses)
	b := planStudents(cfg, toks, courses)
	popular := map[int64]int{}
	var picks, ws int
	for i, st := range a {
		if len(st.cart) < 1 || len(st.cart) > 3 || len(st.cancel) != len(st.cart) {
			t.Fatalf("student %d: cart %v", i, st.cart)
		}
		seen := map[int64]bool{}
		for _, c := range st.cart {
			if seen[c] {
				t.Fatalf("student %d: %d twice in the cart", i, c)
			}
			seen[c] = true
			popular[c]++
			picks++
		}
		if !cmp.Equal(st.cart, b[i].cart) || st.offset != b[i].offset {
			t.Fatalf("plan is not deterministic for student %d", i)
		}
		if st.withWS {
			ws++
		}
	}
	// Half the picks go to 10 sections: the most picked 10 hold well over a third.
	var counts []int
	for _, n := range popular {
		counts = append(counts, n)
	}
	top := 0
	for range 10 {
		best := 0
		for i, n := range counts {
			if n > counts[best] {
				best = i
			}
			_ = n
		}
		top += counts[best]
		counts[best] = 0
	}
	if top*3 < picks {
		t.Errorf("popular sections got %d of %d picks", top, picks)
	}
	if ws < 200 || ws > 300 {
		t.Errorf("%d of 500 students with ws, want about 250", ws)
	}
}

func TestLoopbackOnly(t *testing.T) {
	for _, ok := range []string{"http://127.0.0.1:8080", "ws://127.0.0.2:8082/ws", "http://localhost:1", "http://[::1]:80"} {
		if err := loopbackOnly(ok); err != nil {
			t.Errorf("loopbackOnly(%s): %v", ok, err)
		}
	}
	for _, bad := range []string{"http://10.0.0.1:8080", "https://example.com", "nonsense"} {
		if err := loopbackOnly(bad); err == nil {
			t.Errorf("loopbackOnly(%s): want an error", bad)
		}
	}
}

func TestParseSourceRange(t *testing.T) {
	got, err := parseSourceRange("127.0.0.1-127.0.0.8")
	if err != nil || len(got) != 8 || got[7].String() != "127.0.0.8" {
		t.Errorf("range = %v, %v", got, err)
	}
	if got, err := parseSourceRange("127.0.0.3"); err != nil || len(got) != 1 {
		t.Errorf("single = %v, %v", got, err)
	}
	for _, bad := range []string{"127.0.0.8-127.0.0.1", "x-y", "::1-::2"} {
		if _, err := parseSourceRange(bad); err == nil {
			t.Errorf("parseSourceRange(%q): want an error", bad)
		}
	}
}

func TestParseFlagsPrequeue(t *testing.T) {
	t.Setenv("ENROLLQ_DEV", "1") // parseFlags needs a token secret outside development mode
	cfg, _, err := parseFlags(nil, io.Discard)
	if err != nil || cfg.Prequeue != 0 {
		t.Fatalf("defaults: prequeue %v, %v; want off", cfg.Prequeue, err)
	}
	cfg, _, err = parseFlags([]string{"-prequeue", "60s", "-students", "10"}, io.Discard)
	if err != nil || cfg.Prequeue != time.Minute {
		t.Fatalf("-prequeue 60s: %v, %v", cfg.Prequeue, err)
	}
	for _, bad := range []string{"-1s", "31m", "soon"} {
		if _, _, err := parseFlags([]string{"-prequeue", bad}, io.Discard); err == nil {
			t.Errorf("-prequeue %s accepted", bad)
		}
	}
	// The pre-queue's arrivals are spread uniformly over it, whatever -shape.
	toks := make([]students.Token, 400)
	for i := range toks {
		toks[i] = students.Token{StudentID: int64(i + 1)}
	}
	cfg.Shape, cfg.Ramp = "step", 0
	var early int
	for _, st := range planStudents(cfg, toks, []int64{1, 2, 3, 4}) {
		if st.offset < 0 || st.offset >= time.Minute || len(st.pre) != len(st.cart) {
			t.Fatalf("offset %v, pre %v, cart %v", st.offset, st.pre, st.cart)
		}
		if st.offset < 30*time.Second {
			early++
		}
	}
	if early < 150 || early > 250 {
		t.Errorf("%d of 400 arrivals in the first half of the pre-queue, want about 200", early)
	}
}

func TestAssemblePrequeue(t *testing.T) {
	recs := []recView{{ID: 7, Ticket: 7, AdmittedAt: ms(10), ResultAt: ms(60), Status: "enrolled", Source: srcWS, WSResults: 1, Watched: true}}
	rows := map[int64]dbRow{7: {ID: 7, Status: "enrolled", CreatedAt: time.Unix(0, 0), DecidedAt: sql.NullTime{Time: time.Unix(1, 0), Valid: true}}}
	pq := func(mod func(*prequeueReport)) *prequeueReport {
		p := &prequeueReport{Prequeued: 3, State: "done", DrawS: 0.5, TotalDrawn: 3, Admitted: 1, RefusedByCode: map[string]int64{"sold_out": 2}}
		if mod != nil {
			mod(p)
		}
		return p
	}
	in := assembleInput{Info: runInfo{Students: 2}, Recs: recs, Rows: rows, Requested: 3, Answered: 3, Latencies: []float64{2, 3, 4},
		Refused: map[string]int64{"sold_out": 2}, FirstSent: ms(0), LastAnswered: ms(2000), Prequeue: pq(nil)}
	rep := assemble(in)
	if !rep.LawsOK || rep.AdmissionSpanS != 0.5 || rep.AdmitRatePerS != 2 || rep.SoldOutEarly != 2 || rep.AnswerSpanS != 2 {
		t.Errorf("clean pre-queue run: laws %v, admission span %g, admit rate %g, sold out %d, answer span %g",
			rep.LawsOK, rep.AdmissionSpanS, rep.AdmitRatePerS, rep.SoldOutEarly, rep.AnswerSpanS)
	}
	if tg := rep.Targets[0]; !strings.Contains(tg.Name, "2 students' requests admitted") || tg.Value != 0.5 || !tg.Met {
		t.Errorf("admission target: %+v", tg)
	}
	// The answer to the opening call came back late (a busy harness), but
	// the server had drawn every entry 8 s after the call: admitted in 8 s.
	in.Prequeue = pq(func(p *prequeueReport) { p.DrawS, p.AdmittedS = 12.5, 8 })
	if tg := assemble(in).Targets[0]; tg.Value != 8 || !tg.Met {
		t.Errorf("admission target with admitted_s 8, draw_s 12.5: %+v", tg)
	}
	in.Prequeue = pq(func(p *prequeueReport) { p.DrawS, p.AdmittedS = 12.5, 10.5 })
	if tg := assemble(in).Targets[0]; tg.Value != 10.5 || tg.Met {
		t.Errorf("admission target with admitted_s 10.5: %+v", tg)
	}
	// The draw missed an entry, and took too long.
	in.Prequeue = pq(func(p *prequeueReport) { p.Undrawn, p.RefusedByCode, p.DrawS = 1, map[string]int64{"sold_out": 1}, 12 })
	rep = assemble(in)
	if rep.LawsOK || rep.Lost != 1 || rep.Targets[0].Met {
		t.Errorf("undrawn entry: laws %v, lost %d, target %+v", rep.LawsOK, rep.Lost, rep.Targets[0])
	}
	raw, _ := json.Marshal(rep)
	var buf bytes.Buffer
	if err := writeHTML(&buf, rep, raw); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Pre-queue: admission is the draw at the opening", "draw_s", "learned_s", "seconds since the pre-queue opened"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("HTML report lacks %q", want)
		}
	}
	if s := summary(rep, "x"); !strings.Contains(s, "admission is the draw at the opening") || !strings.Contains(s, "NOT all accounted") {
		t.Errorf("summary:\n%s", s)
	}
}

func TestDrawSeed(t *testing.T) {
	for _, raw := range []string{`{"seed":"18446744073709551615"}`, `{"seed":18446744073709551615}`} {
		var st drawStatus
		if err := json.Unmarshal([]byte(raw), &st); err != nil || st.Seed != 18446744073709551615 {
			t.Errorf("%s: seed %d, %v", raw, st.Seed, err)
		}
	}
	var st drawStatus
	if err := json.Unmarshal([]byte(`{"seed":"x"}`), &st); err == nil {
		t.Error("a bad seed was accepted")
	}
}
