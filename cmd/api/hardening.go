package main

// Edges of the HTTP adapter (issue #16): server timeouts, body caps, strict
// JSON, a bounded method label, strictly parsed trusted proxies and a cached
// readiness report without internal error text.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gin-gonic/gin/binding"
)

// Body caps: every JSON route gets maxJSONBody; the CSV uploads
// (uploadRoutes) get maxUpload plus room for the multipart framing. nginx
// has the same split (client_max_body_size, deploy/nginx/nginx.conf).
const (
	maxJSONBody   = 64 << 10
	maxUploadBody = maxUpload + 1<<20
)

// uploadRoutes are the multipart CSV uploads (method and path).
var uploadRoutes = map[string]bool{
	"POST /api/v1/admin/catalog":  true,
	"POST /api/v1/admin/students": true,
}

// bodyLimit caps the request body: a declared length over the cap is
// answered 413 payload_too_large at once, an undeclared one is cut off by
// http.MaxBytesReader when the handler reads past the cap (and answered 413
// by bindJSON / the upload handler).
func bodyLimit(c *gin.Context) {
	limit := int64(maxJSONBody)
	if uploadRoutes[c.Request.Method+" "+c.Request.URL.Path] {
		limit = maxUploadBody
	}
	if c.Request.ContentLength > limit {
		c.Header("Connection", "close") // the rest of the body is not read
		abort(c, errPayloadTooLarge)
		return
	}
	if c.Request.Body != nil && c.Request.Body != http.NoBody {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit)
	}
	c.Next()
}

var errTrailingData = errors.New("trailing data after the JSON value")

// decodeStrict decodes one JSON value into dst: unknown fields and anything
// but white space after the value are refused, then dst's binding tags are
// checked (as ShouldBindJSON would).
func decodeStrict(r *http.Request, dst any) error {
	if r.Body == nil {
		return io.EOF
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err == nil {
			return errTrailingData
		}
		return err
	}
	return binding.Validator.ValidateStruct(dst)
}

// bodyError is the API error of a body decodeStrict refused.
func bodyError(err error) apiError {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errPayloadTooLarge
	}
	return errBadJSON
}

// knownMethods are the HTTP methods the metrics name; any other method
// string a client sends is counted as "other", so it cannot mint series.
var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
	http.MethodConnect: true, http.MethodTrace: true,
}

func methodLabel(m string) string {
	if knownMethods[m] {
		return m
	}
	return "other"
}

// parseTrustedProxies parses ENROLLQ_TRUSTED_PROXIES: comma-separated IP
// addresses or CIDR prefixes, blanks around entries ignored; empty means
// loopback (nginx on the same host). An entry that is neither is an error:
// a typo must not silently trust nobody (every campus address collapsing
// into nginx's) or everybody.
func parseTrustedProxies(v string) ([]string, error) {
	if strings.TrimSpace(v) == "" {
		return []string{"127.0.0.1", "::1"}, nil
	}
	var out []string
	for _, p := range strings.Split(v, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, fmt.Errorf("ENROLLQ_TRUSTED_PROXIES=%q: empty entry", v)
		}
		if strings.Contains(p, "/") {
			if _, err := netip.ParsePrefix(p); err != nil {
				return nil, fmt.Errorf("ENROLLQ_TRUSTED_PROXIES: %q is not a CIDR prefix: %w", p, err)
			}
		} else if net.ParseIP(p) == nil {
			return nil, fmt.Errorf("ENROLLQ_TRUSTED_PROXIES: %q is not an IP address or CIDR prefix", p)
		}
		out = append(out, p)
	}
	return out, nil
}

// trustedProxies is ENROLLQ_TRUSTED_PROXIES parsed (see parseTrustedProxies).
func trustedProxies() ([]string, error) {
	ps, err := parseTrustedProxies(os.Getenv("ENROLLQ_TRUSTED_PROXIES"))
	if err != nil {
		return nil, err
	}
	// gin's own check, so that routes() cannot fail on what passed here.
	if err := gin.New().SetTrustedProxies(ps); err != nil {
		return nil, fmt.Errorf("ENROLLQ_TRUSTED_PROXIES: %w", err)
	}
	return ps, nil
}

// readyTTL is how long a readiness report is reused: a flood of /readyz
// costs one round of backend probes a second.
const readyTTL = time.Second

// cachedReadiness wraps a readiness check: one probe round per ttl (callers
// arriving meanwhile wait for it and share its answer), run on its own
// deadline so a caller that hangs up does not fail it, and with the
// components' error text logged rather than answered.
func cachedReadiness(probe func(ctx context.Context) map[string]any, ttl time.Duration, log *slog.Logger) func(ctx context.Context) map[string]any {
	var (
		mu   sync.Mutex
		at   time.Time
		last map[string]any
	)
	return func(ctx context.Context) map[string]any {
		mu.Lock()
		defer mu.Unlock()
		if last != nil && time.Since(at) < ttl {
			return last
		}
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		rep := probe(pctx)
		out := make(map[string]any, len(rep))
		for k, v := range rep {
			if o, ok := v.(obj); ok {
				c := obj{}
				for ok, ov := range o {
					if ok == "error" {
						if log != nil {
							log.Warn("readiness: component not ready", "component", k, "err", ov)
						}
						continue
					}
					c[ok] = ov
				}
				v = c
			}
			out[k] = v
		}
		last, at = out, time.Now()
		return out
	}
}

// Timeouts of the api's http.Server. Behind nginx requests arrive whole and
// fast (nginx buffers request bodies); these bound what a client talking to
// an api directly can hold. The window opening may run for minutes and
// extends its own deadlines (setWindow).
const (
	apiReadHeaderTimeout = 5 * time.Second
	apiReadTimeout       = 60 * time.Second
	apiWriteTimeout      = 120 * time.Second
	// Longer than nginx's upstream keepalive_timeout (60 s), so that nginx,
	// not the api, closes an idle keep-alive connection (no race with a
	// request nginx is just sending on it).
	apiIdleTimeout    = 90 * time.Second
	apiMaxHeaderBytes = 64 << 10
)

// newHTTPServer is the api's http.Server on addr serving h.
func newHTTPServer(addr string, h http.Handler) *http.Server {
	return &http.Server{Addr: addr, Handler: h,
		ReadHeaderTimeout: apiReadHeaderTimeout, ReadTimeout: apiReadTimeout, WriteTimeout: apiWriteTimeout,
		IdleTimeout: apiIdleTimeout, MaxHeaderBytes: apiMaxHeaderBytes}
}

// extendDeadlines lifts the server's read and write deadlines for a request
// that legitimately runs long (the window opening draws the pre-queue).
func extendDeadlines(c *gin.Context, d time.Duration) {
	rc := http.NewResponseController(c.Writer)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Now().Add(d))
}
