// Package ssotest starts the real OpenID Provider of tools/oidcprovider as a
// separate process for tests (built once per test binary, one process per
// test on a free port, stopped in Cleanup) and drives its login form the way
// a browser would.
package ssotest

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// User is an account at the provider.
type User struct {
	Username, Password, StudentNo string
}

// Provider is a running oidcprovider process.
type Provider struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	RedirectURI  string
}

var (
	buildMu  sync.Mutex
	builtBin string
)

// repoRoot is the module root (where go.mod is).
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("ssotest: go.mod not found above the working directory")
		}
		dir = parent
	}
}

func build(t testing.TB) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if builtBin != "" {
		return builtBin
	}
	dir, err := os.MkdirTemp("", "enrollq-oidcprovider-")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "oidcprovider")
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	cmd := exec.Command(goBin, "build", "-o", bin, "./tools/oidcprovider")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ssotest: go build ./tools/oidcprovider: %v\n%s", err, out)
	}
	builtBin = bin
	return bin
}

// FreePort returns a loopback port nothing listens on now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start runs a provider with one web client (redirectURI) and users until
// the test ends.
func Start(t testing.TB, redirectURI string, users ...User) *Provider {
	t.Helper()
	bin := build(t)
	port := FreePort(t)
	p := &Provider{Issuer: fmt.Sprintf("http://127.0.0.1:%d", port), ClientID: "enrollq-test",
		ClientSecret: "enrollq-test-secret", RedirectURI: redirectURI}
	args := []string{"-addr", fmt.Sprintf("127.0.0.1:%d", port), "-issuer", p.Issuer, "-client-id", p.ClientID,
		"-client-secret", p.ClientSecret, "-redirect-uri", redirectURI}
	for _, u := range users {
		args = append(args, "-user", u.Username+":"+u.Password+":"+u.StudentNo)
	}
	cmd := exec.Command(bin, args...)
	logf, err := os.CreateTemp("", "oidcprovider-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("oidcprovider log:\n%s", b)
		}
		logf.Close()
		os.Remove(logf.Name())
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := http.Get(p.Issuer + "/.well-known/openid-configuration")
		if err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("ssotest: oidcprovider did not come up: %v\n%s", err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var idField = regexp.MustCompile(`name="id" value="([^"]*)"`)

// Authorize follows authURL (the provider's authorization URL EnrollQ
// redirected to) to the provider's login form, signs in as username, and
// returns the URL the provider sends the browser back to (the redirect URI
// with code and state), without following it.
func (p *Provider) Authorize(t testing.TB, authURL, username, password string) *url.URL {
	t.Helper()
	iss, _ := url.Parse(p.Issuer)
	jar, _ := cookiejar.New(nil)
	var back *url.URL
	c := &http.Client{Jar: jar, Timeout: 20 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if req.URL.Host != iss.Host {
			back = req.URL
			return http.ErrUseLastResponse
		}
		return nil
	}}
	r, err := c.Get(authURL)
	if err != nil {
		t.Fatalf("ssotest: open %s: %v", authURL, err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if back != nil {
		return back // the provider answered at once (an error to the client)
	}
	m := idField.FindSubmatch(body)
	if r.StatusCode != 200 || m == nil {
		t.Fatalf("ssotest: no login form at %s (%d): %s", r.Request.URL, r.StatusCode, body)
	}
	form := url.Values{"id": {string(m[1])}, "username": {username}, "password": {password}}
	r, err = c.Post(p.Issuer+"/login/username", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatalf("ssotest: post login form: %v", err)
	}
	body, _ = io.ReadAll(r.Body)
	r.Body.Close()
	if back == nil {
		t.Fatalf("ssotest: the provider did not redirect back after login (%d): %s", r.StatusCode, body)
	}
	return back
}
