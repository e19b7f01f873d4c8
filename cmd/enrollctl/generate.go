package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/enrollq/enrollq/internal/catalog"
)

var genCatalogCommand = command{
	usage:   "--sections N --out FILE [--seed S]",
	summary: "write a valid, deterministic catalog of N sections (benchmarks, load tests)",
	run: func(ctx context.Context, a *app, args []string) error {
		return runGenerate(a, args, "gen-catalog", "sections", catalog.GenerateCatalog)
	},
}

var genStudentsCommand = command{
	usage:   "--students N --out FILE [--seed S]",
	summary: "write a valid, deterministic roster of N students (load tests)",
	run: func(ctx context.Context, a *app, args []string) error {
		return runGenerate(a, args, "gen-students", "students", catalog.GenerateRoster)
	},
}

// runGenerate parses --<what> N --out FILE --seed S and writes the file
// (atomically: a partly written file never appears under FILE).
func runGenerate(a *app, args []string, name, what string, gen func(io.Writer, int, uint64) error) error {
	fs := a.newFlags(name)
	n := fs.Int(what, 0, "number of "+what+" to write")
	out := fs.String("out", "-", "output file (- for stdout)")
	seed := fs.Uint64("seed", 1, "generator seed; the same N and seed give the same file")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if *n <= 0 {
		return usagef("--%s must be a positive number", what)
	}
	if *out == "-" {
		return gen(a.stdout, *n, *seed)
	}
	tmp, err := os.CreateTemp(filepath.Dir(*out), "."+filepath.Base(*out)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := gen(tmp, *n, *seed); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "wrote %d %s to %s\n", *n, what, *out)
	return nil
}
