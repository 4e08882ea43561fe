package serve

import (
	"net/http"
	"strconv"
	"strings"
)

// route dispatches TF Serving's REST paths. http.ServeMux cannot express
// them: the ":predict" verb is glued to the last path segment.
//
//	/v1/models/{name}[/versions/{N}]            GET: status
//	/v1/models/{name}[/versions/{N}]/metadata   GET: metadata
//	/v1/models/{name}[/versions/{N}]:predict    POST: predict
func (s *Server) route(w http.ResponseWriter, r *http.Request) error {
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/models/")
	if !ok {
		return malformed(r)
	}
	verb := ""
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		rest, verb = rest[:i], rest[i+1:]
	}
	segs := strings.Split(rest, "/")
	name, segs := segs[0], segs[1:]
	if name == "" {
		return malformed(r)
	}
	var spec versionSpec
	if len(segs) >= 2 && segs[0] == "versions" {
		n, err := strconv.ParseInt(segs[1], 10, 64)
		if err != nil || n < 0 {
			return badRequest("invalid model version %q: want a non-negative integer", segs[1])
		}
		spec = versionSpec{num: n, specific: true}
		segs = segs[2:]
	}
	switch {
	case verb == "predict" && len(segs) == 0:
		if err := allow(w, r, http.MethodPost); err != nil {
			return err
		}
		return s.predict(w, r, name, spec)
	case (verb == "classify" || verb == "regress") && len(segs) == 0:
		return badRequest("%s is not supported: tfflowers models only have predict signatures", verb)
	case verb == "" && len(segs) == 0:
		if err := allow(w, r, http.MethodGet); err != nil {
			return err
		}
		return s.status(w, name, spec)
	case verb == "" && len(segs) == 1 && segs[0] == "metadata":
		if err := allow(w, r, http.MethodGet); err != nil {
			return err
		}
		return s.metadata(w, name, spec)
	}
	return malformed(r)
}

// malformed is TF Serving's answer to a path it does not serve.
func malformed(r *http.Request) error {
	return errorf(http.StatusNotFound, "Malformed request: %s %s", r.Method, r.URL.Path)
}

func allow(w http.ResponseWriter, r *http.Request, method string) error {
	if r.Method == method || (method == http.MethodGet && r.Method == http.MethodHead) {
		return nil
	}
	w.Header().Set("Allow", method)
	return errorf(http.StatusMethodNotAllowed, "method %s not allowed for %s; use %s", r.Method, r.URL.Path, method)
}
