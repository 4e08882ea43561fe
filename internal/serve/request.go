package serve

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/tfflowers/tfflowers/internal/contract"
)

// Input names of the two signatures.
const (
	inputBytes  = contract.InputBytes
	inputPixels = contract.InputImages
)

// predictRequest is a parsed, validated predict body.
type predictRequest struct {
	signature string
	columnar  bool        // "inputs" (answer with "outputs") rather than "instances"
	images    [][]byte    // serving_default
	pixels    [][]float32 // predict_images, each h*w*3 in row-major HWC order
}

func badRequest(format string, args ...any) error {
	return errorf(http.StatusBadRequest, format, args...)
}

// parsePredictRequest decodes a TF Serving predict body. imageSize is the
// height and width predict_images requires; maxInstances bounds the batch.
func parsePredictRequest(body []byte, imageSize, maxInstances int) (*predictRequest, error) {
	top, err := parseJSONObject(body)
	if err != nil {
		return nil, err
	}
	return parsePredictFields(top, imageSize, maxInstances)
}

// parseJSONObject is the syntax check TF Serving makes before it looks the
// model up: bad JSON is 400 even for an unknown model.
func parseJSONObject(body []byte) (map[string]json.RawMessage, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return nil, badRequest("malformed JSON request: want an object with \"instances\" or \"inputs\"")
	}
	var top map[string]json.RawMessage
	if err := strictUnmarshal(body, &top); err != nil {
		return nil, badRequest("malformed JSON request: %v", err)
	}
	return top, nil
}

// parsePredictFields reads a predict body's fields once the model is known.
func parsePredictFields(top map[string]json.RawMessage, imageSize, maxInstances int) (*predictRequest, error) {
	req := &predictRequest{signature: sigBytes}
	if raw, ok := top["signature_name"]; ok {
		if err := json.Unmarshal(raw, &req.signature); err != nil {
			return nil, badRequest("\"signature_name\" must be a string")
		}
		if req.signature == "" {
			req.signature = sigBytes
		}
	}
	if req.signature != sigBytes && req.signature != sigPixels {
		return nil, badRequest("Serving signature name: \"%s\" not found in signature def", req.signature)
	}
	instances, hasInstances := top["instances"]
	inputs, hasInputs := top["inputs"]
	switch {
	case hasInstances && hasInputs:
		return nil, badRequest("not allowed to have both \"instances\" and \"inputs\" in the request")
	case !hasInstances && !hasInputs:
		return nil, badRequest("missing \"instances\" or \"inputs\" key")
	}
	var err error
	switch {
	case hasInstances && req.signature == sigBytes:
		req.images, err = parseRowBytes(instances, maxInstances)
	case hasInstances:
		req.pixels, err = parseRowPixels(instances, imageSize, maxInstances)
	case req.signature == sigBytes:
		req.columnar = true
		req.images, err = parseColumnarBytes(inputs, maxInstances)
	default:
		req.columnar = true
		req.pixels, err = parseColumnarPixels(inputs, imageSize, maxInstances)
	}
	if err != nil {
		return nil, err
	}
	return req, nil
}

// strictUnmarshal is json.Unmarshal that also names trailing garbage,
// which json.Unmarshal reports only as "invalid character".
func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return err
	}
	// Decoder.More misses a stray ']' or '}', so try to read a second value.
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("unexpected data after the JSON value at offset %d", dec.InputOffset())
	}
	return nil
}

// splitList decodes a JSON list, checking its length against the limits.
func splitList(raw json.RawMessage, what string, maxInstances int) ([]json.RawMessage, error) {
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil || list == nil {
		return nil, badRequest("%s must be a list", what)
	}
	if len(list) == 0 {
		return nil, badRequest("%s is empty", what)
	}
	if len(list) > maxInstances {
		return nil, badRequest("too many instances: %d, the limit is %d per request", len(list), maxInstances)
	}
	return list, nil
}

// namedInput unwraps the named-input form {"<name>": value}. It returns
// ok=false for anything that is not a JSON object.
func namedInput(raw json.RawMessage) (fields map[string]json.RawMessage, ok bool) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || t[0] != '{' {
		return nil, false
	}
	if err := json.Unmarshal(t, &fields); err != nil {
		return nil, false
	}
	return fields, true
}

func keys(m map[string]json.RawMessage) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, fmt.Sprintf("%q", k))
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

// parseRowBytes reads serving_default instances: {"b64": ...} or
// {"image_bytes": {"b64": ...}}.
func parseRowBytes(raw json.RawMessage, maxInstances int) ([][]byte, error) {
	list, err := splitList(raw, "\"instances\"", maxInstances)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(list))
	for i, inst := range list {
		fields, ok := namedInput(inst)
		if ok && len(fields) == 1 {
			if v, named := fields[inputBytes]; named {
				inst = v
			}
		} else if ok && len(fields) > 1 {
			return nil, badRequest("instance %d: unexpected inputs %s; signature %s takes only %q", i, keys(fields), sigBytes, inputBytes)
		}
		if out[i], err = decodeB64(inst); err != nil {
			return nil, badRequest("instance %d: %v", i, err)
		}
	}
	return out, nil
}

// parseColumnarBytes reads serving_default "inputs": a list of {"b64": ...},
// or {"image_bytes": that list}.
func parseColumnarBytes(raw json.RawMessage, maxInstances int) ([][]byte, error) {
	if fields, ok := namedInput(raw); ok {
		v, named := fields[inputBytes]
		if !named || len(fields) != 1 {
			return nil, badRequest("\"inputs\" has inputs %s; signature %s takes only %q", keys(fields), sigBytes, inputBytes)
		}
		raw = v
	}
	list, err := splitList(raw, "\"inputs\" "+inputBytes, maxInstances)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(list))
	for i, inst := range list {
		if out[i], err = decodeB64(inst); err != nil {
			return nil, badRequest("instance %d: %v", i, err)
		}
	}
	return out, nil
}

// decodeB64 decodes TF Serving's binary encoding {"b64": "<base64>"}.
func decodeB64(raw json.RawMessage) ([]byte, error) {
	fields, ok := namedInput(raw)
	if !ok {
		// A bare JSON string would be taken as raw UTF-8 by TF Serving,
		// which can never hold a JPEG: say what is expected instead.
		return nil, fmt.Errorf("%s must be base64 in an object {\"b64\": \"...\"}", inputBytes)
	}
	v, has := fields["b64"]
	if !has {
		return nil, fmt.Errorf("unknown input(s) %s; signature %s takes %q as {\"b64\": \"...\"}", keys(fields), sigBytes, inputBytes)
	}
	if len(fields) != 1 {
		return nil, fmt.Errorf("unexpected keys %s next to \"b64\"", keys(fields))
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, errors.New("\"b64\" must be a string")
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		// Clients differ on padding and on the URL-safe alphabet; TF
		// Serving accepts both, so try them before failing.
		for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if b2, err2 := enc.DecodeString(s); err2 == nil {
				return b2, nil
			}
		}
		return nil, fmt.Errorf("bad base64 in \"b64\": %v", err)
	}
	return b, nil
}

// parseRowPixels reads predict_images instances: [h][w][3] arrays, or
// {"images": [h][w][3]}.
func parseRowPixels(raw json.RawMessage, size, maxInstances int) ([][]float32, error) {
	list, err := splitList(raw, "\"instances\"", maxInstances)
	if err != nil {
		return nil, err
	}
	out := make([][]float32, len(list))
	for i, inst := range list {
		if fields, ok := namedInput(inst); ok {
			v, named := fields[inputPixels]
			if !named || len(fields) != 1 {
				return nil, badRequest("instance %d: unexpected inputs %s; signature %s takes only %q", i, keys(fields), sigPixels, inputPixels)
			}
			inst = v
		}
		if out[i], err = parseImage(inst, size); err != nil {
			return nil, badRequest("instance %d: %v", i, err)
		}
	}
	return out, nil
}

// parseColumnarPixels reads predict_images "inputs": an [n][h][w][3]
// array, or {"images": that array}.
func parseColumnarPixels(raw json.RawMessage, size, maxInstances int) ([][]float32, error) {
	if fields, ok := namedInput(raw); ok {
		v, named := fields[inputPixels]
		if !named || len(fields) != 1 {
			return nil, badRequest("\"inputs\" has inputs %s; signature %s takes only %q", keys(fields), sigPixels, inputPixels)
		}
		raw = v
	}
	list, err := splitList(raw, "\"inputs\" "+inputPixels, maxInstances)
	if err != nil {
		return nil, err
	}
	out := make([][]float32, len(list))
	for i, inst := range list {
		if out[i], err = parseImage(inst, size); err != nil {
			return nil, badRequest("instance %d: %v", i, err)
		}
	}
	return out, nil
}
