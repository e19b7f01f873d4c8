package main

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/enrollq/enrollq/internal/auth"
	"github.com/enrollq/enrollq/internal/config"
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
