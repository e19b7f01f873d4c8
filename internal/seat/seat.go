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
	Reconcile(ctx context.Context, seats []enroll.SeatCount, maxID int64) error
}

// Reconcile resets every hint from src, and raises the ticket counter above
// every recorded request id so an id is never handed out twice.
func Reconcile(ctx context.Context, src Source, dst Sink) error {
	seats, err := src.Seats(ctx)
	if err != nil {
		return fmt.Errorf("reconcile seats: %w", err)
	}
	maxID, err := src.MaxRequestID(ctx)
	if err != nil {
		return fmt.Errorf("reconcile seats: %w", err)
	}
	if err := dst.Reconcile(ctx, seats, maxID); err != nil {
		return fmt.Errorf("reconcile seats: %w", err)
	}
	return nil
}
