package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/enrollq/enrollq/internal/config"
)

func TestParseTrustedProxies(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		bad  bool
	}{
		{in: "", want: []string{"127.0.0.1", "::1"}},
		{in: "   ", want: []string{"127.0.0.1", "::1"}},
		{in: "10.0.0.1", want: []string{"10.0.0.1"}},
		{in: " 127.0.0.1 , ::1,172.28.0.0/16 ", want: []string{"127.0.0.1", "::1", "172.28.0.0/16"}},
		{in: "fd00::/8,10.1.2.3", want: []string{"fd00::/8", "10.1.2.3"}},
		{in: "10.0.0.1,", bad: true},
		{in: "10.0.0.1,,10.0.0.2", bad: true},
		{in: "nginx", bad: true},
		{in: "10.0.0.256", bad: true},
		{in: "10.0.0.0/33", bad: true},
		{in: "10.0.0.1/", bad: true},
		{in: "10.0.0.1 10.0.0.2", bad: true},
	} {
		got, err := parseTrustedProxies(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: accepted as %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%q: %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestInvalidTrustedProxyFailsStartup: newServer refuses an invalid entry.
func TestInvalidTrustedProxyFailsStartup(t *testing.T) {
	t.Setenv("ENROLLQ_TRUSTED_PROXIES", "127.0.0.1,not-an-ip")
	_, err := newServer(context.Background(), config.Config{}, &deps{}, prometheus.NewRegistry(), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "not-an-ip") {
		t.Fatalf("newServer: %v, want an error naming the bad entry", err)
	}
}

// TestMethodLabelBounded: 10,000 random method strings leave the request
// metric with a handful of series.
func TestMethodLabelBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := &server{metrics: newMetrics(reg), reg: reg}
	h := s.routes()
	const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_!#$%&'*+.^`|~"
	for range 10000 {
		m := make([]byte, 1+rand.IntN(12))
		for i := range m {
			m[i] = letters[rand.IntN(len(letters))]
		}
		req := httptest.NewRequest(http.MethodGet, "/api/v1/admin/window", nil)
		req.Method = string(m)
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series, methods := 0, map[string]bool{}
	for _, mf := range mfs {
		if mf.GetName() != "enrollq_http_request_duration_seconds" {
			continue
		}
		series = len(mf.GetMetric())
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "method" {
					methods[l.GetValue()] = true
				}
			}
		}
	}
	if series == 0 || series > 2*len(knownMethods)+2 || len(methods) > len(knownMethods)+1 {
		t.Fatalf("%d series, methods %v: want a bounded set", series, methods)
	}
}

// TestReadyzCachedWithoutErrorText: a flood of /readyz runs the backend
// probes once a second, and the answer carries no internal error text.
func TestReadyzCachedWithoutErrorText(t *testing.T) {
	var probes atomic.Int64
	secret := "dial tcp 10.9.8.7:3306: connect: connection refused"
	probe := func(ctx context.Context) map[string]any {
		probes.Add(1)
		return map[string]any{"ok": false, "primary": obj{"ok": false, "error": secret}, "redis": obj{"ok": true}}
	}
	reg := prometheus.NewRegistry()
	s := &server{metrics: newMetrics(reg), reg: reg, ready: cachedReadiness(probe, time.Second, nil)}
	h := s.routes()
	for range 1000 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		if w.Code != http.StatusServiceUnavailable {
			t.Fatalf("readyz %d, want 503", w.Code)
		}
		if strings.Contains(w.Body.String(), "10.9.8.7") || strings.Contains(w.Body.String(), "error") {
			t.Fatalf("readyz answers internal text: %s", w.Body)
		}
	}
	if n := probes.Load(); n != 1 {
		t.Fatalf("%d probe rounds for 1000 calls within a second, want 1", n)
	}
}

// TestBodyLimits: a 15 MB body to /api/v1/auth/login is 413
// payload_too_large, declared or not, and through a real listener; JSON is
// strict (unknown fields and trailing data are 400 bad_request).
func TestBodyLimits(t *testing.T) {
	e := newTestEnv(t, 1)
	big := bytes.Repeat([]byte("a"), 15<<20)
	body := append(append([]byte(`{"student_no":"`), big...), `","password":"x"}`...)

	r := e.do(http.MethodPost, "/api/v1/auth/login", "", body)
	if r.Code != http.StatusRequestEntityTooLarge || r.errCode() != "payload_too_large" {
		t.Fatalf("declared 15 MB: %d %s", r.Code, r.Body)
	}
	// Undeclared length (chunked): cut off by MaxBytesReader.
	req := httptest.NewRequest(http.MethodPost, "/api/v1/auth/login", io.MultiReader(bytes.NewReader(body)))
	req.ContentLength = -1
	req.RemoteAddr = "127.0.0.1:40000"
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	if w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(w.Body.String(), "payload_too_large") {
		t.Fatalf("chunked 15 MB: %d %s", w.Code, w.Body)
	}
	// Over a real connection, with the api's http.Server.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := newHTTPServer("", e.h)
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	resp, err := http.Post("http://"+ln.Addr().String()+"/api/v1/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(raw), "payload_too_large") {
		t.Fatalf("over the wire: %d %s", resp.StatusCode, raw)
	}

	for _, b := range []string{
		`{"student_no":"202600000","password":"x","admin":true}`,
		`{"student_no":"202600000","password":"x"} {"x":1}`,
		`{"student_no":"202600000","password":"x"}garbage`,
		`{"student_no":"202600000","password":"x"`,
		``, `null`, `[]`,
	} {
		if r := e.do(http.MethodPost, "/api/v1/auth/login", "", b); r.Code != http.StatusBadRequest || r.errCode() != "bad_request" {
			t.Errorf("login body %q: %d %s, want 400 bad_request", b, r.Code, r.Body)
		}
	}
	// White space after the value is fine; the body reaches the check.
	if r := e.do(http.MethodPost, "/api/v1/auth/login", "", "{\"student_no\":\"202600000\",\"password\":\"wrong-password\"}\n \t"); r.Code != http.StatusUnauthorized {
		t.Errorf("trailing white space: %d %s, want 401", r.Code, r.Body)
	}
	if r := e.do(http.MethodPost, "/api/v1/cart", e.token(0), `{"course_id":1,"course_ids":[1]}`); r.Code != http.StatusBadRequest {
		t.Errorf("cart with an unknown field: %d %s", r.Code, r.Body)
	}
	if r := e.do(http.MethodPost, "/api/v1/enrollments", e.token(0), fmt.Sprintf(`{"course_id":%d}{}`, e.courses[4])); r.Code != http.StatusBadRequest || r.errCode() != "bad_request" {
		t.Errorf("admission with trailing data: %d %s", r.Code, r.Body)
	}
	// A CSV upload may be megabytes; 64 KiB of JSON is not.
	mid := `{"open":true,"pad":"` + strings.Repeat("a", 70<<10) + `"}`
	if r := e.do(http.MethodPost, "/api/v1/admin/window", e.adminToken(), mid); r.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("70 KiB JSON: %d, want 413", r.Code)
	}
	csv := multipartFile(t, "catalog.csv", bytes.Repeat([]byte("x"), 1<<20))
	if r := e.do(http.MethodPost, "/api/v1/admin/catalog", e.adminToken(), csv); r.Code == http.StatusRequestEntityTooLarge {
		t.Errorf("1 MB CSV upload refused as too large: %s", r.Body)
	}
	huge := multipartFile(t, "catalog.csv", bytes.Repeat([]byte("x"), 18<<20))
	if r := e.do(http.MethodPost, "/api/v1/admin/catalog", e.adminToken(), huge); r.Code != http.StatusRequestEntityTooLarge || r.errCode() != "payload_too_large" {
		t.Errorf("18 MB CSV upload: %d %s, want 413", r.Code, r.Body)
	}
}

// TestSlowLorisCutOff: a client sending its request headers one byte a
// second is disconnected within the api's header timeout.
func TestSlowLorisCutOff(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := newHTTPServer("", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 100)
	start := time.Now()
	buf := make([]byte, 512)
	for i := 0; ; i++ {
		if _, err := c.Write([]byte{req[i%len(req)]}); err != nil {
			break
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		_, err := c.Read(buf)
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			break // EOF or reset: cut off
		}
		if time.Since(start) > apiReadHeaderTimeout+3*time.Second {
			t.Fatalf("still connected after %v", time.Since(start).Round(time.Millisecond))
		}
	}
	if took := time.Since(start); took > apiReadHeaderTimeout+1500*time.Millisecond {
		t.Fatalf("cut off after %v, want within %v", took.Round(time.Millisecond), apiReadHeaderTimeout)
	}
}
