package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"google.golang.org/grpc/codes"
)

// httpError is an error with the HTTP status it answers with. Handlers
// return it; writeError turns it into TF Serving's {"error": "..."} body.
type httpError struct {
	code int
	grpc codes.Code // the gRPC code when it is not the HTTP status's counterpart (see grpcError)
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func errorf(code int, format string, args ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

var (
	errOverloaded      = &httpError{code: http.StatusServiceUnavailable, grpc: codes.ResourceExhausted, msg: "server overloaded: too many images are waiting for prediction; retry later"}
	errClosed          = &httpError{code: http.StatusServiceUnavailable, msg: "server is shutting down"}
	errVersionUnloaded = &httpError{code: http.StatusServiceUnavailable, msg: "model version was unloaded while the request waited; retry"}
)

// statusOf maps an error to its HTTP status: 500 unless it says otherwise,
// because an error nobody classified is the server's fault.
func statusOf(err error) int {
	var he *httpError
	if errors.As(err, &he) {
		return he.code
	}
	return http.StatusInternalServerError
}

// errorBody is TF Serving's REST error shape.
type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, err error) {
	writeJSON(w, statusOf(err), errorBody{Error: err.Error()})
}

// writeJSON marshals v before writing anything, so that a marshalling
// failure can still become a proper 500 instead of a truncated 200.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{Error: fmt.Sprintf("encode response: %v", err)})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(b) // a failed write means the client went away; nothing to tell it
}
