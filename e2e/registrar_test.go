package e2e

// The registrar pages: the course list (search, 정원/신청/여석, a capacity
// edited in its row), opening and closing registration with a confirmation
// and a statement of what happened, the request audit in words and local
// time, the import page's column list and template, and the dashboard's
// fill.

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// adminToken logs the registrar in through the API.
func (s *stack) adminToken() string {
	var r struct {
		Token string `json:"token"`
	}
	s.apiDo(http.MethodPost, "/admin/login", "", map[string]string{"username": adminUser, "password": adminPassword}, http.StatusOK, &r)
	return r.Token
}

// TestRegistrarCourseCapacity: the registrar types part of a title, finds
// the section, reads 정원/신청/여석 in its row, changes the capacity in the
// row, and the row and the database show the new capacity.
func TestRegistrarCourseCapacity(t *testing.T) {
	s := newStack(t, 1, true, false)
	s.startScheduler()
	id := s.courseID("CSE4051", "01")
	if st := s.decided(s.studentToken("202690000"), id); st != "enrolled" {
		t.Fatalf("setup: %s", st)
	}
	s.searchReady("컴파일러", id)
	var capBefore int
	if err := s.db.Get(&capBefore, "SELECT capacity FROM courses WHERE id = ?", id); err != nil {
		t.Fatal(err)
	}
	newCap := capBefore + 7
	ctx := browser(t, 1280, 900)
	loginAdmin(t, ctx, s.url)
	row := fmt.Sprintf(`#admin-courses tr[data-course-id="%d"]`, id)
	run(t, ctx, "find the course by part of its title",
		chromedp.Click(chromedp.CSS(`#nav a[href="#/admin/courses"]`)),
		chromedp.WaitVisible(chromedp.CSS("#ac-q")),
		waitText("#admin-courses thead", "정원"),
		waitText("#admin-courses thead", "여석"),
		chromedp.SendKeys(chromedp.CSS("#ac-q"), "컴파일"),
		chromedp.WaitVisible(chromedp.CSS(row)),
		waitText(row+" .cap", fmt.Sprint(capBefore)))
	type cells struct {
		Cap, Enr, Left, Label string
	}
	read := func() cells {
		return eval[cells](t, ctx, fmt.Sprintf(`(() => { const r = document.querySelector(%q); return {
			cap: r.querySelector('.cap').textContent, enr: r.querySelector('.enr').textContent, left: r.querySelector('.left').textContent,
			label: r.querySelector('.cap-input').getAttribute('aria-label') }; })()`, row))
	}
	c := read()
	if c.Enr != "1" || c.Left != fmt.Sprint(capBefore-1) || c.Label != "새 정원: 컴파일러 (CSE4051-01)" {
		t.Errorf("row before the change: %+v (capacity %d, 1 enrolled)", c, capBefore)
	}
	shot(t, ctx, "1-found")
	run(t, ctx, "change the capacity",
		chromedp.SetValue(chromedp.CSS(row+" .cap-input"), fmt.Sprint(newCap)),
		chromedp.Click(chromedp.CSS(row+" .cap-edit button")),
		waitText(row+" .cap", fmt.Sprint(newCap)),
		waitText(row+" .inline-note", fmt.Sprintf("정원을 %d석으로 바꿨습니다", newCap)))
	c = read()
	if c.Left != fmt.Sprint(newCap-1) {
		t.Errorf("row after the change: %+v, want 여석 %d", c, newCap-1)
	}
	var capAfter int
	if err := s.db.Get(&capAfter, "SELECT capacity FROM courses WHERE id = ?", id); err != nil || capAfter != newCap {
		t.Fatalf("capacity in the database = %d (%v), want %d", capAfter, err, newCap)
	}
	shot(t, ctx, "2-changed")
	// Sorting by fill puts the one section with an enrollment first.
	run(t, ctx, "sort by fill",
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#ac-q').value = ''`),
		chromedp.Click(chromedp.CSS("#ac-search")),
		chromedp.WaitVisible(chromedp.CSS(`#admin-courses tbody tr:nth-child(5)`)),
		chromedp.SetValue(chromedp.CSS("#ac-sort"), "fill-desc"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#ac-sort').dispatchEvent(new Event('change'))`))
	if first := eval[string](t, ctx, `document.querySelector('#admin-courses tbody tr').dataset.courseId`); first != fmt.Sprint(id) {
		t.Errorf("fullest first: row %s first, want %d", first, id)
	}
}

// TestRegistrarWindowConfirm: 수강신청 열기 asks first and names what
// happens; cancel leaves registration closed; confirm opens it and the page
// says when.
func TestRegistrarWindowConfirm(t *testing.T) {
	s := newStack(t, 0, false, false)
	bg := context.Background()
	ctx := browser(t, 1280, 900)
	loginAdmin(t, ctx, s.url)
	run(t, ctx, "ask first",
		chromedp.Click(chromedp.CSS(`#nav a[href="#/admin/windows"]`)),
		chromedp.WaitVisible(chromedp.CSS("#window-open")),
		chromedp.Click(chromedp.CSS("#window-open")),
		chromedp.WaitVisible(chromedp.CSS("#confirm-dialog")),
		waitText("#confirm-dialog", "수강신청을 엽니다"),
		waitText("#confirm-dialog", "사전 대기열"),
		waitText("#confirm-ok", "수강신청 열기"))
	shot(t, ctx, "1-confirm")
	run(t, ctx, "cancel",
		chromedp.Click(chromedp.CSS("#confirm-cancel")),
		chromedp.WaitNotPresent(chromedp.CSS("#confirm-dialog")),
		chromedp.Sleep(300*time.Millisecond),
		waitText("#window-state", "닫힘"))
	if open, err := s.q.IsOpen(bg); err != nil || open {
		t.Fatalf("after cancel: open=%v %v", open, err)
	}
	run(t, ctx, "confirm",
		chromedp.Click(chromedp.CSS("#window-open")),
		chromedp.WaitVisible(chromedp.CSS("#confirm-ok")),
		chromedp.Click(chromedp.CSS("#confirm-ok")),
		chromedp.WaitVisible(chromedp.CSS("#window-close")),
		waitText("#window-state", "열림"),
		waitText("#window-result", "수강신청을 열었습니다"))
	if open, err := s.q.IsOpen(bg); err != nil || !open {
		t.Fatalf("after confirm: open=%v %v", open, err)
	}
	if txt := eval[string](t, ctx, `document.querySelector('#window-result').textContent`); !regexp.MustCompile(`\d{2}:\d{2}:\d{2}에 수강신청을 열었습니다`).MatchString(txt) {
		t.Errorf("result %q: want the time it opened (HH:MM:SS)", txt)
	}
	if eval[string](t, ctx, `document.querySelector('#flash').textContent`) == "저장했습니다." {
		t.Errorf("the flash says only 저장했습니다.")
	}
	shot(t, ctx, "2-opened")
	run(t, ctx, "close, confirmed",
		chromedp.Click(chromedp.CSS("#window-close")),
		waitText("#confirm-dialog", "수강신청을 닫습니다"),
		chromedp.Click(chromedp.CSS("#confirm-ok")),
		chromedp.WaitVisible(chromedp.CSS("#window-open")),
		waitText("#window-result", "수강신청을 닫았습니다"))
	if open, err := s.q.IsOpen(bg); err != nil || open {
		t.Fatalf("after closing: open=%v %v", open, err)
	}
}

// TestRegistrarAudit: the audit table has Korean headers, outcomes in words
// and times in local Korean format; English mode translates them.
func TestRegistrarAudit(t *testing.T) {
	s := newStack(t, 1, true, false)
	s.startScheduler()
	tok := s.studentToken("202690000")
	ok := s.courseID("CSE2000", "01")
	full := s.courseID("CSE4051", "01")
	if st := s.decided(tok, ok); st != "enrolled" {
		t.Fatalf("setup: %s", st)
	}
	if _, err := s.db.Exec("UPDATE courses SET capacity = 0 WHERE id = ?", full); err != nil {
		t.Fatal(err)
	}
	if st := s.decided(tok, full); st != "rejected" {
		t.Fatalf("setup: full section %s", st)
	}
	ctx := browser(t, 1280, 900)
	loginAdmin(t, ctx, s.url)
	run(t, ctx, "audit",
		chromedp.Click(chromedp.CSS(`#nav a[href="#/admin/audit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#audit-no")),
		chromedp.SendKeys(chromedp.CSS("#audit-no"), "202690000"),
		chromedp.Click(chromedp.CSS("#audit-btn")),
		chromedp.WaitVisible(chromedp.CSS(`#audit-table tr[data-status="rejected"]`)))
	heads := eval[string](t, ctx, `[...document.querySelectorAll('#audit-table th')].map((e) => e.textContent).join('|')`)
	if heads != "시각|구분|과목코드|결과|접수 번호" {
		t.Errorf("headers: %q", heads)
	}
	type row struct{ Status, Time string }
	rej := eval[row](t, ctx, `(() => { const r = document.querySelector('#audit-table tr[data-status="rejected"]');
		return { status: r.querySelector('.audit-status').textContent, time: r.querySelector('time').textContent }; })()`)
	enr := eval[row](t, ctx, `(() => { const r = document.querySelector('#audit-table tr[data-status="enrolled"]');
		return { status: r.querySelector('.audit-status').textContent, time: r.querySelector('time').textContent }; })()`)
	if rej.Status != "거절: 정원 마감" || enr.Status != "신청 완료" {
		t.Errorf("statuses: %q, %q", rej.Status, enr.Status)
	}
	// Korean local format: "2026. 12. 8. 1:23:45" (no UTC "Z", no microseconds).
	korean := regexp.MustCompile(`^\d{4}\. \d{1,2}\. \d{1,2}\. \d{1,2}:\d{2}:\d{2}$`)
	if !korean.MatchString(rej.Time) || strings.Contains(rej.Time, "Z") {
		t.Errorf("time shown as %q", rej.Time)
	}
	shot(t, ctx, "1-audit")
	run(t, ctx, "english",
		chromedp.Click(chromedp.CSS("#lang-toggle")),
		chromedp.WaitVisible(chromedp.CSS("#audit-no")),
		chromedp.SendKeys(chromedp.CSS("#audit-no"), "202690000"),
		chromedp.Click(chromedp.CSS("#audit-btn")),
		chromedp.WaitVisible(chromedp.CSS(`#audit-table tr[data-status="rejected"]`)))
	heads = eval[string](t, ctx, `[...document.querySelectorAll('#audit-table th')].map((e) => e.textContent).join('|')`)
	if heads != "Time|Kind|Code|Outcome|Ticket" {
		t.Errorf("English headers: %q", heads)
	}
	if st := eval[string](t, ctx, `document.querySelector('#audit-table tr[data-status="rejected"] .audit-status').textContent`); st != "Refused: sold out" {
		t.Errorf("English status: %q", st)
	}
}

// TestRegistrarImportHelp: the import page lists the catalog's columns,
// required and optional as in docs/IMPORT.md, and the template's header is
// the documented header; a file whose first row is not the header gets one
// error naming it.
func TestRegistrarImportHelp(t *testing.T) {
	s := newStack(t, 0, false, false)
	doc, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "IMPORT.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("### Catalog: `([^`]+)`").FindSubmatch(doc)
	if m == nil {
		t.Fatal("no catalog header in docs/IMPORT.md")
	}
	header := string(m[1])
	// The required column of each row of the catalog table.
	sect := string(doc[strings.Index(string(doc), "### Catalog:"):strings.Index(string(doc), "### Roster:")])
	var want []string
	for _, r := range regexp.MustCompile("(?m)^\\| `(\\w+)` \\| (yes|no) \\|").FindAllStringSubmatch(sect, -1) {
		want = append(want, r[1]+":"+r[2])
	}
	ctx := browser(t, 1280, 900)
	loginAdmin(t, ctx, s.url)
	run(t, ctx, "import page",
		chromedp.Click(chromedp.CSS(`#nav a[href="#/admin/import"]`)),
		chromedp.WaitVisible(chromedp.CSS("#catalog-columns")),
		waitText("#catalog-columns", "필수"),
		waitText("#catalog-columns", "선택"))
	got := eval[[]string](t, ctx, `[...document.querySelectorAll('#catalog-columns tbody tr')].map((r) => r.dataset.column + ':' + r.dataset.required)`)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("columns on the page %v, docs/IMPORT.md %v", got, want)
	}
	tpl := eval[string](t, ctx, `(() => { const a = document.querySelector('#catalog-template');
		return a.getAttribute('download') + '|' + decodeURIComponent(a.href.slice(a.href.indexOf(',') + 1)); })()`)
	name, csv, _ := strings.Cut(tpl, "|")
	if !strings.HasSuffix(name, ".csv") {
		t.Errorf("template file name %q", name)
	}
	first := strings.TrimPrefix(strings.SplitN(csv, "\n", 2)[0], "\ufeff")
	if first != header {
		t.Errorf("template header %q, docs/IMPORT.md %q", first, header)
	}
	shot(t, ctx, "1-columns")
	bad := filepath.Join(t.TempDir(), "bad.csv")
	if err := os.WriteFile(bad, []byte("과목코드,분반,과목명\nCSE9999,01,잘못\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "wrong header",
		chromedp.SetUploadFiles(chromedp.CSS("#catalog-file"), []string{bad}),
		chromedp.Click(chromedp.CSS("#catalog-upload")),
		chromedp.WaitVisible(chromedp.CSS("#catalog-errors tbody tr")),
		waitText("#catalog-errors", "bad_header"),
		waitText("#catalog-errors", header))
	if n := eval[int](t, ctx, `document.querySelectorAll('#catalog-errors tbody tr').length`); n != 1 {
		t.Errorf("%d errors for a wrong header, want 1", n)
	}
	shot(t, ctx, "2-bad-header")
}

// TestRegistrarDashboardFill: after a few enrollments the dashboard's fill
// is enrolled / capacity summed, with a decimal (never 0 % while anyone is
// enrolled), and each row shows 정원/신청/여석 (여석 = seats left); the rate
// chart's lines are distinct and have a legend.
func TestRegistrarDashboardFill(t *testing.T) {
	s := newStack(t, 3, true, false)
	s.startScheduler()
	id := s.courseID("CSE2000", "01")
	for i := 0; i < 3; i++ {
		if st := s.decided(s.studentToken(fmt.Sprintf("20269%04d", i)), id); st != "enrolled" {
			t.Fatalf("setup %d: %s", i, st)
		}
	}
	var tot struct {
		Capacity int64 `db:"capacity"`
		Enrolled int64 `db:"enrolled"`
	}
	if err := s.db.Get(&tot, "SELECT SUM(capacity) AS capacity, SUM(enrolled) AS enrolled FROM courses WHERE deleted_at IS NULL"); err != nil {
		t.Fatal(err)
	}
	var capOne int
	_ = s.db.Get(&capOne, "SELECT capacity FROM courses WHERE id = ?", id)
	ctx := browser(t, 1280, 900)
	loginAdmin(t, ctx, s.url)
	row := fmt.Sprintf(`#fill tr[data-course-id="%d"]`, id)
	run(t, ctx, "dashboard",
		within(10*time.Second, waitText("#kpi-fill-of", fmt.Sprintf("신청 %d명", tot.Enrolled))),
		chromedp.WaitVisible(chromedp.CSS(row)),
		chromedp.WaitVisible(chromedp.CSS("#rate-legend .swatch.decided")))
	fill := eval[string](t, ctx, `document.querySelector('#kpi-fill').textContent`)
	pct := 100 * float64(tot.Enrolled) / float64(tot.Capacity)
	want := fmt.Sprintf("%.1f%%", pct)
	if pct < 0.1 {
		want = "<0.1%"
	}
	want = strings.Replace(want, ".0%", "%", 1)
	if fill != want || fill == "0%" {
		t.Errorf("fill %q, want %q (%d of %d)", fill, want, tot.Enrolled, tot.Capacity)
	}
	if of := eval[string](t, ctx, `document.querySelector('#kpi-fill-of').textContent`); !strings.Contains(of, fmt.Sprintf("정원 %s석", commas(tot.Capacity))) {
		t.Errorf("fill basis %q", of)
	}
	type cells struct{ Cap, Enr, Left string }
	c := eval[cells](t, ctx, fmt.Sprintf(`(() => { const r = document.querySelector(%q); return { cap: r.querySelector('.cap').textContent, enr: r.querySelector('.enr').textContent, left: r.querySelector('.left').textContent }; })()`, row))
	if c.Cap != commas(int64(capOne)) || c.Enr != "3" || c.Left != commas(int64(capOne-3)) {
		t.Errorf("fill row %+v, want 정원 %d 신청 3 여석 %d", c, capOne, capOne-3)
	}
	if heads := eval[string](t, ctx, `[...document.querySelectorAll('#fill th')].map((e) => e.textContent).join('|')`); !strings.Contains(heads, "정원|신청|여석") {
		t.Errorf("fill headers %q", heads)
	}
	if dash := eval[string](t, ctx, `[...document.querySelectorAll('#chart-rate polyline')].map((p) => p.getAttribute('stroke') + ' ' + (p.getAttribute('stroke-dasharray') || '-')).join('|')`); !strings.Contains(dash, "6 4") || strings.Count(dash, "|") != 1 {
		t.Errorf("rate lines %q: want two, the decided one dashed", dash)
	}
	shot(t, ctx, "1-dashboard")
}

// commas formats n with thousands separators, as toLocaleString does.
func commas(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
