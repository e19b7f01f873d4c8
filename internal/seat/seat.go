// Package seat keeps the Redis seat hints honest. A hint is
// capacity − enrolled − pending requests for a section; admission (queue's
// admit.lua) takes one when it queues a request and ack.lua gives it back when
// the request is not enrolled, so at most about `capacity` requests per
// section wait in the line and the rest of a burst hears "sold out" at once.
//
// Hints are only hints (law 5): MariaDB decides under row locks. A hint that
// is too high costs speed (more requests reach MariaDB and are refused there);
// one that is too low could turn a student away early, so the scheduler's
// leader reconciles from MariaDB when it takes the lock and every
// ReconcileEvery, and the API reconciles a section it has no hint for.
package seat

import (
	"context"
	"fmt"

	"github.com/enrollq/enrollq/internal/enroll"
)

// Source reads seat counts from the source of truth (enroll.Store).
type Source interface {
	Seats(ctx context.Context) ([]enroll.SeatCount, error)
	MaxRequestID(ctx context.Context) (int64, error)
}

// Sink receives hints (queue.Redis).
type Sink interface {
	Generations(ctx context.Context) (map[int64]int64, error)
	ReconcileSeen(ctx context.Context, seats []enroll.SeatCount, gens map[int64]int64, maxID int64) error
}

// Reconcile resets every hint from src, and raises the ticket counter above
// every recorded request id so an id is never handed out twice.
//
// It cannot make a hint too low: the hint is MariaDB's free seats minus the
// requests still pending in Redis, and a request leaves the pending count
// (its pre-ack) before its decision commits, so no request is counted both
// in MariaDB's enrolled and as pending; and a section whose generation moved
// between the read of the generations and the write (a drop or a capacity
// raise reached its hint after MariaDB was read) keeps its hint.
func Reconcile(ctx context.Context, src Source, dst Sink) error {
	gens, err := dst.Generations(ctx)
	if err != nil {
		return fmt.Errorf("reconcile seats: %w", err)
	}
	seats, err := src.Seats(ctx)
	if err != nil {
		return fmt.Errorf("reconcile seats: %w", err)
	}
	maxID, err := src.MaxRequestID(ctx)
	if err != nil {
		return fmt.Errorf("reconcile seats: %w", err)
	}
	if err := dst.ReconcileSeen(ctx, seats, gens, maxID); err != nil {
		return fmt.Errorf("reconcile seats: %w", err)
	}
	return nil
}
