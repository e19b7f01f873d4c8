package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/enrollq/enrollq/internal/dbtest"
)

// buildBinaries builds cmd/api and cmd/queue-ws once per test binary.
func buildBinaries(t *testing.T) (apiBin, wsBin string) {
	t.Helper()
	dir := t.TempDir()
	apiBin, wsBin = filepath.Join(dir, "api"), filepath.Join(dir, "queue-ws")
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "github.com/enrollq/enrollq/cmd/api", "github.com/enrollq/enrollq/cmd/queue-ws")
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build api queue-ws: %v\n%s", err, out)
	}
	return apiBin, wsBin
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startProcess runs bin with env until the test ends and waits until url
// answers 200.
func startProcess(t *testing.T, bin string, env []string, url string) {
	t.Helper()
	var logs bytes.Buffer
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(bin), lastLines(logs.String(), 40))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			t.Fatalf("%s exited during startup: %v\n%s", bin, err, lastLines(logs.String(), 40))
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not answer %s within 60s\n%s", bin, url, lastLines(logs.String(), 40))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestEngineAgainstRealAPI runs the whole loadgen engine — roster import,
// tokens, queue-ws connections, burst, cancels, drops, polling fallback,
// verification and both reports — with 200 students against a real api and
// queue-ws built from this tree, on the real MariaDB and Redis, in a database
// and a Redis term of its own.
func TestEngineAgainstRealAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	rep := runEngineAgainstRealAPI(t)
	if rep.Run.WSHolders != 0 || rep.Processes["loadgen-ws"] != 0 { // they fit in loadgen itself
		t.Errorf("-ws-procs 0: %d ws-holders, processes %v", rep.Run.WSHolders, rep.Processes)
	}
}

// TestEngineWithWSHolders is the same run with the queue-ws connections
// held by two ws-holder child processes (the loadgen binary, built here).
func TestEngineWithWSHolders(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	bin := buildLoadgen(t)
	rep := runEngineAgainstRealAPI(t, "-ws-procs", "2", "-ws-holder-bin", bin, "-hold", "1s")
	if rep.Run.HoldS < 1 || rep.Run.HoldSessions != rep.WS.Connected || rep.Run.HoldCPUSeconds["loadgen-ws"] < 0 ||
		rep.Run.HoldCPUSeconds["machine"] <= 0 {
		t.Errorf("-hold 1s: held %d sessions for %.1fs, CPU %v; want every connected session (%d), ≥1s and the host's CPU",
			rep.Run.HoldSessions, rep.Run.HoldS, rep.Run.HoldCPUSeconds, rep.WS.Connected)
	}
	if rep.Run.WSHolders != 2 || rep.Processes["loadgen-ws"] != 2 {
		t.Errorf("ws-holders %d, processes %v: want 2 loadgen-ws", rep.Run.WSHolders, rep.Processes)
	}
	if rep.PeakRSSMB["loadgen-ws"] <= 0 {
		t.Errorf("peak RSS %v: no figure for the ws-holders", rep.PeakRSSMB)
	}
	if rep.PeakWSConnections < rep.WS.Connected-rep.WS.ServerCloses || rep.PeakConnections < rep.PeakWSConnections {
		t.Errorf("peak connections %d, peak ws %d, connected %d: the ws-holders' connections are not counted",
			rep.PeakConnections, rep.PeakWSConnections, rep.WS.Connected)
	}
	if rep.WS.WriteErrors != 0 || rep.WS.BadFrames != 0 || rep.WS.UnknownFrames != 0 {
		t.Errorf("ws: %+v", rep.WS)
	}
}

// TestEngineWithPrequeue runs the same with -prequeue: 300 students send
// their carts into the pre-queue before the opening, the opening draws them,
// and each student learns its outcomes as the web page does — told by drawn
// frames on its queue-ws session (draw=1), or with one GET /me/requests
// without a session — and follows its drawn requests. Every pre-queued
// entry is drawn exactly once (admitted or refused), and the laws hold for
// the drawn requests as for live ones. It runs with the sessions held by
// loadgen and by two ws-holder children (the draw's frames go up the pipe
// with their student).
func TestEngineWithPrequeue(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	t.Run("in-process", func(t *testing.T) {
		checkPrequeueRun(t, runEngineAgainstRealAPI(t, "-students", "300", "-prequeue", "2s"))
	})
	t.Run("ws-holders", func(t *testing.T) {
		bin := buildLoadgen(t)
		rep := runEngineAgainstRealAPI(t, "-students", "300", "-prequeue", "2s", "-ws-procs", "2", "-ws-holder-bin", bin)
		if rep.Run.WSHolders != 2 {
			t.Errorf("ws-holders %d, want 2", rep.Run.WSHolders)
		}
		checkPrequeueRun(t, rep)
	})
}

func checkPrequeueRun(t *testing.T, rep Report) {
	t.Helper()
	p := rep.Prequeue
	if p == nil {
		t.Fatal("no prequeue section in the report")
	}
	t.Logf("prequeue: %+v", *p)
	if p.Prequeued != rep.Requested || len(p.ErrorsByCode) != 0 || p.EntriesSent != rep.Requested {
		t.Errorf("entries: %d sent, %d requested, %d prequeued, errors %v; want every entry prequeued",
			p.EntriesSent, rep.Requested, p.Prequeued, p.ErrorsByCode)
	}
	if drawn, refused := p.Admitted, sum(p.RefusedByCode); drawn+refused != p.Prequeued || drawn == 0 {
		t.Errorf("drawn %d + refused %d (%v) ≠ prequeued %d", drawn, refused, p.RefusedByCode, p.Prequeued)
	}
	if p.Undrawn != 0 || p.Missing != 0 || p.Unlearned != 0 || p.FrameGETMismatches != 0 || !p.accounted() {
		t.Errorf("entries not accounted for: undrawn %d missing %d unlearned %d mismatches %d", p.Undrawn, p.Missing, p.Unlearned, p.FrameGETMismatches)
	}
	if p.State != "done" || p.TotalDrawn != p.Prequeued || p.Cursor != p.TotalDrawn || p.Students != 300 || p.ServerEntries != p.Prequeued {
		t.Errorf("server: state %q, %d drawn (cursor %d), %d entries, %d students; want done, %d entries of 300 students",
			p.State, p.TotalDrawn, p.Cursor, p.ServerEntries, p.Students, p.Prequeued)
	}
	if rep.Admitted != p.Admitted || rep.Lost != 0 || rep.Duplicated != 0 || rep.Unresolved != 0 {
		t.Errorf("admitted %d (drawn %d), lost %d, duplicated %d, unresolved %d", rep.Admitted, p.Admitted, rep.Lost, rep.Duplicated, rep.Unresolved)
	}
	if rep.SoldOutEarly != p.RefusedByCode["sold_out"] {
		t.Errorf("sold out early %d, refused by the draw %v", rep.SoldOutEarly, p.RefusedByCode)
	}
	if p.DrawS <= 0 || p.LearnedS <= 0 || p.Learners != 300 || p.TimeToKnowMS.N != 300 || p.OpenAttempts != 1 || p.OpenedAtS < 2 {
		t.Errorf("draw_s %g, learned_s %g by %d students (%d times), %d open attempts, opened at %gs",
			p.DrawS, p.LearnedS, p.Learners, p.TimeToKnowMS.N, p.OpenAttempts, p.OpenedAtS)
	}
	// How they learned: the students with a session by drawn frames (no
	// HTTP read unless an entry was untold at the opened frame), the others
	// with one GET each.
	if p.WithSession != rep.WS.Connected || p.LearnedViaWS == 0 || p.LearnedViaWS+p.LearnedViaGET != p.Learners {
		t.Errorf("learned via ws %d, via GET %d, of %d (%d with a session, %d connected)",
			p.LearnedViaWS, p.LearnedViaGET, p.Learners, p.WithSession, rep.WS.Connected)
	}
	if p.ReadsNoSession != p.Learners-p.WithSession || p.ReadsFallback != 0 ||
		p.LearnedViaGET != p.ReadsNoSession+p.ReadsMissing || p.LearnedViaWS+p.ReadsMissing != p.WithSession {
		t.Errorf("GET reads: %d without a session (want %d), %d for untold entries, %d fallback; learned via GET %d",
			p.ReadsNoSession, p.Learners-p.WithSession, p.ReadsMissing, p.ReadsFallback, p.LearnedViaGET)
	}
	if p.ReadsMissing != 0 && rep.WS.ServerCloses == 0 {
		t.Errorf("%d students with a session missed a drawn frame, and no connection was closed", p.ReadsMissing)
	}
	if p.EntriesByFrame+p.EntriesByGET != p.Prequeued || p.DrawnFrames != p.EntriesByFrame+p.StrayFrames || p.StrayFrames != 0 ||
		p.OpenedFrames < p.WithSession {
		t.Errorf("frames: %d drawn (%d stray) told %d entries, GET %d, of %d prequeued; %d opened frames for %d sessions",
			p.DrawnFrames, p.StrayFrames, p.EntriesByFrame, p.EntriesByGET, p.Prequeued, p.OpenedFrames, p.WithSession)
	}
	if rep.AdmissionSpanS != p.DrawS || !strings.Contains(rep.Targets[0].Name, "draw") || rep.Targets[0].Value != p.AdmittedS ||
		p.AdmittedS <= 0 || p.AdmittedS > p.DrawS+0.002 || p.AdmittedS < p.ServerDrawS-0.002 {
		t.Errorf("admission is the draw: span %g, target %+v, draw_s %g, admitted_s %g, server draw %g",
			rep.AdmissionSpanS, rep.Targets[0], p.DrawS, p.AdmittedS, p.ServerDrawS)
	}
	if rep.PositionIncreases != 0 || rep.WS.UnknownFrames != 0 || rep.WS.BadFrames != 0 {
		t.Errorf("position increases %d, ws %+v", rep.PositionIncreases, rep.WS)
	}
}

// runEngineAgainstRealAPI runs loadgen with extra arguments and checks what
// every such run must show.
func runEngineAgainstRealAPI(t *testing.T, extra ...string) Report {
	t.Helper()
	db := dbtest.New(t)
	_, term := dbtest.Redis(t) // a term of its own, its keys removed at the end
	rng := rand.New(rand.NewPCG(5, 6))
	dbtest.SeedCourses(t, db.DB, dbtest.RandomCatalog(rng, 30, 12))

	apiBin, wsBin := buildBinaries(t)
	apiAddr, wsAddr := freePort(t), freePort(t)
	secret := dbtest.UniqueName("secret-")
	env := []string{
		"ENROLLQ_DB_DSN=" + db.DSN, "ENROLLQ_REPLICA_DSN=" + db.DSN, "ENROLLQ_REDIS_ADDR=" + dbtest.RedisAddr(),
		"ENROLLQ_TERM=" + term, "ENROLLQ_TOKEN_SECRET=" + secret, "ENROLLQ_ADMIN_USER=admin", "ENROLLQ_ADMIN_PASSWORD=admin-pw",
		"ENROLLQ_DEV=1", // development mode, explicitly: the secret is short and the admin password public
		"ENROLLQ_WS_PUBLIC_URL=/ws", "ENROLLQ_BATCH_SIZE=50", "ENROLLQ_SEARCH_INDEX=" + term,
	}
	startProcess(t, apiBin, append(env, "ENROLLQ_HTTP_ADDR="+apiAddr), "http://"+apiAddr+"/healthz")
	startProcess(t, wsBin, append(env, "ENROLLQ_WS_ADDR="+wsAddr), "http://"+wsAddr+"/healthz")

	out := t.TempDir()
	if d := os.Getenv("LOADGEN_TEST_OUT"); d != "" {
		out = d // keep the reports of the test run
	}
	args := []string{
		"-url", "http://" + apiAddr, "-ws-direct", "ws://" + wsAddr + "/ws",
		"-students", "200", "-ramp", "1s", "-concurrency", "32", "-cart", "1-3",
		"-popular-share", "0.4", "-popular-count", "3", "-cancel-rate", "0.1", "-drop-rate", "0.05",
		"-ws-share", "0.8", "-max-duration", "2m", "-reset", "-quiet",
		"-db", db.DSN, "-redis", dbtest.RedisAddr(), "-term", term,
		"-admin-user", "admin", "-admin-password", "admin-pw", "-out", out, "-sources", "127.0.0.1-127.0.0.4",
		"-api-metrics", apiAddr,
	}
	args = append(args, extra...)
	t.Setenv("ENROLLQ_TOKEN_SECRET", secret)
	t.Setenv("ENROLLQ_BCRYPT_COST", "4")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	rep, err := mainRun(ctx, args, &stdout, &stderr)
	if err != nil {
		t.Fatalf("loadgen: %v\n%s", err, stderr.String())
	}
	t.Log(stderr.String()[max(0, stderr.Len()-3000):])
	var printed Report
	if err := json.Unmarshal(stdout.Bytes(), &printed); err != nil || printed.Requested != rep.Requested {
		t.Errorf("stdout is not the JSON report: %v", err)
	}
	if !rep.LawsOK {
		t.Errorf("laws broken: %+v", rep)
	}
	if rep.Requested < 200 || rep.Answered != rep.Requested {
		t.Errorf("requested %d answered %d", rep.Requested, rep.Answered)
	}
	if rep.Admitted == 0 || rep.Enrolled == 0 {
		t.Errorf("admitted %d enrolled %d: the burst did nothing", rep.Admitted, rep.Enrolled)
	}
	// 30 sections of at most 12 seats for 200 students with carts of 1-3:
	// the popular ones sell out at admission.
	if rep.SoldOutEarly == 0 {
		t.Errorf("no early sold-out: %v", rep.RefusedByCode)
	}
	if got := rep.Enrolled + rep.Cancelled + sum(rep.RejectedByReason); got != rep.Admitted {
		t.Errorf("decisions %d ≠ admitted %d", got, rep.Admitted)
	}
	if rep.WS.Connected < 100 || rep.WS.ConnectFailed != 0 {
		t.Errorf("queue-ws: %d connected, %d failed (%v)", rep.WS.Connected, rep.WS.ConnectFailed, rep.WS.ConnectErrors)
	}
	if rep.Sources[srcWS] == 0 {
		t.Errorf("no result came over queue-ws: sources %v", rep.Sources)
	}
	if rep.Actions.CancelsSent == 0 || rep.Actions.CancelErrors != 0 || rep.Actions.DropErrors != 0 {
		t.Errorf("actions: %+v", rep.Actions)
	}
	// Every admission request the api handled during the run, counted once
	// in its own histogram (a retry is another request).
	sa, retries := rep.ServerAdmissionLatencyMS, rep.Actions.Retries429+rep.Actions.TransportRtry
	if int64(sa.N) < rep.Requested || int64(sa.N) > rep.Requested+retries || sa.P50 <= 0 || sa.P99 < sa.P50 {
		t.Errorf("server-side admission latency %+v for %d requests sent (%d retries)", sa, rep.Requested, retries)
	}
	if rep.AdmissionLatencyMS.N == 0 || len(rep.Series) == 0 || len(rep.LatencyHistogram) == 0 {
		t.Errorf("report misses data: latency %+v, %d points", rep.AdmissionLatencyMS, len(rep.Series))
	}
	for _, f := range []string{"report.json", "report.html"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	return rep
}
