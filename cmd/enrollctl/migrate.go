package main

import (
	"context"
	"fmt"

	"github.com/enrollq/enrollq/internal/store"
)

var migrateCommand = command{
	usage:   "",
	summary: "bring the database schema up to date (goose migrations)",
	run:     runMigrate,
}

func runMigrate(ctx context.Context, a *app, args []string) error {
	pos, err := parseArgs(a.newFlags("migrate"), args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("takes no arguments")
	}
	db, err := a.openDB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := store.Migrate(ctx, db); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, "schema is up to date")
	return nil
}
