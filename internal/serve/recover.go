package serve

import (
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"
)

// statusWriter remembers whether the header went out, so that a recovered
// panic knows whether a 500 can still be sent.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection underneath.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// handle adapts an error-returning handler: it writes the error as JSON,
// logs the request, and turns a panic into a 500 so one bad request never
// takes the server (or its connection pool) down.
func (s *Server) handle(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w := &statusWriter{ResponseWriter: rw}
		start := time.Now()
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
				if w.code == 0 {
					writeError(w, errorf(http.StatusInternalServerError, "internal server error: %v", p))
				}
			}
			level := slog.LevelDebug
			if w.code >= 500 {
				level = slog.LevelWarn
			}
			s.log.Log(r.Context(), level, "request", "method", r.Method, "path", r.URL.Path, "status", w.code, "duration", time.Since(start))
		}()
		if err := h(w, r); err != nil {
			if errors.Is(err, errClientGone) {
				return
			}
			writeError(w, err)
		}
	})
}
