package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/enrollq/enrollq/cmd/loadgen/students"
	"github.com/enrollq/enrollq/internal/auth"
	"github.com/enrollq/enrollq/internal/config"
	"github.com/enrollq/enrollq/internal/dbtest"
)

func TestIssueTokens(t *testing.T) {
	h := setup(t)
	dbtest.SeedStudents(t, h.db.DB, 30, 18, "")
	out := filepath.Join(t.TempDir(), "tokens.csv")
	if code := h.run("issue-tokens", "--out", out, "--count", "25", "--ttl", "30m"); code != 0 {
		t.Fatalf("issue-tokens: exit %d", code)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	toks, err := students.ReadCSV(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(toks) != 25 {
		t.Fatalf("%d tokens, want 25", len(toks))
	}
	// The API verifies them with the same secret.
	signer := auth.NewSigner(config.DevTokenSecret)
	for _, tk := range toks {
		c, err := signer.Verify(tk.Token, auth.KindStudent)
		if err != nil || c.Subject != tk.StudentID || c.StudentNo != tk.StudentNo {
			t.Fatalf("token of %+v: %+v, %v", tk, c, err)
		}
	}
	if !strings.Contains(h.stderr.String(), "25 tokens") {
		t.Errorf("stderr: %s", h.stderr.String())
	}

	if code := h.run("issue-tokens", "--count", "5"); code != 2 {
		t.Errorf("without --out: exit %d, want 2", code)
	}
	if code := h.run("issue-tokens", "--out", out, "--count", "31"); code != 1 {
		t.Errorf("more than the roster: exit %d, want 1", code)
	}
	if code := h.run("issue-tokens", "--out", "-", "--count", "2"); code != 0 || strings.Count(h.stdout.String(), "\n") != 3 {
		t.Errorf("to stdout: exit %d, %q", code, h.stdout.String())
	}
}
