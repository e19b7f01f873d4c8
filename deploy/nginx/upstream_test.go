// Package nginx_test runs the real nginx on deploy/nginx/nginx.conf,
// rendered as scripts/services.sh renders it, against upstreams the test
// controls.
package nginx_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/enrollq/enrollq/internal/dbtest"
)

// TestAPIInstanceBackAtOnce: an api instance that nginx could not connect
// to in time (under the crowd, nginx's own workers lagged past
// proxy_connect_timeout on loopback) serves the next request as soon as it
// accepts again, while the other instance is dead (connection refused).
// With max_fails=3 fail_timeout=5s nginx marked both instances down after
// three failures each and answered every API call 502 "no live upstreams"
// for 5 s (pq100k-ws13-shares, docs/BENCHMARKS.md).
func TestAPIInstanceBackAtOnce(t *testing.T) {
	slow := stalledListener(t) // connects time out until it is served
	dead := freeAddr(t)        // nothing listens: the connection is refused
	base := startNginx(t, map[string]string{
		"API_1": dead, "API_2": slow.Addr().String(),
		"WS_1": freeAddr(t), "WS_2": freeAddr(t), "WS_MORE": "",
	})
	get := func() (int, string) {
		t.Helper()
		resp, b := getThrough(t, base, "/api/v1/courses")
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	// Three failures at each instance: every request tries both (a refused
	// connect, and a connect that times out after proxy_connect_timeout).
	var seen []int
	for range 3 {
		code, _ := get()
		if code == http.StatusOK {
			t.Fatalf("a request got through while no instance could answer (answers %v)", seen)
		}
		seen = append(seen, code)
	}
	// The instance accepts again: the very next request gets through.
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})}
	go func() { _ = srv.Serve(slow) }()
	defer srv.Close()
	for i := range 5 {
		if code, body := get(); code != http.StatusOK || body != "ok" {
			t.Fatalf("request %d after the instance recovered: %d %q, want 200 \"ok\" (answers before: %v)", i, code, body, seen)
		}
	}
}

// getThrough sends GET path to nginx at base and returns the answer with
// its body read.
func getThrough(t *testing.T, base, path string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(base + path)
	if err != nil {
		t.Fatalf("GET %s through nginx: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s through nginx: read the body: %v", path, err)
	}
	return resp, b
}

// stalledListener returns a loopback listener whose accept queue is full
// (backlog 0, one connection in it that is never accepted): a new
// connection's SYN is dropped, so connecting to it times out, until the
// listener is served.
func stalledListener(t *testing.T) net.Listener {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "stalled-listener")
	l, err := net.FileListener(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	filler, err := net.DialTimeout("tcp", l.Addr().String(), time.Second)
	if err != nil {
		t.Fatalf("fill the accept queue: %v", err)
	}
	t.Cleanup(func() { filler.Close() })
	if c, err := net.DialTimeout("tcp", l.Addr().String(), 300*time.Millisecond); err == nil {
		c.Close()
		t.Fatal("a connect to the stalled listener succeeded: the kernel does not drop SYNs on a full accept queue here")
	}
	return l
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// startNginx renders nginx.conf with one worker on a free port and the
// given upstreams, runs nginx in the foreground until the test ends, and
// returns its base URL.
func startNginx(t *testing.T, upstreams map[string]string) string {
	t.Helper()
	return startNginxWith(t, upstreams, nil)
}

// startNginxWith is startNginx with the template changed by edit first
// (nil: as it is).
func startNginxWith(t *testing.T, upstreams map[string]string, edit func(string) string) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/nginx"); err != nil {
			t.Fatalf("nginx not found (make up installs it): %v", err)
		}
	}
	tmpl, err := os.ReadFile("nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, d := range []string{"logs", "tmp", "web"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		t.Fatal(err)
	}
	listen := freeAddr(t)
	vals := map[string]string{
		"PREFIX": dir, "ERROR_LOG": filepath.Join(dir, "logs", "error.log"), "WEB": filepath.Join(dir, "web"),
		"USER": u.Username + " " + g.Name, "NOFILE": "4096", "WORKER_CONNECTIONS": "1024", "WORKERS": "1",
		"LISTEN": listen,
	}
	for k, v := range upstreams {
		vals[k] = v
	}
	conf := string(tmpl)
	if edit != nil {
		conf = edit(conf)
	}
	for k, v := range vals {
		conf = strings.ReplaceAll(conf, "@"+k+"@", v)
	}
	if i := strings.Index(conf, "@"); i >= 0 && strings.ContainsAny(conf[i+1:i+2], "ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
		t.Fatalf("unrendered placeholder near %q", conf[i:min(len(conf), i+20)])
	}
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-e", vals["ERROR_LOG"], "-c", path, "-g", "daemon off;")
	out, _ := os.Create(filepath.Join(dir, "nginx.out"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		out.Close()
	})
	base := "http://" + listen
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/nginx-health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(filepath.Join(dir, "nginx.out"))
			l, _ := os.ReadFile(vals["ERROR_LOG"])
			t.Fatalf("nginx exited: %s\n%s", b, l)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal(fmt.Sprintf("nginx did not answer on %s within 10 s: %v", listen, err))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestNginxCPUShare: the services script gives the session of the nginx
// that `make up` runs on 127.0.0.1:8080 (its master and workers) the
// scheduler weight ENROLLQ_NGINX_NICE (default -5; scripts/cpushare.sh):
// every API call and queue-ws frame crosses it, and with the default share
// its workers lagged past proxy_connect_timeout under the crowd.
func TestNginxCPUShare(t *testing.T) {
	pid, ok := dbtest.ListenerPID(t, 8080)
	if !ok {
		t.Fatal("no process listens on 127.0.0.1:8080 (is `make up` running?)")
	}
	dbtest.CheckCPUShare(t, "nginx", pid, "nginx", "ENROLLQ_NGINX_NICE", -5)
}
