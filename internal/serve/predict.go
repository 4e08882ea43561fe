package serve

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
)

// predict answers POST /v1/models/{name}[/versions/{N}]:predict.
func (s *Server) predict(w http.ResponseWriter, r *http.Request, name string, spec versionSpec) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	top, err := parseJSONObject(body)
	if err != nil {
		return err
	}
	// The version is acquired only after the body is in: a slow upload must
	// not keep an old version loaded.
	v, err := s.acquire(name, spec)
	if err != nil {
		return err
	}
	defer s.release(v)
	req, err := parsePredictFields(top, v.imageSize, s.cfg.MaxInstances)
	if err != nil {
		return err
	}
	if err := s.inspect(req); err != nil {
		return err
	}
	results, err := v.predict(r.Context(), req)
	if err != nil {
		return s.predictError(r.Context(), err)
	}
	for i, res := range results {
		if res.err != nil {
			// TF Serving fails the whole request when one image is bad.
			return badRequest("instance %d: %v", i, res.err)
		}
	}
	writeJSON(w, http.StatusOK, predictResponse(req.columnar, results))
	return nil
}

// predictError classifies a failure of the batched prediction.
func (s *Server) predictError(ctx context.Context, err error) error {
	var pe *panicError
	switch {
	case errors.As(err, &pe):
		return err // 500, already logged with its stack by the batcher
	case ctx.Err() != nil:
		return errClientGone
	case s.ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
		// Close cancelled the model's context under this request.
		return errClosed
	}
	return err
}

// errClientGone marks a request whose client disconnected: there is no one
// to answer, so the handler writes nothing.
var errClientGone = errors.New("client went away")

// readBody reads the whole body within MaxBodyBytes. A declared
// Content-Length over the limit is refused before reading anything.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	limit := s.cfg.MaxBodyBytes
	if r.ContentLength > limit {
		return nil, tooLarge(r.ContentLength, limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge(-1, limit)
		}
		if r.Context().Err() != nil {
			return nil, errClientGone
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// The server's ReadTimeout cut off a slow upload.
			return nil, errorf(http.StatusRequestTimeout, "request body not received within the server's read timeout")
		}
		return nil, badRequest("read request body: %v", err)
	}
	return body, nil
}

func tooLarge(n, limit int64) error {
	if n < 0 {
		return errorf(http.StatusRequestEntityTooLarge, "request body larger than the %d byte limit", limit)
	}
	return errorf(http.StatusRequestEntityTooLarge, "request body of %d bytes is larger than the %d byte limit", n, limit)
}

// classifyOrRegress answers :classify and :regress as TF Serving does for a
// model with only predict signatures: bad JSON is 400, an unknown model or
// version 404, and otherwise 400 naming the signature's method.
func (s *Server) classifyOrRegress(w http.ResponseWriter, r *http.Request, name string, spec versionSpec, verb string) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	top, err := parseJSONObject(body)
	if err != nil {
		return err
	}
	sig := sigBytes
	if raw, ok := top["signature_name"]; ok {
		if err := json.Unmarshal(raw, &sig); err != nil {
			return badRequest("\"signature_name\" must be a string")
		}
	}
	if verb == "classify" {
		return s.wrongMethod(name, spec, sig, "classification", methodClassify)
	}
	return s.wrongMethod(name, spec, sig, "regression", methodRegress)
}
