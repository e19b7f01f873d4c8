package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/olahol/melody"

	"github.com/enrollq/enrollq/internal/positions"
)

// runBare serves the cost floor for cmd/wsbench: the same melody
// configuration and Gin router, no authentication, no Redis, no MariaDB, and
// once per tick one position-shaped frame broadcast to every session with
// melody's own Broadcast (one shared frame, melody's hub fans it out).
func runBare(ctx context.Context, ln net.Listener, o options) error {
	o.defaults()
	m := newMelody(o)
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.GET("/ws", func(c *gin.Context) {
		if err := m.HandleRequest(c.Writer, c.Request); err != nil && !errors.Is(err, melody.ErrClosed) {
			o.Logger.Debug("bare: upgrade failed", "err", err)
		}
	})
	r.GET("/healthz", func(c *gin.Context) {
		c.JSON(http.StatusOK, gin.H{"status": "ok", "sessions": m.Len(), "mode": "bare"})
	})
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	serverErrors := make(chan error, 1)
	go func() { serverErrors <- srv.Serve(ln) }()
	o.Logger.Info("queue-ws: bare mode", "addr", ln.Addr().String(), "tick", o.Tick)

	t := time.NewTicker(o.Tick)
	defer t.Stop()
	pos := int64(50000)
	for {
		select {
		case err := <-serverErrors:
			return fmt.Errorf("serve: %w", err)
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := srv.Shutdown(sctx)
			_ = m.CloseWithMsg(melody.FormatCloseMessage(positions.CloseGoingAway, positions.ReasonGoingAway))
			return err
		case now := <-t.C:
			pos = max(pos-1, 1)
			_ = m.Broadcast(bareFrame(1_000_000, pos, now.UnixMilli()))
		}
	}
}

// bareFrame is shaped like a position frame of the real server.
func bareFrame(id, pos, ts int64) []byte {
	b := make([]byte, 0, 128)
	b = append(b, `{"type":"position","request_id":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `,"position":`...)
	b = strconv.AppendInt(b, pos, 10)
	b = append(b, `,"ahead":`...)
	b = strconv.AppendInt(b, pos-1, 10)
	b = append(b, `,"eta_seconds":`...)
	b = strconv.AppendInt(b, pos/100, 10)
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, ts, 10)
	return append(b, '}')
}
