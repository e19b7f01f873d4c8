package e2e

// The student pages a newcomer trusts: drop asks first, feedback shows next
// to the action and stays on its page, 신청현황 shows each course's latest
// state, the cart and search know what the student has, the search lives in
// the address, and buttons name their course.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// apiDo sends one JSON request to the stack's api with token (if any) and
// decodes the answer into out (if not nil); it fails the test on a status
// other than want.
func (s *stack) apiDo(method, path, token string, body any, want int, out any) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.url+"/api/v1"+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if method == http.MethodPost && strings.HasPrefix(path, "/enrollments") {
		req.Header.Set("Idempotency-Key", fmt.Sprintf("e2e-%d", time.Now().UnixNano()))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		s.t.Fatalf("%s %s: %d %s (want %d)", method, path, resp.StatusCode, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

func (s *stack) studentToken(no string) string {
	var r struct {
		Token string `json:"token"`
	}
	s.apiDo(http.MethodPost, "/auth/login", "", map[string]string{"student_no": no, "password": password}, http.StatusOK, &r)
	return r.Token
}

func (s *stack) courseID(code, section string) int64 {
	s.t.Helper()
	var id int64
	if err := s.db.Get(&id, "SELECT id FROM courses WHERE code = ? AND section = ?", code, section); err != nil {
		s.t.Fatal(err)
	}
	return id
}

// decided sends POST /enrollments for course and waits (the scheduler
// running) until the request is decided; it returns the status.
func (s *stack) decided(token string, course int64) string {
	s.t.Helper()
	var a struct {
		RequestID int64 `json:"request_id"`
	}
	s.apiDo(http.MethodPost, "/enrollments", token, map[string]int64{"course_id": course}, http.StatusAccepted, &a)
	deadline := time.Now().Add(15 * time.Second)
	for {
		var st string
		_ = s.db.Get(&st, "SELECT status FROM enrollment_requests WHERE id = ?", a.RequestID)
		if st != "" && st != "queued" {
			return st
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("request %d for course %d never decided (%q)", a.RequestID, course, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *stack) enrolled(course int64) int {
	var n int
	_ = s.db.Get(&n, "SELECT COUNT(*) FROM enrollments WHERE course_id = ?", course)
	return n
}

// eval runs a JavaScript expression in the page and returns its value.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// TestPagesConfirmDrop: 수강취소 opens an in-page dialog naming the course
// with focus on it; 취소 keeps the enrollment and gives focus back to the
// button; 수강취소 in the dialog drops it.
func TestPagesConfirmDrop(t *testing.T) {
	s := newStack(t, 1, true, false)
	s.startScheduler()
	id := s.courseID("CSE2000", "01")
	if st := s.decided(s.studentToken("202690000"), id); st != "enrolled" {
		t.Fatalf("setup: request %s", st)
	}
	ctx := browser(t, 1024, 768)
	loginStudent(t, ctx, s.url, "202690000")
	btn := fmt.Sprintf(`#enrollments tr[data-course-id="%d"] .drop-btn`, id)
	run(t, ctx, "drop asks first",
		chromedp.Click(chromedp.CSS(`#nav a[href="#/enrollments"]`)),
		chromedp.WaitVisible(chromedp.CSS(btn)),
		chromedp.Click(chromedp.CSS(btn)),
		chromedp.WaitVisible(chromedp.CSS("#confirm-dialog")),
		waitText("#confirm-dialog", "자료구조 (CSE2000-01)"),
		waitText("#confirm-cancel", "취소"),
		waitText("#confirm-ok", "수강취소"))
	if id := eval[string](t, ctx, `document.activeElement.id`); id != "confirm-cancel" {
		t.Errorf("focus in the dialog: %q, want confirm-cancel", id)
	}
	shot(t, ctx, "1-confirm")
	run(t, ctx, "cancel keeps it",
		chromedp.Click(chromedp.CSS("#confirm-cancel")),
		chromedp.WaitNotPresent(chromedp.CSS("#confirm-dialog")))
	if !eval[bool](t, ctx, fmt.Sprintf(`document.activeElement === document.querySelector(%q)`, btn)) {
		t.Errorf("focus did not return to the drop button")
	}
	if n := s.enrolled(id); n != 1 {
		t.Fatalf("enrollments after cancel = %d, want 1", n)
	}
	run(t, ctx, "confirm drops it",
		chromedp.Click(chromedp.CSS(btn)),
		chromedp.WaitVisible(chromedp.CSS("#confirm-ok")),
		chromedp.Click(chromedp.CSS("#confirm-ok")),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#enrollments tr[data-course-id="%d"][data-state="dropped"]`, id))),
		waitText("#enrollments .inline-note", "수강 취소되었습니다"))
	if n := s.enrolled(id); n != 0 {
		t.Fatalf("enrollments after the drop = %d, want 0", n)
	}
	if !eval[bool](t, ctx, fmt.Sprintf(`!!document.activeElement.closest('#enrollments tr[data-course-id="%d"]')`, id)) {
		t.Errorf("focus left the dropped row")
	}
}

// TestPagesFeedbackNearAction: after scrolling to the bottom of the results,
// 담기 on the last row shows its feedback in that row, inside the viewport;
// the next action replaces it, and another page does not show it.
func TestPagesFeedbackNearAction(t *testing.T) {
	s := newStack(t, 1, true, false)
	ctx := browser(t, 1024, 600)
	loginStudent(t, ctx, s.url, "202690000")
	run(t, ctx, "results, scrolled",
		chromedp.WaitVisible(chromedp.CSS(`#results-body tr:nth-child(20) .add-cart`)),
		chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, document.body.scrollHeight)`),
		chromedp.Click(chromedp.CSS(`#results-body tr:nth-child(20) .add-cart`)),
		waitText(`#results-body tr:nth-child(20) .inline-note`, "장바구니에 담았습니다"))
	type box struct {
		Top, Bottom, Height float64
		Live                string
	}
	b := eval[box](t, ctx, `(() => { const e = document.querySelector('.inline-note'); const r = e.getBoundingClientRect();
		return { top: r.top, bottom: r.bottom, height: window.innerHeight, live: e.getAttribute('aria-live') }; })()`)
	if b.Top < 0 || b.Bottom > b.Height || b.Live != "polite" {
		t.Errorf("feedback at %+v: want inside the viewport and aria-live polite", b)
	}
	if eval[bool](t, ctx, `(() => { const f = document.querySelector('#flash'); return !f.hidden && f.textContent !== ''; })()`) {
		t.Errorf("feedback also at the top of the page")
	}
	shot(t, ctx, "1-feedback")
	run(t, ctx, "next action replaces it",
		chromedp.Click(chromedp.CSS(`#results-body tr:nth-child(19) .add-cart`)),
		waitText(`#results-body tr:nth-child(19) .inline-note`, "장바구니에 담았습니다"))
	if n := eval[int](t, ctx, `document.querySelectorAll('.inline-note').length`); n != 1 {
		t.Errorf("%d feedback notes on screen, want 1", n)
	}
	run(t, ctx, "another page",
		chromedp.Click(chromedp.CSS(`#nav a[href="#/cart"]`)),
		chromedp.WaitVisible(chromedp.CSS("#cart-table")))
	if eval[bool](t, ctx, `!!document.querySelector('.inline-note') || !document.querySelector('#flash').hidden`) {
		t.Errorf("the search page's feedback carried over to the cart")
	}
	// Left alone, a note goes away after a few seconds.
	run(t, ctx, "feedback fades",
		chromedp.Click(chromedp.CSS(`#nav a[href="#/search"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#results-body tr:nth-child(18) .add-cart`)),
		chromedp.Click(chromedp.CSS(`#results-body tr:nth-child(18) .add-cart`)),
		waitText(`#results-body tr:nth-child(18) .inline-note`, "장바구니에 담았습니다"),
		within(8*time.Second, chromedp.WaitNotPresent(chromedp.CSS(".inline-note"))))
}

// TestPagesRequestsLatestState: 신청현황 lists each course once with its
// latest state: enrolled then dropped says 수강취소됨; refused as full, then
// enrolled from the waitlist, says 신청 완료 (대기자 자동신청), first as the
// newest; times are shown.
func TestPagesRequestsLatestState(t *testing.T) {
	s := newStack(t, 1, true, false)
	s.startScheduler()
	tok := s.studentToken("202690000")
	dropped := s.courseID("CSE2000", "01")
	full := s.courseID("CSE4051", "01")
	t.Logf("stack up")
	if st := s.decided(tok, dropped); st != "enrolled" {
		t.Fatalf("setup: %s", st)
	}
	s.apiDo(http.MethodDelete, fmt.Sprintf("/enrollments/%d", dropped), tok, nil, http.StatusOK, nil)
	// The second section is full (MariaDB says so; the seat hint does not
	// know yet): queued, refused at the decision, then the waitlist.
	if _, err := s.db.Exec("UPDATE courses SET capacity = 0 WHERE id = ?", full); err != nil {
		t.Fatal(err)
	}
	if st := s.decided(tok, full); st != "rejected" {
		t.Fatalf("setup: full section %s", st)
	}
	s.apiDo(http.MethodPost, "/waitlist", tok, map[string]int64{"course_id": full}, http.StatusCreated, nil)
	t.Logf("set up")

	ctx := browser(t, 1024, 768)
	loginStudent(t, ctx, s.url, "202690000")
	item := func(id int64) string { return fmt.Sprintf(`.queue-item[data-course-id="%d"]`, id) }
	run(t, ctx, "dropped and waitlisted",
		chromedp.Click(chromedp.CSS(`#nav a[href="#/queue"]`)),
		chromedp.WaitVisible(chromedp.CSS(item(dropped)+`[data-status="dropped"]`)),
		waitText(item(dropped)+" .status", "수강취소됨"),
		chromedp.WaitVisible(chromedp.CSS(item(full)+`[data-status="waitlisted"]`)),
		waitText(item(full), "1번째"),
		chromedp.WaitVisible(chromedp.CSS(item(dropped)+" time.queue-time")))
	shot(t, ctx, "1-dropped-waitlisted")

	// The registrar raises the capacity: the waitlist enrolls the student.
	var adm struct {
		Token string `json:"token"`
	}
	s.apiDo(http.MethodPost, "/admin/login", "", map[string]string{"username": adminUser, "password": adminPassword}, http.StatusOK, &adm)
	s.apiDo(http.MethodPatch, fmt.Sprintf("/admin/courses/%d", full), adm.Token, map[string]int{"capacity": 1}, http.StatusOK, nil)
	if n := s.enrolled(full); n != 1 {
		t.Fatalf("waitlist promotion: %d enrolled, want 1", n)
	}
	run(t, ctx, "enrolled from the waitlist",
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(item(full)+`[data-status="enrolled"]`)),
		waitText(item(full)+" .status", "신청 완료"),
		waitText(item(full), "대기자 자동신청"),
		chromedp.WaitVisible(chromedp.CSS(item(dropped)+`[data-status="dropped"]`)))
	type rows struct {
		N     int    `json:"n"`
		First string `json:"first"`
	}
	r := eval[rows](t, ctx, `({ n: document.querySelectorAll('.queue-item').length, first: document.querySelector('.queue-item').dataset.courseId })`)
	if r.N != 2 || r.First != fmt.Sprint(full) {
		t.Errorf("requests screen: %+v, want 2 rows, the waitlist enrollment (%d) first", r, full)
	}
	if txt := eval[string](t, ctx, `document.querySelector('.queue-item time').textContent`); !strings.Contains(txt, ":") {
		t.Errorf("time shown as %q", txt)
	}
	shot(t, ctx, "2-waitlist-enrolled")
}

// TestPagesCartKnowsState: a course already enrolled shows 신청 완료 in the
// cart and in the search results, has no 신청 button there, and 장바구니
// 전체 신청 neither resubmits it nor shows it as refused; the other cart row
// has its own 신청 button.
func TestPagesCartKnowsState(t *testing.T) {
	s := newStack(t, 1, true, false)
	s.startScheduler()
	tok := s.studentToken("202690000")
	done := s.courseID("CSE2000", "01")
	other := s.courseID("CSE4051", "01")
	s.apiDo(http.MethodPost, "/cart", tok, map[string]int64{"course_id": done}, http.StatusCreated, nil)
	s.apiDo(http.MethodPost, "/cart", tok, map[string]int64{"course_id": other}, http.StatusCreated, nil)
	if st := s.decided(tok, done); st != "enrolled" {
		t.Fatalf("setup: %s", st)
	}
	s.searchReady("자료", done)
	ctx := browser(t, 1024, 768)
	loginStudent(t, ctx, s.url, "202690000")
	// Search first, right after the node was seen ready.
	srow := fmt.Sprintf(`#results-body tr[data-course-id="%d"]`, done)
	run(t, ctx, "search knows",
		chromedp.SendKeys(chromedp.CSS("#q"), "자료"),
		chromedp.Click(chromedp.CSS("#search-btn")),
		chromedp.WaitVisible(chromedp.CSS(srow+`[data-state="enrolled"]`)),
		waitText(srow+" .row-state", "신청 완료"))
	if n := eval[int](t, ctx, fmt.Sprintf(`document.querySelectorAll(%q).length`, srow+" .enroll-now, "+srow+" .add-cart")); n != 0 {
		t.Errorf("an enrolled search row still offers 신청/담기")
	}
	row := func(id int64) string { return fmt.Sprintf(`#cart-table tr[data-course-id="%d"]`, id) }
	run(t, ctx, "cart",
		chromedp.Click(chromedp.CSS(`#nav a[href="#/cart"]`)),
		chromedp.WaitVisible(chromedp.CSS(row(done)+`[data-state="enrolled"]`)),
		waitText(row(done)+" .row-state", "신청 완료"),
		chromedp.WaitVisible(chromedp.CSS(row(other)+" .enroll-now")),
		waitText("#cart-skip", "다시 신청하지 않습니다"))
	if n := eval[int](t, ctx, fmt.Sprintf(`document.querySelectorAll(%q).length`, row(done)+" .enroll-now")); n != 0 {
		t.Errorf("the enrolled cart row has a 신청 button")
	}
	shot(t, ctx, "1-cart")
	var before int
	_ = s.db.Get(&before, "SELECT COUNT(*) FROM enrollment_requests WHERE course_id = ?", done)
	run(t, ctx, "register everything",
		chromedp.Click(chromedp.CSS("#register-all")),
		within(15*time.Second, chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`.queue-item[data-course-id="%d"][data-status="enrolled"]`, other)))),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`.queue-item[data-course-id="%d"][data-status="enrolled"]`, done))))
	if n := eval[int](t, ctx, `document.querySelectorAll('.queue-item[data-status="error"], .queue-item[data-status="rejected"]').length`); n != 0 {
		t.Errorf("%d refusals shown after registering the cart", n)
	}
	var after int
	_ = s.db.Get(&after, "SELECT COUNT(*) FROM enrollment_requests WHERE course_id = ?", done)
	if after != before {
		t.Errorf("the enrolled course was submitted again: %d → %d requests", before, after)
	}
	shot(t, ctx, "2-registered")
}

// TestPagesSearchInURL: the query and filters are in the address; a reload
// and Back restore the field and the results. Buttons name their course.
func TestPagesSearchInURL(t *testing.T) {
	s := newStack(t, 1, false, false)
	id := s.courseID("CSE4051", "01")
	s.searchReady("컴파일러", id)
	ctx := browser(t, 1024, 768)
	loginStudent(t, ctx, s.url, "202690000")
	row := fmt.Sprintf(`#results-body tr[data-course-id="%d"]`, id)
	run(t, ctx, "search",
		chromedp.SendKeys(chromedp.CSS("#q"), "컴파일러"),
		// Set, not typed: the department's suggestion list could cover the
		// search button.
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#f-dept').value = '컴퓨터공학과'`),
		chromedp.Click(chromedp.CSS("#search-btn")),
		chromedp.WaitVisible(chromedp.CSS(row)))
	if h := eval[string](t, ctx, `decodeURIComponent(location.hash)`); !strings.Contains(h, "q=컴파일러") || !strings.Contains(h, "dept=컴퓨터공학과") {
		t.Errorf("address after the search: %q", h)
	}
	if l := eval[string](t, ctx, fmt.Sprintf(`document.querySelector(%q).getAttribute('aria-label')`, row+" .enroll-now")); l != "신청: 컴파일러 (CSE4051-01)" {
		t.Errorf("신청 button's name: %q", l)
	}
	if d := eval[int](t, ctx, `(() => { const n = [...document.querySelectorAll('#results-body button')].map((b) => b.getAttribute('aria-label') || b.textContent); return n.length - new Set(n).size; })()`); d != 0 {
		t.Errorf("%d buttons share an accessible name", d)
	}
	run(t, ctx, "reload",
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(row)))
	if q := eval[string](t, ctx, `document.querySelector('#q').value + '|' + document.querySelector('#f-dept').value`); q != "컴파일러|컴퓨터공학과" {
		t.Errorf("fields after the reload: %q", q)
	}
	run(t, ctx, "away and back",
		chromedp.Click(chromedp.CSS(`#nav a[href="#/timetable"]`)),
		chromedp.WaitVisible(chromedp.CSS("#tt-empty")),
		chromedp.NavigateBack(),
		chromedp.WaitVisible(chromedp.CSS(row)))
	if q := eval[string](t, ctx, `document.querySelector('#q').value`); q != "컴파일러" {
		t.Errorf("field after Back: %q", q)
	}
}
