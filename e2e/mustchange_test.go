package e2e

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// TestMustChangeInBrowser: an imported student still on the initial password
// logs in, gets only the change-password form (the api refuses everything
// else with 403 password_change_required), changes it, and lands on the
// course search; a reload keeps the new session working.
func TestMustChangeInBrowser(t *testing.T) {
	s := newStack(t, 1, true, false)
	if _, err := s.db.DB.Exec(`UPDATE students SET must_change_password = 1 WHERE student_no = '202690000'`); err != nil {
		t.Fatal(err)
	}
	ctx := browser(t, 1280, 900)
	run(t, ctx, "log in with the initial password",
		chromedp.Navigate(s.url+"/"),
		chromedp.WaitVisible(chromedp.CSS("#student-no")),
		chromedp.SendKeys(chromedp.CSS("#student-no"), "202690000"),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("#login-btn")),
		chromedp.WaitVisible(chromedp.CSS("#must-change-form")),
		waitText("#view-title", "초기 비밀번호 변경"))
	shot(t, ctx, "must-change-form")
	run(t, ctx, "navigating away is refused",
		chromedp.Navigate(s.url+"/#/me"),
		chromedp.WaitVisible(chromedp.CSS("#must-change-form")))
	run(t, ctx, "change it",
		chromedp.SendKeys(chromedp.CSS("#mc-old"), password),
		chromedp.SendKeys(chromedp.CSS("#mc-new"), "my-own-pass-2026"),
		chromedp.SendKeys(chromedp.CSS("#mc-again"), "my-own-pass-2026"),
		chromedp.Click(chromedp.CSS("#mc-btn")),
		chromedp.WaitVisible(chromedp.CSS("#q")),
		waitText("#flash", "비밀번호를 변경했습니다"))
	run(t, ctx, "the new session works after a reload",
		chromedp.Navigate(s.url+"/#/me"),
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS("#pw-form")))
	var flag bool
	if err := s.db.Get(&flag, `SELECT must_change_password FROM students WHERE student_no = '202690000'`); err != nil || flag {
		t.Errorf("must_change_password after the change: %v, %v", flag, err)
	}
}
