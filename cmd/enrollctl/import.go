package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/enrollq/enrollq/internal/auth"
	"github.com/enrollq/enrollq/internal/catalog"
)

// DefaultInitialPassword is every imported student's first password in
// development mode (ENROLLQ_DEV=1) unless --initial-password or
// ENROLLQ_INITIAL_PASSWORD says otherwise. It is public: production mode
// requires another. Either way every new student must change it at the
// first login (must_change_password; see docs/IMPORT.md).
const DefaultInitialPassword = "enrollq-2026"

var importCatalogCommand = command{
	usage:   "FILE",
	summary: "import a course catalog CSV (all rows or none; every bad row is listed)",
	run:     runImportCatalog,
}

var importStudentsCommand = command{
	usage:   "FILE [--initial-password PW]",
	summary: "import a student roster CSV (all rows or none; every bad row is listed)",
	run:     runImportStudents,
}

func runImportCatalog(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("import-catalog")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one FILE, got %d arguments", len(pos))
	}
	file := pos[0]

	start := time.Now()
	in, err := openInput(file)
	if err != nil {
		return err
	}
	sections, errs := catalog.ParseCatalog(in)
	in.Close()
	if len(errs) > 0 {
		return a.reportRows(file, errs)
	}
	fmt.Fprintf(a.stderr, "read %d sections from %s in %v\n", len(sections), file, round(time.Since(start)))

	db, err := a.openDB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	res, err := catalog.ImportCatalog(ctx, db, sections, a.progress("importing sections"))
	var rowErrs catalog.Errors
	if errors.As(err, &rowErrs) {
		return a.reportRows(file, rowErrs)
	}
	if err != nil {
		return fmt.Errorf("%s: %w (nothing was imported)", file, err)
	}
	fmt.Fprintf(a.stdout, "imported %s: %d sections (%d inserted, %d updated, %d unchanged), %d meeting rows written, in %v\n",
		file, res.Total, res.Inserted, res.Updated, res.Unchanged, res.Meetings, round(time.Since(start)))
	return nil
}

func runImportStudents(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("import-students")
	password := fs.String("initial-password", "",
		"initial password of newly imported students, to be changed at first login (default $ENROLLQ_INITIAL_PASSWORD; in development mode else "+DefaultInitialPassword+")")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one FILE, got %d arguments", len(pos))
	}
	file := pos[0]
	pw := *password
	if pw == "" {
		pw = a.getenv("ENROLLQ_INITIAL_PASSWORD")
	}
	if pw == "" && a.cfg.Dev {
		pw = DefaultInitialPassword
	}
	switch {
	case pw == "":
		return usagef("production mode: give --initial-password or ENROLLQ_INITIAL_PASSWORD (the public default %q needs ENROLLQ_DEV=1)", DefaultInitialPassword)
	case !a.cfg.Dev && pw == DefaultInitialPassword:
		return usagef("production mode: the initial password %q is public; choose another (or ENROLLQ_DEV=1 for local development)", pw)
	}

	start := time.Now()
	in, err := openInput(file)
	if err != nil {
		return err
	}
	students, errs := catalog.ParseRoster(in)
	in.Close()
	if len(errs) > 0 {
		return a.reportRows(file, errs)
	}
	fmt.Fprintf(a.stderr, "read %d students from %s in %v\n", len(students), file, round(time.Since(start)))

	// One hash for the whole import: every new student starts with the same
	// public password, so a per-student salt would protect nothing, and
	// 100,000 bcrypt hashes would take minutes. See docs/IMPORT.md.
	hash, err := auth.HashPassword(pw, a.cfg.BcryptCost)
	if err != nil {
		return err
	}
	db, err := a.openDB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	res, err := catalog.ImportStudents(ctx, db, students, hash, a.progress("importing students"))
	var rowErrs catalog.Errors
	if errors.As(err, &rowErrs) {
		return a.reportRows(file, rowErrs)
	}
	if err != nil {
		return fmt.Errorf("%s: %w (nothing was imported)", file, err)
	}
	shown := "(as given, not shown)"
	if pw == DefaultInitialPassword {
		shown = DefaultInitialPassword + " (the default)"
	}
	fmt.Fprintf(a.stdout, "imported %s: %d students (%d inserted, %d updated, %d unchanged), in %v; initial password of new students: %s\n",
		file, res.Total, res.Inserted, res.Updated, res.Unchanged, round(time.Since(start)), shown)
	return nil
}
