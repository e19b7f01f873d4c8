package profiling

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
)

func TestServeLoopbackOnly(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, addr := range []string{"0.0.0.0:0", "192.0.2.1:0", ":0", "localhost"} {
		if stop, err := Serve(addr, log); err == nil {
			stop()
			t.Errorf("Serve(%q): want an error (not a loopback address)", addr)
		}
	}
}

func TestServeAnswersAndStops(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	stop, err := Serve(addr, log)
	if err != nil {
		t.Fatalf("Serve(%q): %v", addr, err)
	}
	resp, err := http.Get("http://" + addr + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatalf("GET cmdline: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "profiling.test") {
		t.Fatalf("GET cmdline: %d %q, want 200 with the test binary's name", resp.StatusCode, body)
	}
	stop()
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Fatalf("still listening on %s after stop", addr)
	}
}
