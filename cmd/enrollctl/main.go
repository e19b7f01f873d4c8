// Command enrollctl is the registrar's and operator's command-line tool:
// schema migrations, all-or-nothing catalog and roster imports, and
// generators for large test catalogs and rosters.
//
//	enrollctl migrate
//	enrollctl import-catalog FILE
//	enrollctl import-students FILE [--initial-password PW]
//	enrollctl gen-catalog --sections N --out FILE
//	enrollctl gen-students --students N --out FILE
//
// The database comes from ENROLLQ_DB_DSN (see internal/config). Exit status
// is 0 on success, 1 when the command failed (for imports: every bad row is
// listed on stderr and nothing was changed) and 2 for a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"

	"github.com/enrollq/enrollq/internal/catalog"
	"github.com/enrollq/enrollq/internal/config"
	"github.com/enrollq/enrollq/internal/store"
)

// command is one subcommand. Each lives in its own file; add new ones to
// the commands map.
type command struct {
	usage   string // arguments, shown after the command name
	summary string
	run     func(ctx context.Context, a *app, args []string) error
}

var commands = map[string]command{
	"migrate":         migrateCommand,
	"import-catalog":  importCatalogCommand,
	"import-students": importStudentsCommand,
	"gen-catalog":     genCatalogCommand,
	"gen-students":    genStudentsCommand,
	"issue-tokens":    issueTokensCommand,
}

// app is what every command gets: configuration and where to write. Tests
// build their own.
type app struct {
	cfg    config.Config
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	a := &app{cfg: config.FromEnv(), stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	code := run(ctx, a, os.Args[1:])
	stop()
	os.Exit(code)
}

// usageError marks a mistake in the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// run executes one command line and returns the exit status.
func run(ctx context.Context, a *app, args []string) int {
	if len(args) == 0 {
		printUsage(a.stderr)
		return 2
	}
	name := args[0]
	if name == "help" || name == "-h" || name == "--help" || name == "-help" {
		printUsage(a.stdout)
		return 0
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(a.stderr, "enrollctl: unknown command %q\n\n", name)
		printUsage(a.stderr)
		return 2
	}
	err := cmd.run(ctx, a, args[1:])
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(a.stderr, "enrollctl %s: %s\nusage: enrollctl %s %s\n", name, ue.msg, name, cmd.usage)
		return 2
	}
	fmt.Fprintf(a.stderr, "enrollctl %s: %v\n", name, err)
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number == 1146 {
		fmt.Fprintln(a.stderr, "hint: the schema is missing; run `enrollctl migrate` first")
	}
	return 1
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: enrollctl COMMAND [arguments]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		c := commands[n]
		fmt.Fprintf(w, "  %-16s %s\n  %-16s   %s\n", n, c.summary, "", strings.TrimSpace("enrollctl "+n+" "+c.usage))
	}
	fmt.Fprintln(w, "\nThe database is ENROLLQ_DB_DSN (default enrollq:enrollq@tcp(127.0.0.1:3306)/enrollq).")
}

// parseArgs parses flags that may come before, between or after the
// positional arguments (`import-students FILE --initial-password PW`), which
// the flag package alone does not allow. Everything after "--" is positional.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err.Error()}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// newFlags returns a flag set that reports errors instead of exiting.
func (a *app) newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	return fs
}

// openDB connects to the configured primary.
func (a *app) openDB(ctx context.Context) (*sqlx.DB, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	db, err := store.Open(ctx, a.cfg.DBDSN)
	if err != nil {
		return nil, fmt.Errorf("connect to MariaDB: %w", err)
	}
	return db, nil
}

// progress returns a callback that prints a line on stderr each time another
// tenth of the work is done: "importing sections: 6000/12000 (50%)".
func (a *app) progress(label string) func(done, total int) {
	printed := 0 // tenths
	return func(done, total int) {
		if total <= 0 {
			return
		}
		if tenth := done * 10 / total; tenth > printed {
			printed = tenth
			fmt.Fprintf(a.stderr, "%s: %d/%d (%d%%)\n", label, done, total, done*100/total)
		}
	}
}

// reportRows prints every row error on stderr, one per line, and returns the
// error the command fails with.
func (a *app) reportRows(file string, errs catalog.Errors) error {
	for _, e := range errs {
		fmt.Fprintln(a.stderr, e.Error())
	}
	return fmt.Errorf("%s: %d problem(s) in %d row(s); nothing was imported", file, len(errs), len(errs.Rows()))
}

// openInput opens FILE, or stdin for "-".
func openInput(file string) (io.ReadCloser, error) {
	if file == "-" {
		return io.NopCloser(os.Stdin), nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// round keeps durations in summaries readable.
func round(d time.Duration) time.Duration {
	if d > time.Second {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}
