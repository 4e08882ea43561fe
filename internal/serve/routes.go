package serve

import (
	"net/http"
	"net/url"
	"regexp"
	"strconv"
)

// TF Serving's REST paths (http_rest_api_util.cc), matched against the raw
// path, case-insensitively, as it does. http.ServeMux cannot express them:
// the ":predict" verb is glued to the last path segment.
//
//	POST /v1/models/{name}[/versions/{N}|/labels/{L}]:predict|classify|regress
//	GET  /v1/models/{name}[/versions/{N}|/labels/{L}][/metadata]
var (
	postPath = regexp.MustCompile(`^(?i)/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)$`)
	getPath  = regexp.MustCompile(`^(?i)/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?$`)
)

// route dispatches as TF Serving's HttpRestApiHandler::ProcessRequest does,
// quirks included: anything it does not match, other methods among them,
// is 400 "Malformed request"; the verb and "metadata" compare case-sensitively
// after the case-insensitive match (GET .../METADATA answers the status).
func (s *Server) route(w http.ResponseWriter, r *http.Request) error {
	path := r.URL.EscapedPath()
	var m []string
	switch r.Method {
	case http.MethodPost:
		m = postPath.FindStringSubmatch(path)
	case http.MethodGet:
		m = getPath.FindStringSubmatch(path)
	}
	if m == nil {
		return malformed(r)
	}
	name, err := url.PathUnescape(m[1])
	if err != nil {
		return badRequest("Failed to decode model name:%s", m[1])
	}
	var spec versionSpec
	if m[2] != "" {
		n, err := strconv.ParseInt(m[2], 10, 64)
		if err != nil {
			return badRequest("Failed to convert version: %s to numeric.", m[2])
		}
		spec = versionSpec{num: n, specific: true}
	}
	if m[3] != "" {
		if spec.label, err = url.PathUnescape(m[3]); err != nil {
			return badRequest("Failed to decode model version label:%s", m[3])
		}
	}
	if r.Method == http.MethodPost {
		switch m[4] {
		case "predict":
			return s.predict(w, r, name, spec)
		case "classify", "regress":
			return s.classifyOrRegress(w, r, name, spec, m[4])
		}
		return malformed(r)
	}
	if name == "" {
		return badRequest("Missing model name in request.")
	}
	if m[4] == "metadata" {
		return s.metadata(w, name, spec)
	}
	return s.status(w, name, spec)
}

// malformed is TF Serving's answer to a path or method it does not serve.
func malformed(r *http.Request) error {
	return badRequest("Malformed request: %s %s", r.Method, r.URL.EscapedPath())
}
