package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/enrollq/enrollq/cmd/loadgen/students"
	"github.com/enrollq/enrollq/internal/auth"
)

// issueTokensCommand prepares a load test: student access tokens signed with
// the configured secret, as if every student had logged in before
// registration opened (see cmd/loadgen/students for why that is the honest
// equivalent of 100,000 logins ahead of time).
var issueTokensCommand = command{
	usage:   "--out FILE [--count N] [--ttl 2h]",
	summary: "write student_id,student_no,year,token for the first N students (load tests, JMeter)",
	run:     runIssueTokens,
}

func runIssueTokens(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("issue-tokens")
	out := fs.String("out", "", "output CSV file (- for stdout)")
	count := fs.Int("count", 0, "number of students, by id (0: every student)")
	ttl := fs.Duration("ttl", 2*time.Hour, "token lifetime")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) != 0:
		return usagef("unexpected argument %q", pos[0])
	case *out == "":
		return usagef("--out is required")
	case *count < 0:
		return usagef("--count must not be negative")
	case *ttl <= 0:
		return usagef("--ttl must be positive")
	}
	if err := a.cfg.CheckSecret(); err != nil {
		return err
	}
	db, err := a.openDB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	toks, err := students.Issue(ctx, db, auth.NewSigner(a.cfg.TokenSecret), *count, *ttl)
	if err != nil {
		return err
	}
	if *out == "-" {
		w := bufio.NewWriter(a.stdout)
		if err := students.WriteCSV(w, toks); err != nil {
			return err
		}
		return w.Flush()
	}
	tmp, err := os.CreateTemp(filepath.Dir(*out), "."+filepath.Base(*out)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	w := bufio.NewWriter(tmp)
	if err := students.WriteCSV(w, toks); err != nil {
		tmp.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "issue-tokens: %d tokens valid for %s written to %s\n", len(toks), *ttl, *out)
	return nil
}
