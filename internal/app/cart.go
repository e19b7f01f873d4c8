package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/enrollq/enrollq/internal/auth"
	"github.com/enrollq/enrollq/internal/enroll"
	"github.com/enrollq/enrollq/internal/queue"
	"github.com/enrollq/enrollq/internal/store"
)

// Cart errors.
var (
	ErrInCart    = errors.New("already in the cart")
	ErrNotInCart = errors.New("not in the cart")
	ErrCartFull  = errors.New("the cart is full")
	ErrCartOrder = errors.New("the new order must list exactly the courses in the cart")
)

// MaxCart is how many sections a cart holds.
const MaxCart = 15

func sqlxIn(q string, args ...any) (string, []any, error) { return sqlx.In(q, args...) }

// CartItem is one section in the cart, in cart order.
type CartItem struct {
	Position int       `json:"position" db:"position"`
	AddedAt  time.Time `json:"added_at" db:"added_at"`
	CourseView
}

// Cart lists the student's cart (장바구니) in cart order.
func (s *Service) Cart(ctx context.Context, c auth.Claims) ([]CartItem, error) {
	q := `SELECT k.position, k.created_at AS added_at, ` + courseCols + `
		FROM carts k JOIN courses c ON c.id = k.course_id WHERE k.student_id = ? ORDER BY k.position, k.created_at`
	out := []CartItem{}
	if err := s.DB.SelectContext(ctx, &out, q, c.Subject); err != nil {
		return nil, fmt.Errorf("read cart: %w", err)
	}
	for i := range out {
		out[i].fill()
	}
	return out, nil
}

// AddToCart puts a section at the end of the student's cart.
func (s *Service) AddToCart(ctx context.Context, c auth.Claims, course int64) error {
	if course <= 0 {
		return fmt.Errorf("course_id must be a positive integer: %w", ErrBadInput)
	}
	var ok int
	if err := s.DB.GetContext(ctx, &ok, `SELECT COUNT(*) FROM courses WHERE id = ? AND deleted_at IS NULL`, course); err != nil {
		return fmt.Errorf("add to cart: %w", err)
	}
	if ok == 0 {
		return enroll.ErrUnknownCourse
	}
	tx, err := s.DB.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("add to cart: %w", err)
	}
	defer tx.Rollback()
	// Lock the student's row so two adds at once get distinct positions.
	var id int64
	if err := tx.GetContext(ctx, &id, `SELECT id FROM students WHERE id = ? FOR UPDATE`, c.Subject); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return enroll.ErrNotFound
		}
		return fmt.Errorf("add to cart: %w", err)
	}
	var n struct {
		Count int `db:"n"`
		Max   int `db:"mx"`
	}
	if err := tx.GetContext(ctx, &n, `SELECT COUNT(*) AS n, COALESCE(MAX(position), 0) AS mx FROM carts WHERE student_id = ?`, c.Subject); err != nil {
		return fmt.Errorf("add to cart: %w", err)
	}
	if n.Count >= MaxCart {
		return ErrCartFull
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO carts (student_id, course_id, position) VALUES (?, ?, ?)`, c.Subject, course, n.Max+1); err != nil {
		if errors.Is(store.Interpret(err), store.ErrDuplicate) {
			return ErrInCart
		}
		return fmt.Errorf("add to cart: %w", err)
	}
	return tx.Commit()
}

// RemoveFromCart takes a section out of the student's cart.
func (s *Service) RemoveFromCart(ctx context.Context, c auth.Claims, course int64) error {
	res, err := s.DB.ExecContext(ctx, `DELETE FROM carts WHERE student_id = ? AND course_id = ?`, c.Subject, course)
	if err != nil {
		return fmt.Errorf("remove from cart: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotInCart
	}
	return nil
}

// ReorderCart sets the cart order; courses must be exactly the cart's sections.
func (s *Service) ReorderCart(ctx context.Context, c auth.Claims, courses []int64) error {
	tx, err := s.DB.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("reorder cart: %w", err)
	}
	defer tx.Rollback()
	var have []int64
	if err := tx.SelectContext(ctx, &have, `SELECT course_id FROM carts WHERE student_id = ? FOR UPDATE`, c.Subject); err != nil {
		return fmt.Errorf("reorder cart: %w", err)
	}
	in := map[int64]bool{}
	for _, id := range have {
		in[id] = true
	}
	seen := map[int64]bool{}
	for _, id := range courses {
		if !in[id] || seen[id] {
			return ErrCartOrder
		}
		seen[id] = true
	}
	if len(seen) != len(in) {
		return ErrCartOrder
	}
	for i, id := range courses {
		if _, err := tx.ExecContext(ctx, `UPDATE carts SET position = ? WHERE student_id = ? AND course_id = ?`, i+1, c.Subject, id); err != nil {
			return fmt.Errorf("reorder cart: %w", err)
		}
	}
	return tx.Commit()
}

// CartResult is the outcome of queueing one cart section.
type CartResult struct {
	CourseID int64
	Admitted *Admitted
	Err      error
	Replayed bool // the section's answer is the one given to an earlier registration with the same key
}

// RegisterCart queues a request for every section in the cart, in cart
// order, each through EnrollKeyed (so each gets its own ticket, in that
// order). One section's refusal does not stop the others.
//
// With an idempotency key each section is admitted under "<key>:<course
// id>", so a retried registration (its answer lost) gets every section's
// original answer, admission or refusal, and queues nothing twice; a section
// added to the cart since is admitted afresh. "" is no idempotency.
func (s *Service) RegisterCart(ctx context.Context, c auth.Claims, idemKey string) ([]CartResult, error) {
	items, err := s.Cart(ctx, c)
	if err != nil {
		return nil, err
	}
	out := make([]CartResult, 0, len(items))
	for _, it := range items {
		a, err := s.EnrollKeyed(ctx, c, it.ID, queue.Limit{}, CartItemKey(idemKey, it.ID))
		r := CartResult{CourseID: it.ID, Err: err, Replayed: a.Replayed}
		if err == nil {
			r.Admitted = &a
		}
		out = append(out, r)
	}
	return out, nil
}

// CartItemKey is the idempotency key of one section of a cart registration
// sent with key ("" without one).
func CartItemKey(key string, course int64) string {
	if key == "" {
		return ""
	}
	return key + ":" + strconv.FormatInt(course, 10)
}
