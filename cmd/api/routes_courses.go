package main

// GET /courses and /courses/:id on the MariaDB replica. The list answers with
// the same shape as internal/search's Result (hits, total, next, source), and
// accepts the search contract's parameters, so it can be swapped for the
// search service without touching the UI.

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/enrollq/enrollq/internal/app"
)

func (s *server) courseRoutes(g *gin.RouterGroup) {
	g.GET("/courses", s.listCourses)
	g.GET("/courses/:id", s.getCourse)
}

// listCourses: q, department, category, credits (1–6), days=MON,WED (or
// day=), open=true (or open_only=), size/limit (1–100, default 20), and
// after (the previous page's next) or offset.
func (s *server) listCourses(c *gin.Context) {
	if s.search != nil {
		s.searchCourses(c)
		return
	}
	f, ok := courseFilter(c)
	if !ok {
		abort(c, errBadQuery)
		return
	}
	page, err := s.svc.Courses(c.Request.Context(), f)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, page)
}

func courseFilter(c *gin.Context) (app.CourseFilter, bool) {
	q := c.Request.URL.Query()
	f := app.CourseFilter{Text: strings.TrimSpace(q.Get("q")), Department: q.Get("department"), Category: q.Get("category"), Limit: 20}
	if len([]rune(f.Text)) > 100 {
		return f, false
	}
	num := func(names ...string) (int, bool, bool) {
		for _, n := range names {
			if v := q.Get(n); v != "" {
				i, err := strconv.Atoi(v)
				return i, true, err == nil
			}
		}
		return 0, false, true
	}
	if v, set, ok := num("credits"); !ok || (set && (v < 1 || v > 6)) {
		return f, false
	} else {
		f.Credits = v
	}
	if v, set, ok := num("size", "limit"); !ok || (set && (v < 1 || v > 100)) {
		return f, false
	} else if set {
		f.Limit = v
	}
	if v, set, ok := num("after", "offset"); !ok || (set && v < 0) {
		return f, false
	} else {
		f.Offset = v
	}
	for _, name := range []string{"days", "day"} {
		for _, v := range q[name] {
			for _, d := range strings.Split(v, ",") {
				d = strings.ToUpper(strings.TrimSpace(d))
				if d == "" {
					continue
				}
				i := indexOf(app.Days, d)
				if i < 0 {
					return f, false
				}
				f.Days = append(f.Days, i)
			}
		}
	}
	for _, name := range []string{"open", "open_only"} {
		if v := q.Get(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return f, false
			}
			f.OpenOnly = b
		}
	}
	return f, true
}

func indexOf(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}

func (s *server) getCourse(c *gin.Context) {
	id, ok := pathID(c, "id")
	if !ok {
		return
	}
	d, err := s.svc.Course(c.Request.Context(), id)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, d)
}
