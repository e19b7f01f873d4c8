package main

// Registrar routes: imports (as background jobs with progress), windows,
// capacities, live stats, audits and the enrollment export.

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/enrollq/enrollq/internal/app"
)

// maxUpload bounds a CSV upload (nginx allows 16m too).
const maxUpload = 16 << 20

func (s *server) adminRoutes(g *gin.RouterGroup) {
	g.POST("/catalog", s.importFile(app.ImportCatalog))
	g.POST("/students", s.importFile(app.ImportStudents))
	g.GET("/jobs/:id", s.getJob)
	g.GET("/windows", s.getWindows)
	g.PUT("/windows", s.putWindows)
	g.PATCH("/courses/:id", s.patchCourse)
	g.GET("/stats", s.stats)
	g.GET("/prequeue", s.getPrequeue)
	g.POST("/prequeue", s.setPrequeue)
	g.GET("/students/:student_no/requests", s.audit)
	g.POST("/students/:student_no/revoke-sessions", s.revokeSessions)
	g.GET("/enrollments.csv", s.exportEnrollments)
	g.POST("/password", s.adminPassword)
	g.POST("/admins", s.createAdmin)
}

// importFile takes a multipart upload (field "file"; for students also
// "initial_password", default ENROLLQ_INITIAL_PASSWORD). A file with bad rows
// is refused at once with 422 and every bad row; a good one is imported in
// the background: 202 with the job to poll at GET /admin/jobs/{id}.
func (s *server) importFile(kind string) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxUploadBody)
		fh, err := c.FormFile("file")
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			abort(c, errPayloadTooLarge)
			return
		}
		if err != nil || fh.Size > maxUpload {
			abort(c, errBadFile)
			return
		}
		f, err := fh.Open()
		if err != nil {
			abort(c, errBadFile)
			return
		}
		data, err := io.ReadAll(io.LimitReader(f, maxUpload+1))
		f.Close()
		if err != nil || len(data) > maxUpload {
			abort(c, errBadFile)
			return
		}
		pw := c.PostForm("initial_password")
		if pw == "" {
			pw = os.Getenv("ENROLLQ_INITIAL_PASSWORD")
		}
		job, err := s.svc.StartImport(kind, data, pw)
		var ie *app.ImportErrors
		if errors.As(err, &ie) {
			body := errorBody(errImportInvalid)
			body["rows"] = ie.Rows
			c.AbortWithStatusJSON(errImportInvalid.Status, gin.H{"error": body})
			return
		}
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusAccepted, gin.H{"job_id": job.ID, "job": job, "status_url": "/api/v1/admin/jobs/" + job.ID})
	}
}

func (s *server) getJob(c *gin.Context) {
	id := c.Param("id")
	if len(id) == 0 || len(id) > 64 {
		abort(c, errUnknownJob)
		return
	}
	j, err := s.svc.Job(c.Request.Context(), id)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, j)
}

func (s *server) getWindows(c *gin.Context) {
	w, err := s.svc.Windows(c.Request.Context())
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, w)
}

// putWindows replaces the term's windows: {"windows":[{"year":null|1..6,
// "opens_at":RFC3339,"closes_at":RFC3339}]}. An empty list removes every
// window (registration is then governed by the open flag alone).
func (s *server) putWindows(c *gin.Context) {
	var in struct {
		Windows []struct {
			Year     *int       `json:"year"`
			OpensAt  *time.Time `json:"opens_at" binding:"required"`
			ClosesAt *time.Time `json:"closes_at" binding:"required"`
		} `json:"windows" binding:"required,dive"`
	}
	if !bindJSON(c, &in) {
		return
	}
	ws := make([]app.WindowView, len(in.Windows))
	for i, w := range in.Windows {
		ws[i] = app.WindowView{Year: w.Year, OpensAt: *w.OpensAt, ClosesAt: *w.ClosesAt}
	}
	if err := s.svc.SetWindows(c.Request.Context(), ws); err != nil {
		fail(c, err)
		return
	}
	s.getWindows(c)
}

func (s *server) patchCourse(c *gin.Context) {
	id, ok := pathID(c, "id")
	if !ok {
		return
	}
	var in struct {
		Capacity *int `json:"capacity" binding:"required"`
	}
	if !bindJSON(c, &in) {
		return
	}
	ch, err := s.svc.SetCapacity(c.Request.Context(), id, *in.Capacity)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, ch)
}

func (s *server) stats(c *gin.Context) {
	top := 10
	if v := c.Query("top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			abort(c, errBadQuery)
			return
		}
		top = n
	}
	st, err := s.svc.Stats(c.Request.Context(), top)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, st)
}

func (s *server) audit(c *gin.Context) {
	no := c.Param("student_no")
	if len(no) == 0 || len(no) > 20 {
		abort(c, errUnknownStudent)
		return
	}
	a, err := s.svc.Audit(c.Request.Context(), no)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, a)
}

// exportEnrollments answers every enrollment as CSV. The file is built in
// memory first (about 100 bytes a row), so a failure is a proper error
// rather than a cut-off download.
func (s *server) exportEnrollments(c *gin.Context) {
	var buf bytes.Buffer
	// A UTF-8 byte order mark, so spreadsheet programs read Korean right.
	buf.WriteString("\ufeff")
	if err := s.svc.ExportEnrollments(c.Request.Context(), &buf); err != nil {
		fail(c, err)
		return
	}
	c.Header("Content-Disposition", `attachment; filename="enrollments.csv"`)
	c.Data(http.StatusOK, "text/csv; charset=utf-8", buf.Bytes())
}

func (s *server) adminPassword(c *gin.Context) {
	var in passwordChange
	if !bindJSON(c, &in) {
		return
	}
	if err := s.svc.ChangeAdminPassword(c.Request.Context(), claimsOf(c), in.Old, in.New); err != nil {
		fail(c, err)
		return
	}
	// The change revoked the admin's older tokens, this one too.
	tok, err := s.svc.AdminSessionToken(c.Request.Context(), claimsOf(c))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "changed", "token": tok})
}

func (s *server) createAdmin(c *gin.Context) {
	var in struct {
		Username string `json:"username" binding:"required,min=3,max=50,alphanum"`
		Password string `json:"password" binding:"required,max=200"`
	}
	if !bindJSON(c, &in) {
		return
	}
	if err := s.svc.CreateAdmin(c.Request.Context(), in.Username, in.Password); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"username": in.Username})
}

// setPrequeue opens or closes the pre-queue: {"open": true|false}.
func (s *server) setPrequeue(c *gin.Context) {
	var in struct {
		Open *bool `json:"open" binding:"required"`
	}
	if !bindJSON(c, &in) {
		return
	}
	st, err := s.svc.SetPrequeue(c.Request.Context(), *in.Open)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, st)
}

func (s *server) getPrequeue(c *gin.Context) {
	st, err := s.svc.Prequeue(c.Request.Context())
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, st)
}
