package main

// Student routes beyond admission: password, own record, enrollments,
// timetable, requests, cart and waitlist. Every handler acts on the student
// named by the token (claimsOf(c).Subject) only: no route takes a student id.

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/enrollq/enrollq/internal/auth"
	"github.com/enrollq/enrollq/internal/enroll"
)

func (s *server) studentRoutes(g *gin.RouterGroup) {
	g.POST("/auth/password", s.changePassword)
	g.GET("/me", s.me)
	g.GET("/me/enrollments", s.myEnrollments)
	g.GET("/me/timetable", s.myTimetable)
	g.GET("/me/requests", s.myRequests)
	g.GET("/me/waitlist", s.myWaitlist)
	g.GET("/cart", s.getCart)
	g.POST("/cart", s.addToCart)
	g.PUT("/cart", s.reorderCart)
	g.DELETE("/cart/:course_id", s.removeFromCart)
	g.POST("/cart/register", s.registerCart)
	g.POST("/waitlist", s.joinWaitlist)
	g.DELETE("/waitlist/:course_id", s.leaveWaitlist)
}

type passwordChange struct {
	Old string `json:"old" binding:"required,max=200"`
	New string `json:"new" binding:"required,max=200"`
}

func (s *server) changePassword(c *gin.Context) {
	var in passwordChange
	if !bindJSON(c, &in) {
		return
	}
	if err := s.svc.ChangePassword(c.Request.Context(), claimsOf(c), in.Old, in.New); err != nil {
		fail(c, err)
		return
	}
	// The change revoked every older token, this one too: the next session.
	tok, _, err := s.svc.SessionToken(c.Request.Context(), claimsOf(c))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "changed", "token": tok, "expires_at": s.expiresAt(tok, auth.KindStudent)})
}

func (s *server) me(c *gin.Context) {
	m, err := s.svc.Me(c.Request.Context(), claimsOf(c))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, m)
}

func (s *server) myEnrollments(c *gin.Context) {
	es, err := s.svc.Enrollments(c.Request.Context(), claimsOf(c))
	if err != nil {
		fail(c, err)
		return
	}
	credits := 0
	for _, e := range es {
		credits += e.Credits
	}
	c.JSON(http.StatusOK, gin.H{"enrollments": es, "credits": credits})
}

func (s *server) myTimetable(c *gin.Context) {
	t, err := s.svc.Timetable(c.Request.Context(), claimsOf(c))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, t)
}

func (s *server) myRequests(c *gin.Context) {
	limit := 100
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			abort(c, errBadQuery)
			return
		}
		limit = n
	}
	rs, err := s.svc.Requests(c.Request.Context(), claimsOf(c), limit)
	if err != nil {
		fail(c, err)
		return
	}
	pre, err := s.svc.PrequeueItems(c.Request.Context(), claimsOf(c))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"requests": rs, "prequeue": pre})
}

func (s *server) myWaitlist(c *gin.Context) {
	ws, err := s.svc.Waitlist(c.Request.Context(), claimsOf(c))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"waitlist": ws})
}

func (s *server) getCart(c *gin.Context) {
	items, err := s.svc.Cart(c.Request.Context(), claimsOf(c))
	if err != nil {
		fail(c, err)
		return
	}
	credits := 0
	for _, it := range items {
		credits += it.Credits
	}
	c.JSON(http.StatusOK, gin.H{"items": items, "credits": credits})
}

type courseRef struct {
	CourseID *int64 `json:"course_id" binding:"required"`
}

func (s *server) addToCart(c *gin.Context) {
	var in courseRef
	if !bindJSON(c, &in) {
		return
	}
	if err := s.svc.AddToCart(c.Request.Context(), claimsOf(c), *in.CourseID); err != nil {
		fail(c, err)
		return
	}
	s.getCartStatus(c, http.StatusCreated)
}

func (s *server) getCartStatus(c *gin.Context, code int) {
	items, err := s.svc.Cart(c.Request.Context(), claimsOf(c))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(code, gin.H{"items": items})
}

func (s *server) reorderCart(c *gin.Context) {
	var in struct {
		CourseIDs []int64 `json:"course_ids" binding:"required"`
	}
	if !bindJSON(c, &in) {
		return
	}
	if err := s.svc.ReorderCart(c.Request.Context(), claimsOf(c), in.CourseIDs); err != nil {
		fail(c, err)
		return
	}
	s.getCartStatus(c, http.StatusOK)
}

func (s *server) removeFromCart(c *gin.Context) {
	id, ok := pathID(c, "course_id")
	if !ok {
		return
	}
	if err := s.svc.RemoveFromCart(c.Request.Context(), claimsOf(c), id); err != nil {
		fail(c, err)
		return
	}
	s.getCartStatus(c, http.StatusOK)
}

// registerCart queues every cart section in cart order and reports each
// outcome; the response is 200 even when some (or all) were refused.
//
// With an Idempotency-Key, each section is admitted under "<key>:<course
// id>": a retry answers every section as the first registration did (each
// such result has "replayed": true, and the response Idempotent-Replayed:
// true when every section's was).
func (s *server) registerCart(c *gin.Context) {
	key, ok := idempotencyKey(c)
	if !ok {
		abort(c, errBadIdemKey)
		return
	}
	cl := claimsOf(c)
	rs, err := s.svc.RegisterCart(c.Request.Context(), cl, key)
	if err != nil {
		fail(c, err)
		return
	}
	out := make([]gin.H, 0, len(rs))
	var ids []string
	replayed := len(rs) > 0
	for _, r := range rs {
		replayed = replayed && r.Replayed
		var res gin.H
		switch {
		case r.Err != nil:
			s.metrics.admissions.WithLabelValues(replayLabel(r.Replayed, admissionLabel(r.Err))).Inc()
			res = gin.H{"course_id": r.CourseID, "status": "error", "error": errorOf(r.Err)}
		case r.Admitted.Prequeued:
			s.metrics.admissions.WithLabelValues(replayLabel(r.Replayed, "prequeued")).Inc()
			res = gin.H{"course_id": r.CourseID, "status": "prequeued"}
		default:
			s.metrics.admissions.WithLabelValues(replayLabel(r.Replayed, "admitted")).Inc()
			ids = append(ids, strconv.FormatInt(r.Admitted.RequestID, 10))
			res = gin.H{"course_id": r.CourseID, "status": "queued", "request_id": r.Admitted.RequestID,
				"ticket": r.Admitted.Ticket, "position": r.Admitted.Position}
		}
		if r.Replayed {
			res["replayed"] = true
		}
		out = append(out, res)
	}
	if replayed {
		c.Header(replayedHeader, "true")
	}
	resp := gin.H{"results": out}
	if len(ids) > 0 {
		tok := s.svc.WSToken(cl)
		resp["ws_token"] = tok
		resp["ws_url"] = s.wsURL + "?token=" + tok + "&requests=" + strings.Join(ids, ",")
	}
	c.JSON(http.StatusOK, resp)
}

// errorOf is the JSON error object err maps to (as fail would write it).
func errorOf(err error) gin.H {
	var aq *enroll.AlreadyQueuedError
	if errors.As(err, &aq) {
		h := errorBody(errAlreadyQueued)
		h["request_id"] = aq.RequestID
		return h
	}
	if e, ok := classify(err); ok {
		return errorBody(e)
	}
	return errorBody(errInternal)
}

func (s *server) joinWaitlist(c *gin.Context) {
	var in courseRef
	if !bindJSON(c, &in) {
		return
	}
	pos, err := s.svc.JoinWaitlist(c.Request.Context(), claimsOf(c), *in.CourseID)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"course_id": *in.CourseID, "position": pos})
}

func (s *server) leaveWaitlist(c *gin.Context) {
	id, ok := pathID(c, "course_id")
	if !ok {
		return
	}
	if err := s.svc.LeaveWaitlist(c.Request.Context(), claimsOf(c), id); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"course_id": id, "status": "left"})
}
