package enroll

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/enrollq/enrollq/internal/store"
)

// The drain's fence in MariaDB (table drain_fences, one row per term). A
// leader's decision transaction starts by moving its fence row under its
// own token (checkFence): the statement matches no row once a newer leader
// raised the token, and while the transaction runs it holds the row's lock,
// so the newer leader's raise (TakeFence) waits for that transaction to end
// — or ends it, if it is stuck in a paused process.
const (
	qFenceCheck = `UPDATE drain_fences SET conn = CONNECTION_ID(), batches = batches + 1 WHERE term = ? AND token = ?`
	qFenceRead  = `SELECT token, conn FROM drain_fences WHERE term = ?`
	// SET STATEMENT bounds only this statement's lock wait: a paused former
	// leader's open transaction must not hold the new leader for the server
	// default (50 s).
	qFenceRaise = `SET STATEMENT innodb_lock_wait_timeout = 1 FOR
		INSERT INTO drain_fences (term, token) VALUES (?, ?) ON DUPLICATE KEY UPDATE token = GREATEST(token, VALUES(token))`
)

func checkFence(ctx context.Context, tx *sqlx.Tx, term string, fence int64) error {
	res, err := tx.ExecContext(ctx, qFenceCheck, term, fence)
	if err != nil {
		return fmt.Errorf("decide batch: check the drain fence: %w", store.Interpret(err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("decide batch with fence %d: %w", fence, ErrFenced)
	}
	return nil
}

// Fence returns the term's drain fence as MariaDB records it (0 if none):
// a new leader takes a fence above it and Redis' (queue.Redis.TakeFence).
func (s *Store) Fence(ctx context.Context) (int64, error) {
	var row struct {
		Token int64 `db:"token"`
		Conn  int64 `db:"conn"`
	}
	err := s.db.GetContext(ctx, &row, qFenceRead, s.term)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the drain fence: %w", store.Interpret(err))
	}
	return row.Token, nil
}

// TakeFence raises the term's fence to token. A decision transaction of a
// former leader that is still open holds the row: TakeFence waits a second
// for it, then kills that transaction's connection (MariaDB rolls it back;
// its requests are still in flight in Redis and are settled by the new
// leader's recovery) and tries again. It fails with ErrFenced if the fence
// is already above token.
func (s *Store) TakeFence(ctx context.Context, token int64) error {
	var last error
	for attempt := 0; attempt < 5; attempt++ {
		_, err := s.db.ExecContext(ctx, qFenceRaise, s.term, token)
		if err == nil {
			cur, err := s.Fence(ctx)
			if err != nil {
				return err
			}
			if cur != token {
				return fmt.Errorf("take drain fence %d: MariaDB holds %d: %w", token, cur, ErrFenced)
			}
			return nil
		}
		last = store.Interpret(err)
		if !errors.Is(last, store.ErrDeadlock) {
			return fmt.Errorf("take drain fence %d: %w", token, last)
		}
		if err := s.killFenceHolder(ctx); err != nil {
			return err
		}
	}
	return fmt.Errorf("take drain fence %d: %w", token, last)
}

// killFenceHolder ends the connection of the open decision transaction that
// holds the fence row: the one that wrote drain_fences.conn last, read
// uncommitted since that transaction has not committed.
func (s *Store) killFenceHolder(ctx context.Context) error {
	var row struct {
		Token int64 `db:"token"`
		Conn  int64 `db:"conn"`
	}
	tx, err := s.db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelReadUncommitted, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("take drain fence: read the holder: begin: %w", store.Interpret(err))
	}
	err = tx.GetContext(ctx, &row, qFenceRead, s.term)
	_ = tx.Rollback()
	if err != nil {
		return fmt.Errorf("take drain fence: read the holder: %w", store.Interpret(err))
	}
	if row.Conn == 0 {
		return nil
	}
	// KILL takes no placeholders; Conn is an integer from the table.
	if _, err := s.db.ExecContext(ctx, fmt.Sprintf("KILL CONNECTION %d", row.Conn)); err != nil {
		if store.Code(err) == store.CodeUnknownThread {
			return nil // ended meanwhile
		}
		return fmt.Errorf("take drain fence: end the former leader's transaction (connection %d): %w", row.Conn, err)
	}
	return nil
}

// RecordRefusals copies refusal marks into refusal_marks, keeping the latest
// of each section.
func (s *Store) RecordRefusals(ctx context.Context, marks []RefusalMark) error {
	for len(marks) > 0 {
		n := min(len(marks), 500)
		q := `INSERT INTO refusal_marks (course_id, ticket, refused_at) VALUES ` + strings.Repeat("(?,?,?),", n-1) + `(?,?,?)
			ON DUPLICATE KEY UPDATE refused_at = IF(VALUES(ticket) >= ticket, VALUES(refused_at), refused_at),
			                        ticket = GREATEST(ticket, VALUES(ticket))`
		args := make([]any, 0, 3*n)
		for _, m := range marks[:n] {
			args = append(args, m.CourseID, m.Ticket, m.At)
		}
		if _, err := s.db.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("record %d refusal marks: %w", n, store.Interpret(err))
		}
		marks = marks[n:]
	}
	return nil
}

// LogCapacityChange records a capacity change made outside SetCapacity (a
// catalog import), stamped now: call it once the seat hints know of it.
func (s *Store) LogCapacityChange(ctx context.Context, course int64, old, new int) error {
	const q = `INSERT INTO capacity_changes (course_id, old_capacity, new_capacity, changed_at) VALUES (?, ?, ?, ?)`
	if _, err := s.db.ExecContext(ctx, q, course, old, new, s.now()); err != nil {
		return fmt.Errorf("log capacity change of course %d: %w", course, store.Interpret(err))
	}
	return nil
}
