// Package store opens MariaDB connections and applies the schema migrations.
// Domain packages own their own queries; this package only owns connections,
// migrations and the translation of driver errors into sentinels.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"

	"github.com/enrollq/enrollq/migrations"
)

// ErrDuplicate is returned when a unique key would be violated (MySQL 1062).
var ErrDuplicate = errors.New("duplicate entry")

// ErrDeadlock is returned when InnoDB chose this transaction as a deadlock
// victim or a lock wait timed out (MySQL 1213 / 1205); the caller may retry.
var ErrDeadlock = errors.New("deadlock or lock wait timeout")

// Open connects to MariaDB with the options EnrollQ relies on (parseTime,
// UTC, utf8mb4) and waits until the server answers or ctx ends.
func Open(ctx context.Context, dsn string) (*sqlx.DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse dsn: %w", err)
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["charset"] = "utf8mb4"
	cfg.Params["time_zone"] = "'+00:00'"
	cfg.Collation = "utf8mb4_unicode_ci"
	cfg.InterpolateParams = true
	db, err := sqlx.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", cfg.Addr, err)
	}
	db.SetMaxOpenConns(64)
	db.SetMaxIdleConns(64)
	db.SetConnMaxLifetime(30 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("ping %s: %w", cfg.Addr, err)
	}
	return db, nil
}

// Migrate brings the schema up to date with goose.
func Migrate(ctx context.Context, db *sqlx.DB) error {
	p, err := goose.NewProvider(goose.DialectMySQL, db.DB, migrations.FS)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate up: %w", err)
	}
	return nil
}

// Interpret maps driver errors onto the package sentinels, keeping the
// original error in the chain.
func Interpret(err error) error {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1062:
			return fmt.Errorf("%w: %v", ErrDuplicate, err)
		case 1213, 1205:
			return fmt.Errorf("%w: %v", ErrDeadlock, err)
		}
	}
	return err
}

// CodeUnknownThread is MariaDB's error for KILL of a connection that has
// ended already (1094).
const CodeUnknownThread = 1094

// Code returns the MySQL error number in err's chain, or 0.
func Code(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}
