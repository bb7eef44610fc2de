package main

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

func parseLevel(s string) slog.Level {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// newLogger builds the process logger: text or JSON on stderr, the level
// adjustable at run time, warnings and errors rate-limited.
func newLogger(cfg LogConfig, level *slog.LevelVar) *slog.Logger {
	if level == nil {
		level = new(slog.LevelVar)
	}
	level.Set(parseLevel(cfg.Level))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, opts)
	if cfg.Format == "json" {
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	perSec := cfg.ErrorsPerSecond
	if perSec <= 0 {
		perSec = 20
	}
	return slog.New(&limitedHandler{Handler: h, st: &limitState{lim: rate.NewLimiter(rate.Limit(perSec), int(perSec)*5)}})
}

// limitedHandler drops warning and error lines beyond a rate, so a flood of
// bad packets or a dead upstream cannot fill a disk; what it dropped is
// reported in the next line that gets through.
type limitedHandler struct {
	slog.Handler
	st *limitState
}

type limitState struct {
	lim     *rate.Limiter
	dropped atomic.Uint64
}

func (h *limitedHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		if !h.st.lim.Allow() {
			h.st.dropped.Add(1)
			return nil
		}
		if n := h.st.dropped.Swap(0); n > 0 {
			note := slog.NewRecord(time.Now(), slog.LevelWarn, "log lines suppressed by the rate limit", 0)
			note.AddAttrs(slog.Uint64("suppressed", n))
			_ = h.Handler.Handle(ctx, note)
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h *limitedHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &limitedHandler{Handler: h.Handler.WithAttrs(as), st: h.st}
}

func (h *limitedHandler) WithGroup(name string) slog.Handler {
	return &limitedHandler{Handler: h.Handler.WithGroup(name), st: h.st}
}
