package nginx_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// apiErrorBody is every API error's shape (docs/API.md, "Error codes").
type apiErrorBody struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		MessageEn string `json:"message_en"`
	} `json:"error"`
}

// TestGatewayErrorsAreAPIErrors: when nginx itself fails a request (no api
// instance reachable: 502; none answering in time: 504) the client gets an
// API error — JSON with a stable code and a Korean and an English message —
// not nginx's HTML page. Errors an api sends (here 503 "opening", which the
// pre-queue page acts on) pass through unchanged.
func TestGatewayErrorsAreAPIErrors(t *testing.T) {
	check := func(t *testing.T, base string, wantStatus int, wantCode string) {
		t.Helper()
		resp, raw := getThrough(t, base, "/api/v1/courses")
		var body apiErrorBody
		if resp.StatusCode != wantStatus || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
			json.Unmarshal(raw, &body) != nil || body.Error.Code != wantCode {
			t.Fatalf("got %d %q %q; want %d application/json with code %q", resp.StatusCode, resp.Header.Get("Content-Type"), raw, wantStatus, wantCode)
		}
		if body.Error.Message == "" || body.Error.MessageEn == "" || body.Error.Message == body.Error.MessageEn {
			t.Fatalf("code %s: want a Korean and an English message, got %q / %q", wantCode, body.Error.Message, body.Error.MessageEn)
		}
	}

	t.Run("no instance reachable", func(t *testing.T) {
		base := startNginx(t, map[string]string{
			"API_1": freeAddr(t), "API_2": freeAddr(t),
			"WS_1": freeAddr(t), "WS_2": freeAddr(t), "WS_MORE": "",
		})
		check(t, base, http.StatusBadGateway, "bad_gateway")
	})

	t.Run("no instance answers in time", func(t *testing.T) {
		a, b := stalledListener(t), stalledListener(t)
		base := startNginx(t, map[string]string{
			"API_1": a.Addr().String(), "API_2": b.Addr().String(),
			"WS_1": freeAddr(t), "WS_2": freeAddr(t), "WS_MORE": "",
		})
		check(t, base, http.StatusGatewayTimeout, "gateway_timeout")
	})

	t.Run("the api's own error passes through", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"error":{"code":"opening","message":"수강신청을 여는 중입니다.","message_en":"Registration is opening."}}`)
		})}
		go func() { _ = srv.Serve(l) }()
		defer srv.Close()
		base := startNginx(t, map[string]string{
			"API_1": l.Addr().String(), "API_2": l.Addr().String(),
			"WS_1": freeAddr(t), "WS_2": freeAddr(t), "WS_MORE": "",
		})
		check(t, base, http.StatusServiceUnavailable, "opening")
	})
}
