package main

import (
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/enrollq/enrollq/internal/auth"
	"github.com/enrollq/enrollq/internal/config"
	"github.com/enrollq/enrollq/internal/positions"
	"github.com/enrollq/enrollq/internal/revocation"
)

// TestRevokedWSToken: a ws token carries its student's token version; after
// a bump (password change, registrar's revoke) the handshake is refused with
// 401 token_revoked, and a token of the current version still connects.
func TestRevokedWSToken(t *testing.T) {
	checkGoroutines(t)
	f := newFixture(t, 2, 2)
	f.versions = revocation.New(f.db.DB, f.rdb, f.term)
	ts := startServer(t, f, options{Tick: 100 * time.Millisecond})
	mine := f.reqs[0]
	old := f.wsToken(mine.student) // version 0
	ver, err := f.versions.Bump(f.ctx, revocation.Student, mine.student)
	if err != nil || ver != 1 {
		t.Fatalf("bump: %d, %v", ver, err)
	}
	_, resp, err := dialer.Dial(wsURL(ts.url, old, mine.id), nil)
	if err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("revoked ws token: %v %v", resp, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"token_revoked"`) || !strings.Contains(string(body), "message_en") {
		t.Errorf("revoked ws token answer: %s", body)
	}
	cur := f.signer.Issue(auth.Claims{Kind: auth.KindWS, Subject: mine.student, Version: 1}, time.Minute)
	c, _, err := dialer.Dial(wsURL(ts.url, cur, mine.id), nil)
	if err != nil {
		t.Fatalf("current ws token: %v", err)
	}
	c.Close()
}

// TestRevokeClosesOpenSockets: a bump ends the sockets already open with an
// older token (close 4010) at the next poll of the versions; a socket
// opened with the current version stays.
func TestRevokeClosesOpenSockets(t *testing.T) {
	checkGoroutines(t)
	f := newFixture(t, 2, 2)
	f.versions = revocation.New(f.db.DB, f.rdb, f.term)
	ts := startServer(t, f, options{Tick: 100 * time.Millisecond})
	mine, other := f.reqs[0], f.reqs[1]
	old, _, err := dialer.Dial(wsURL(ts.url, f.wsToken(mine.student), mine.id), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	bystander, _, err := dialer.Dial(wsURL(ts.url, f.wsToken(other.student), other.id), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bystander.Close()
	if _, err := f.versions.Bump(f.ctx, revocation.Student, mine.student); err != nil {
		t.Fatal(err)
	}
	cur := f.signer.Issue(auth.Claims{Kind: auth.KindWS, Subject: mine.student, Version: 1}, time.Minute)
	fresh, _, err := dialer.Dial(wsURL(ts.url, cur, mine.id), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	f.versions.Poll(f.ctx)
	f.versions.Poll(f.ctx) // told again within the overlap: changes nothing more
	_ = old.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := old.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != positions.CloseRevoked {
			t.Fatalf("revoked session ended with %v, want close %d", err, positions.CloseRevoked)
		}
		break
	}
	for name, c := range map[string]*websocket.Conn{"new token": fresh, "another student": bystander} {
		_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		for {
			_, _, err := c.ReadMessage()
			if err == nil {
				continue
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("%s: socket ended with %v, want it kept open", name, err)
			}
			break
		}
	}
}

// TestRefusesUnsafeStart: without ENROLLQ_DEV, queue-ws exits non-zero with
// a clear error when the token secret is missing, short or known.
func TestRefusesUnsafeStart(t *testing.T) {
	if os.Getenv("QUEUE_WS_MAIN") == "1" {
		os.Args = []string{"queue-ws"}
		main()
		return
	}
	for _, secret := range []string{"", "short-secret", config.DevTokenSecret} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRefusesUnsafeStart$")
		cmd.Env = append(os.Environ(), "QUEUE_WS_MAIN=1", "ENROLLQ_DEV=", "ENROLLQ_TOKEN_SECRET="+secret, "ENROLLQ_WS_ADDR=127.0.0.1:1")
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 || !strings.Contains(string(out), "ENROLLQ_TOKEN_SECRET") {
			t.Errorf("secret %q: %v: %s", secret, err, out)
		}
	}
}
