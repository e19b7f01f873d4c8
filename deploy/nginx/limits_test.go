package nginx_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// okAPI is an upstream answering every request 200 and counting them.
func okAPI(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String(), &n
}

func checkAPIError(t *testing.T, resp *http.Response, raw []byte, status int, code string) {
	t.Helper()
	var body apiErrorBody
	if resp.StatusCode != status || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
		json.Unmarshal(raw, &body) != nil || body.Error.Code != code || body.Error.Message == "" || body.Error.MessageEn == "" {
		t.Fatalf("got %d %q %q; want %d application/json with code %q and both messages",
			resp.StatusCode, resp.Header.Get("Content-Type"), raw, status, code)
	}
}

func post(t *testing.T, url, ctype string, body []byte) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Post(url, ctype, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, raw
}

// TestBodyCapsAndInternals: a 15 MB login body is refused by nginx with
// the API's 413 payload_too_large (the api never sees it); the CSV upload
// locations take megabytes; /metrics, /readyz and /debug/ are not served
// to the outside, /healthz is.
func TestBodyCapsAndInternals(t *testing.T) {
	api, hits := okAPI(t)
	base := startNginx(t, map[string]string{"API_1": api, "API_2": api, "WS_1": freeAddr(t), "WS_2": freeAddr(t), "WS_MORE": ""})

	resp, raw := post(t, base+"/api/v1/auth/login", "application/json", bytes.Repeat([]byte("a"), 15<<20))
	checkAPIError(t, resp, raw, http.StatusRequestEntityTooLarge, "payload_too_large")
	if hits.Load() != 0 {
		t.Fatalf("the api saw %d requests, want the body refused by nginx", hits.Load())
	}
	if resp, raw := post(t, base+"/api/v1/auth/login", "application/json", []byte(`{"student_no":"1","password":"x"}`)); resp.StatusCode != http.StatusOK {
		t.Fatalf("a small login: %d %s", resp.StatusCode, raw)
	}
	for _, p := range []string{"/api/v1/admin/catalog", "/api/v1/admin/students"} {
		if resp, raw := post(t, base+p, "text/csv", bytes.Repeat([]byte("x"), 2<<20)); resp.StatusCode != http.StatusOK {
			t.Fatalf("2 MB upload to %s: %d %s", p, resp.StatusCode, raw)
		}
	}
	if resp, raw := post(t, base+"/api/v1/admin/catalog", "text/csv", bytes.Repeat([]byte("x"), 18<<20)); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("18 MB upload: %d %s", resp.StatusCode, raw)
	}

	before := hits.Load()
	for _, p := range []string{"/metrics", "/readyz", "/debug/pprof/", "/metrics/", "//metrics", "/%6detrics", "/readyz?x=1"} {
		resp, raw := getThrough(t, base, p)
		checkAPIError(t, resp, raw, http.StatusNotFound, "not_found")
	}
	if hits.Load() != before {
		t.Fatalf("internal paths reached the api")
	}
	if resp, _ := getThrough(t, base, "/healthz"); resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz through nginx: %d", resp.StatusCode)
	}
}

// TestRequestLimit: one address flooding the api gets 429 rate_limited
// (as JSON) from nginx once past the burst, while a browser's pace is never
// limited. The template exempts loopback (the load generator, operators):
// the test renders it without that exemption.
func TestRequestLimit(t *testing.T) {
	api, _ := okAPI(t)
	base := startNginxWith(t, map[string]string{"API_1": api, "API_2": api, "WS_1": freeAddr(t), "WS_2": freeAddr(t), "WS_MORE": ""},
		func(conf string) string {
			if !strings.Contains(conf, "127.0.0.0/8    \"\";") {
				t.Fatal("the template no longer exempts loopback as this test expects")
			}
			conf = strings.Replace(conf, "127.0.0.0/8    \"\";", "", 1)
			return strings.Replace(conf, "::1            \"\";", "", 1)
		})

	// A browser: 20 requests, a few at a time.
	for i := range 20 {
		if resp, raw := getThrough(t, base, "/api/v1/courses"); resp.StatusCode != http.StatusOK {
			t.Fatalf("browser request %d: %d %s", i, resp.StatusCode, raw)
		}
	}
	// A flood: 2,000 requests as fast as 32 connections go.
	var limited, ok atomic.Int64
	var wg sync.WaitGroup
	var bad atomic.Value
	tr := &http.Transport{MaxIdleConnsPerHost: 32}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2000 / 32 {
				resp, err := hc.Get(base + "/api/v1/courses")
				if err != nil {
					bad.Store(err.Error())
					return
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusOK:
					ok.Add(1)
				case http.StatusTooManyRequests:
					var body apiErrorBody
					if json.Unmarshal(raw, &body) != nil || body.Error.Code != "rate_limited" || resp.Header.Get("Retry-After") == "" {
						bad.Store("429 without the API error: " + string(raw))
					}
					limited.Add(1)
				default:
					bad.Store(resp.Status)
				}
			}
		}()
	}
	wg.Wait()
	if v := bad.Load(); v != nil {
		t.Fatal(v)
	}
	if limited.Load() == 0 || ok.Load() < 300 { // the burst (400) less the browser's 20, and the rate
		t.Fatalf("flood: %d ok, %d limited; want the burst through and the rest limited", ok.Load(), limited.Load())
	}
}
