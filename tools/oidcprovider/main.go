// Command oidcprovider is a small, real OpenID Provider for EnrollQ's single
// sign-on tests. It is built on zitadel/oidc's certified `op` package with
// the library's own in-memory example storage and login form
// (example/server/storage and exampleop), configured from flags: one web
// client (id, secret, redirect URI) and a few users, each with a password
// and the student number the ID token carries (claim student_no, plus
// preferred_username).
//
//	oidcprovider -addr 127.0.0.1:9998 -issuer http://127.0.0.1:9998 \
//	  -client-id enrollq -client-secret s3cret \
//	  -redirect-uri http://127.0.0.1:8080/api/v1/auth/sso/callback \
//	  -user 'kim:pw-1234:202600001' -users users.txt
//
// A users file has one user a line: "username password student_no"
// (blank lines and lines starting with # are skipped). It is test tooling,
// not an identity provider for production.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// user is one account of the provider.
type user struct {
	storage.User
	StudentNo string
}

// users implements storage.UserStore over a fixed set of accounts.
type users struct{ byID map[string]*user }

func (u users) GetUserByID(id string) *storage.User {
	if x, ok := u.byID[id]; ok {
		return &x.User
	}
	return nil
}

func (u users) GetUserByUsername(name string) *storage.User {
	for _, x := range u.byID {
		if x.Username == name {
			return &x.User
		}
	}
	return nil
}

func (u users) ExampleClientID() string { return storage.ServiceUserID }

// claimStorage is the example storage that also puts student_no and
// preferred_username into ID tokens and userinfo.
type claimStorage struct {
	*storage.Storage
	users users
}

func (s *claimStorage) addClaims(info *oidc.UserInfo, subject string) {
	if x, ok := s.users.byID[subject]; ok {
		info.PreferredUsername = x.Username
		info.AppendClaims("student_no", x.StudentNo)
	}
}

// SetUserinfoFromRequest is called for every ID token.
func (s *claimStorage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, info, req, scopes); err != nil {
		return err
	}
	s.addClaims(info, req.GetSubject())
	return nil
}

// SetUserinfoFromToken is called by the userinfo endpoint.
func (s *claimStorage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, origin string) error {
	if err := s.Storage.SetUserinfoFromToken(ctx, info, tokenID, subject, origin); err != nil {
		return err
	}
	s.addClaims(info, info.Subject)
	return nil
}

type userFlags []string

func (f *userFlags) String() string     { return strings.Join(*f, ",") }
func (f *userFlags) Set(v string) error { *f = append(*f, v); return nil }

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "oidcprovider:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("oidcprovider", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9998", "listen address")
	issuer := fs.String("issuer", "", "issuer URL (default http://<addr>)")
	clientID := fs.String("client-id", "enrollq", "the client's id")
	secret := fs.String("client-secret", "enrollq-sso-secret", "the client's secret")
	redirect := fs.String("redirect-uri", "", "the client's redirect URI (required)")
	usersFile := fs.String("users", "", `file of users, one "username password student_no" a line`)
	var inline userFlags
	fs.Var(&inline, "user", `a user "username:password:student_no" (repeatable)`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *redirect == "" {
		return errors.New("-redirect-uri is required")
	}
	if *issuer == "" {
		*issuer = "http://" + *addr
	}
	var lines []string
	for _, u := range inline {
		lines = append(lines, strings.ReplaceAll(u, ":", " "))
	}
	if *usersFile != "" {
		f, err := os.Open(*usersFile)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return err
		}
	}
	us := users{byID: map[string]*user{}}
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Fields(l)
		if len(f) != 3 {
			return fmt.Errorf("user %q: want username, password and student_no", l)
		}
		id := fmt.Sprintf("u%d", len(us.byID)+1)
		us.byID[id] = &user{User: storage.User{ID: id, Username: f[0], Password: f[1], FirstName: f[0],
			LastName: "Student", Email: f[0] + "@univ.example", EmailVerified: true, PreferredLanguage: language.Korean}, StudentNo: f[2]}
	}
	if len(us.byID) == 0 {
		return errors.New("no users: give -user or -users")
	}

	client := storage.WebClient(*clientID, *secret, *redirect)
	st := &claimStorage{Storage: storage.NewStorageWithClients(us, map[string]*storage.Client{*clientID: client}), users: us}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	router := exampleop.SetupServer(*issuer, st, log, false)

	srv := &http.Server{Addr: *addr, Handler: router, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("oidcprovider listening", "addr", *addr, "issuer", *issuer, "client", *clientID, "users", len(us.byID))
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
