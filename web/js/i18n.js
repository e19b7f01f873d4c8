// Korean by default, English on request; the choice is kept in localStorage.
const dict = {
  ko: {
    'app.title': 'EnrollQ 수강신청', 'app.footer': 'EnrollQ · 공정한 선착순 대기열', 'skip': '본문으로 건너뛰기',
    'nav.search': '강좌검색', 'nav.cart': '장바구니', 'nav.queue': '신청현황', 'nav.timetable': '시간표',
    'nav.enrollments': '수강내역', 'nav.waitlist': '대기자', 'nav.me': '내 정보', 'nav.logout': '로그아웃',
    'nav.admin.dashboard': '대시보드', 'nav.admin.import': '가져오기', 'nav.admin.windows': '신청기간', 'nav.admin.courses': '강좌·감사',
    'login.title': '학생 로그인', 'login.no': '학번', 'login.pw': '비밀번호', 'login.submit': '로그인',
    'login.admin': '관리자 로그인', 'login.admin.user': '아이디', 'login.toAdmin': '관리자이신가요?', 'login.toStudent': '학생 로그인으로',
    'login.sso': '학교 계정으로 로그인', 'login.or': '또는',
    'search.title': '강좌 검색', 'search.q': '검색어 (과목명·코드·교수)', 'search.dept': '학과', 'search.cat': '이수구분',
    'search.credits': '학점', 'search.day': '요일', 'search.open': '여석 있는 강좌만', 'search.submit': '검색', 'search.any': '전체',
    'search.total': '검색 결과 {n}건', 'search.more': '더 보기', 'search.none': '검색 결과가 없습니다.',
    'col.code': '과목코드', 'col.title': '과목명', 'col.prof': '교수', 'col.credits': '학점', 'col.time': '시간', 'col.room': '강의실',
    'col.seats': '여석', 'col.action': '', 'col.status': '상태', 'col.position': '순번', 'col.reason': '사유', 'col.dept': '학과',
    'btn.addCart': '담기', 'btn.enroll': '신청', 'btn.remove': '빼기', 'btn.drop': '수강취소', 'btn.waitlist': '대기 신청',
    'btn.leave': '대기 취소', 'btn.up': '위로', 'btn.down': '아래로', 'btn.cancel': '신청 취소',
    'cart.title': '장바구니', 'cart.empty': '장바구니가 비어 있습니다. 강좌검색에서 담으세요.', 'cart.register': '장바구니 전체 신청',
    'cart.credits': '담은 학점 {n}', 'cart.added': '장바구니에 담았습니다.', 'cart.removed': '장바구니에서 뺐습니다.',
    'queue.title': '신청 현황', 'queue.none': '진행 중이거나 처리된 신청이 없습니다.', 'queue.position': '대기 순번',
    'queue.ahead': '앞에 {n}명', 'queue.eta': '예상 {s}초', 'queue.live': '실시간 연결됨', 'queue.polling': '2초마다 확인 중',
    'status.queued': '대기 중', 'status.enrolled': '신청 완료', 'status.rejected': '신청 실패', 'status.cancelled': '신청 취소됨', 'status.error': '접수 안 됨',
    'status.prequeued': '추첨 대기', 'queue.prequeued': '신청 시작 시각에 추첨으로 순서가 정해집니다.', 'queue.drawRefused': '추첨 후 접수되지 않음: {r}',
    'queue.drawPolling': '추첨 결과를 기다리는 중 (수강신청이 열리면 바로 표시됩니다)', 'queue.opening': '수강신청을 여는 중입니다(사전 대기열 추첨). 잠시 후 자동으로 다시 신청합니다.',
    'prequeue.added': '사전 대기열에 담겼습니다. 신청 시작 시각에 추첨으로 순서가 정해집니다. (담은 강좌 {n}개, 신청현황에서 확인)',
    'prequeue.addedCart': '사전 대기열에 {n}개 강좌를 담았습니다. 신청 시작 시각에 추첨으로 순서가 정해집니다.',
    'tt.title': '주간 시간표', 'tt.credits': '총 {n}학점', 'tt.unplaced': '시간 미지정 강좌', 'tt.empty': '수강 중인 강좌가 없습니다.',
    'enr.title': '수강 내역', 'enr.empty': '수강 중인 강좌가 없습니다.', 'enr.dropped': '수강 취소되었습니다.', 'enr.via.waitlist': '대기자 자동신청',
    'wl.title': '대기자 명단', 'wl.empty': '대기 중인 강좌가 없습니다.', 'wl.position': '{p}번째 / {n}명', 'wl.joined': '대기자 명단에 올렸습니다 ({p}번째).',
    'wl.left': '대기자 명단에서 뺐습니다.', 'wl.skipped': '최근 빈자리 때 제외된 이유: {r}', 'wl.hint': '정원이 찬 강좌는 검색 결과에서 "대기 신청"을 누르세요. 빈자리가 나면 대기 순서대로 자동 신청됩니다.',
    'me.title': '내 정보', 'me.pw': '비밀번호 변경', 'me.old': '현재 비밀번호', 'me.new': '새 비밀번호 (8자 이상)', 'me.save': '변경',
    'me.changed': '비밀번호를 변경했습니다.', 'me.open': '지금 수강신청 가능', 'me.closed': '지금은 수강신청 기간이 아닙니다',
    'pw.title': '초기 비밀번호 변경', 'pw.intro': '처음 로그인하셨습니다. 초기 비밀번호를 새 비밀번호로 바꿔야 수강신청을 할 수 있습니다.',
    'pw.again': '새 비밀번호 확인', 'pw.mismatch': '새 비밀번호가 서로 다릅니다.',
    'admin.import': '카탈로그·명단 가져오기', 'admin.catalog': '강좌 카탈로그 (CSV)', 'admin.roster': '학생 명단 (CSV)', 'admin.initpw': '초기 비밀번호',
    'admin.upload': '가져오기', 'admin.progress': '진행 {d} / {t}', 'admin.done': '완료: 추가 {i}, 변경 {u}, 동일 {s}',
    'admin.invalid': '파일에 오류가 있어 아무것도 가져오지 않았습니다. 아래 행을 고친 뒤 다시 올리세요.', 'col.row': '행', 'col.column': '열', 'col.code2': '코드', 'col.message': '내용', 'col.value': '값',
    'admin.windows': '신청 기간', 'admin.flag': '수강신청 스위치', 'admin.flag.open': '열림', 'admin.flag.closed': '닫힘',
    'admin.open': '수강신청 열기', 'admin.close': '수강신청 닫기', 'admin.term': '학기 {t}', 'admin.openNow': '지금 신청 가능한 학년: {y}',
    'admin.year': '학년 (비우면 전체)', 'admin.opens': '시작', 'admin.closes': '종료', 'admin.addWindow': '기간 추가', 'admin.saveWindows': '기간 저장',
    'admin.noWindows': '설정된 기간이 없습니다: 스위치만으로 열고 닫습니다.', 'admin.saved': '저장했습니다.',
    'pq.title': '사전 대기열 (추첨)', 'pq.hint': '수강신청이 닫혀 있는 동안 연 사전 대기열에 담긴 신청은, 수강신청을 열 때 학생 순서를 무작위로 추첨해 누구보다 먼저 접수됩니다.',
    'pq.open': '사전 대기열 열기', 'pq.close': '사전 대기열 닫기', 'pq.state.open': '열림', 'pq.state.closed': '닫힘', 'pq.count': '학생 {s}명 · 담긴 신청 {e}건',
    'pq.listing': '추첨 준비 중 (순서 기록)', 'pq.drawing': '추첨 진행 {c} / {t}', 'pq.done': '추첨 완료: {t}건 배정 ({d}초)', 'pq.windowOpen': '수강신청이 닫혀 있을 때만 열 수 있습니다.',
    'pq.opened': '사전 대기열을 열었습니다.', 'pq.closed': '사전 대기열을 닫았습니다. 담긴 신청은 수강신청을 열 때 추첨됩니다.', 'pq.waiting': '수강신청을 열면 {s}명을 추첨합니다.',
    'admin.dash': '실시간 대시보드', 'kpi.pending': '대기열 길이', 'kpi.sessions': '접속 중인 학생', 'kpi.admitted': '접수/초', 'kpi.decided': '처리/초', 'kpi.enrolled': '신청 완료',
    'kpi.rejected': '신청 실패', 'kpi.fill': '전체 충원율', 'chart.queue': '대기열 길이', 'chart.rate': '처리량 (건/초)', 'admin.fill': '충원율 상위 강좌', 'admin.rejections': '실패 사유',
    'admin.capacity': '정원 변경', 'admin.courseId': '강좌 ID', 'admin.newCap': '새 정원', 'admin.audit': '학생 신청 기록', 'admin.export': '수강 내역 CSV 내려받기',
    'reason.sold_out': '정원 마감', 'reason.window_closed': '신청 기간 아님', 'reason.course_closed': '폐강', 'reason.unknown_course': '없는 강좌',
    'reason.already_enrolled': '이미 신청함', 'reason.same_course_code': '같은 과목 다른 분반 수강 중', 'reason.credit_limit': '학점 초과',
    'reason.time_conflict': '시간 중복', 'reason.unknown_student': '없는 학생', 'reason.already_queued': '이미 대기 중인 신청 있음', 'reason.refused': '접수 거절',
    'err.network': '서버에 연결할 수 없습니다. 잠시 후 다시 시도하세요.', 'loading': '불러오는 중…',
    'net.retrying': '재시도 중… ({n}/{max}) 같은 신청으로 다시 보내므로 두 번 접수되지 않습니다.', 'btn.retrying': '재시도 중…', 'btn.sending': '보내는 중…',
    'days': '월,화,수,목,금,토,일',
    'status.dropped': '수강취소됨', 'status.waitlisted': '대기자 명단', 'queue.droppedHint': '수강취소한 강좌입니다. 다시 들으려면 새로 신청하세요.',
    'state.waitlisted': '대기 {p}번째', 'state.inCart': '장바구니에 있음',
    'cart.skipEnrolled': '이미 신청 완료된 {n}개 강좌는 다시 신청하지 않습니다.', 'cart.allEnrolled': '장바구니의 강좌를 모두 이미 신청했습니다.',
    'drop.title': '수강을 취소할까요?', 'drop.body': '{c} 수강을 취소합니다. 자리는 바로 다른 학생(대기자)에게 넘어가며, 다시 신청해도 자리가 남아 있다는 보장이 없습니다.', 'drop.cancel': '취소',
  },
  en: {
    'app.title': 'EnrollQ Registration', 'app.footer': 'EnrollQ · a fair first-come queue', 'skip': 'Skip to content',
    'nav.search': 'Courses', 'nav.cart': 'Cart', 'nav.queue': 'Requests', 'nav.timetable': 'Timetable',
    'nav.enrollments': 'Enrolled', 'nav.waitlist': 'Waitlist', 'nav.me': 'Account', 'nav.logout': 'Log out',
    'nav.admin.dashboard': 'Dashboard', 'nav.admin.import': 'Import', 'nav.admin.windows': 'Windows', 'nav.admin.courses': 'Courses & audit',
    'login.title': 'Student log in', 'login.no': 'Student number', 'login.pw': 'Password', 'login.submit': 'Log in',
    'login.admin': 'Registrar log in', 'login.admin.user': 'User name', 'login.toAdmin': 'Registrar staff?', 'login.toStudent': 'Student log in',
    'login.sso': 'Sign in with your university account', 'login.or': 'or',
    'search.title': 'Find courses', 'search.q': 'Search (title, code, professor)', 'search.dept': 'Department', 'search.cat': 'Category',
    'search.credits': 'Credits', 'search.day': 'Day', 'search.open': 'Only sections with seats', 'search.submit': 'Search', 'search.any': 'Any',
    'search.total': '{n} sections', 'search.more': 'More', 'search.none': 'No sections match.',
    'col.code': 'Code', 'col.title': 'Title', 'col.prof': 'Professor', 'col.credits': 'Cr.', 'col.time': 'Time', 'col.room': 'Room',
    'col.seats': 'Seats', 'col.action': '', 'col.status': 'Status', 'col.position': 'Position', 'col.reason': 'Reason', 'col.dept': 'Department',
    'btn.addCart': 'Add', 'btn.enroll': 'Register', 'btn.remove': 'Remove', 'btn.drop': 'Drop', 'btn.waitlist': 'Join waitlist',
    'btn.leave': 'Leave', 'btn.up': 'Up', 'btn.down': 'Down', 'btn.cancel': 'Leave queue',
    'cart.title': 'Cart', 'cart.empty': 'Your cart is empty. Add sections from Courses.', 'cart.register': 'Register everything in the cart',
    'cart.credits': '{n} credits in cart', 'cart.added': 'Added to your cart.', 'cart.removed': 'Removed from your cart.',
    'queue.title': 'Your requests', 'queue.none': 'No requests yet.', 'queue.position': 'Position',
    'queue.ahead': '{n} ahead', 'queue.eta': 'about {s}s', 'queue.live': 'live', 'queue.polling': 'checking every 2 s',
    'status.queued': 'Waiting', 'status.enrolled': 'Enrolled', 'status.rejected': 'Not enrolled', 'status.cancelled': 'Cancelled', 'status.error': 'Refused',
    'status.prequeued': 'Waiting for the draw', 'queue.prequeued': 'Your place is drawn by lottery when registration opens.', 'queue.drawRefused': 'Not admitted at the draw: {r}',
    'queue.drawPolling': 'waiting for the draw (shown as soon as registration opens)', 'queue.opening': 'Registration is opening (drawing the pre-queue); retrying automatically in a moment.',
    'prequeue.added': 'Added to the pre-queue. Your place is drawn by lottery when registration opens. ({n} sections in your pre-queue; see Requests)',
    'prequeue.addedCart': 'Added {n} sections to the pre-queue. Your place is drawn by lottery when registration opens.',
    'tt.title': 'Weekly timetable', 'tt.credits': '{n} credits', 'tt.unplaced': 'Sections without fixed times', 'tt.empty': 'You are not enrolled in any section.',
    'enr.title': 'Enrolled sections', 'enr.empty': 'You are not enrolled in any section.', 'enr.dropped': 'Dropped.', 'enr.via.waitlist': 'from the waitlist',
    'wl.title': 'Waitlists', 'wl.empty': 'You are on no waitlist.', 'wl.position': '#{p} of {n}', 'wl.joined': 'You joined the waitlist (#{p}).',
    'wl.left': 'You left the waitlist.', 'wl.skipped': 'Passed over at the last free seat: {r}', 'wl.hint': 'For a full section press "Join waitlist" in Courses. When a seat frees you are enrolled automatically, in waitlist order.',
    'me.title': 'Account', 'me.pw': 'Change password', 'me.old': 'Current password', 'me.new': 'New password (8+ characters)', 'me.save': 'Change',
    'me.changed': 'Your password was changed.', 'me.open': 'You may register now', 'me.closed': 'Registration is not open for you now',
    'pw.title': 'Change your initial password', 'pw.intro': 'This is your first login: replace the initial password with your own before registering.',
    'pw.again': 'New password again', 'pw.mismatch': 'The two new passwords differ.',
    'admin.import': 'Import catalog and roster', 'admin.catalog': 'Course catalog (CSV)', 'admin.roster': 'Student roster (CSV)', 'admin.initpw': 'Initial password',
    'admin.upload': 'Import', 'admin.progress': '{d} of {t}', 'admin.done': 'Done: {i} added, {u} changed, {s} unchanged',
    'admin.invalid': 'The file has errors; nothing was imported. Fix these rows and upload again.', 'col.row': 'Row', 'col.column': 'Column', 'col.code2': 'Code', 'col.message': 'Problem', 'col.value': 'Value',
    'admin.windows': 'Registration windows', 'admin.flag': 'Registration switch', 'admin.flag.open': 'open', 'admin.flag.closed': 'closed',
    'admin.open': 'Open registration', 'admin.close': 'Close registration', 'admin.term': 'Term {t}', 'admin.openNow': 'Class years open now: {y}',
    'admin.year': 'Class year (empty: all)', 'admin.opens': 'Opens', 'admin.closes': 'Closes', 'admin.addWindow': 'Add window', 'admin.saveWindows': 'Save windows',
    'admin.noWindows': 'No windows: the switch alone opens and closes registration.', 'admin.saved': 'Saved.',
    'pq.title': 'Pre-queue (lottery)', 'pq.hint': 'While registration is closed, requests sent to an open pre-queue are admitted first when registration opens, students in a random drawn order.',
    'pq.open': 'Open the pre-queue', 'pq.close': 'Close the pre-queue', 'pq.state.open': 'open', 'pq.state.closed': 'closed', 'pq.count': '{s} students · {e} requests',
    'pq.listing': 'Preparing the draw (recording the order)', 'pq.drawing': 'Drawing {c} of {t}', 'pq.done': 'Drawn: {t} requests admitted ({d} s)', 'pq.windowOpen': 'Only while registration is closed.',
    'pq.opened': 'The pre-queue is open.', 'pq.closed': 'The pre-queue is closed; its requests are drawn when registration opens.', 'pq.waiting': 'Opening registration draws {s} students.',
    'admin.dash': 'Live dashboard', 'kpi.pending': 'Queue length', 'kpi.sessions': 'Students on the page', 'kpi.admitted': 'Admitted/s', 'kpi.decided': 'Decided/s', 'kpi.enrolled': 'Enrolled',
    'kpi.rejected': 'Rejected', 'kpi.fill': 'Seats filled', 'chart.queue': 'Queue length', 'chart.rate': 'Throughput (per s)', 'admin.fill': 'Fullest sections', 'admin.rejections': 'Rejection reasons',
    'admin.capacity': 'Change capacity', 'admin.courseId': 'Course id', 'admin.newCap': 'New capacity', 'admin.audit': 'Student request audit', 'admin.export': 'Download enrollments (CSV)',
    'reason.sold_out': 'sold out', 'reason.window_closed': 'outside the window', 'reason.course_closed': 'section closed', 'reason.unknown_course': 'no such section',
    'reason.already_enrolled': 'already enrolled', 'reason.same_course_code': 'another section of this course', 'reason.credit_limit': 'credit limit',
    'reason.time_conflict': 'time conflict', 'reason.unknown_student': 'unknown student', 'reason.already_queued': 'already waiting in the line', 'reason.refused': 'refused',
    'err.network': 'Cannot reach the server; try again shortly.', 'loading': 'Loading…',
    'net.retrying': 'Retrying… ({n}/{max}) It is sent as the same request, so it cannot be taken twice.', 'btn.retrying': 'Retrying…', 'btn.sending': 'Sending…',
    'days': 'Mon,Tue,Wed,Thu,Fri,Sat,Sun',
    'status.dropped': 'Dropped', 'status.waitlisted': 'On the waitlist', 'queue.droppedHint': 'You dropped this section. Register again to take it.',
    'state.waitlisted': 'Waitlist #{p}', 'state.inCart': 'In your cart',
    'cart.skipEnrolled': '{n} sections you are already enrolled in are not sent again.', 'cart.allEnrolled': 'You are already enrolled in every section in your cart.',
    'drop.title': 'Drop this section?', 'drop.body': 'You are dropping {c}. The seat goes to another student (the waitlist) at once; it may be gone if you register again.', 'drop.cancel': 'Cancel',
  },
};

let lang = localStorage.getItem('eq.lang') || 'ko';

export function getLang() { return lang; }

export function setLang(l) {
  lang = dict[l] ? l : 'ko';
  localStorage.setItem('eq.lang', lang);
  document.documentElement.lang = lang;
}

// t returns the text of key with {name} placeholders filled from vars.
export function t(key, vars) {
  let s = dict[lang][key] ?? dict.ko[key] ?? key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.replaceAll('{' + k + '}', v);
  return s;
}

export function dayName(i) { return t('days').split(',')[i] ?? ''; }

export function reason(r) { return r ? t('reason.' + r) : ''; }

// errText picks the message of an API error in the current language.
export function errText(e) {
  if (!e) return '';
  return lang === 'en' ? (e.message_en || e.message || e.code) : (e.message || e.message_en || e.code);
}
