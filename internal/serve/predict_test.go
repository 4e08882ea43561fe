package serve

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestPredictB64(t *testing.T) {
	_, ts := startServer(t, testConfig(t), newFakeLoader(nil))
	url := ts.URL + "/v1/models/flowers:predict"
	img1, img2 := b64("\x01jpeg"), b64("\x02png")
	row := `{"predictions": [
		{"scores": [0.25, 0.5, 0.25], "classes": "roses", "class_ids": 1},
		{"scores": [0.25, 0.25, 0.5], "classes": "tulips", "class_ids": 2}]}`
	col := `{"outputs": {"scores": [[0.25, 0.5, 0.25], [0.25, 0.25, 0.5]], "classes": ["roses", "tulips"], "class_ids": [1, 2]}}`
	tests := []struct {
		name, url, body, want string
	}{
		{"row b64", url, fmt.Sprintf(`{"instances": [{"b64": %q}, {"b64": %q}]}`, img1, img2), row},
		{"row named input", url, fmt.Sprintf(`{"signature_name": "serving_default", "instances": [{"image_bytes": {"b64": %q}}, {"image_bytes": {"b64": %q}}]}`, img1, img2), row},
		{"row unpadded url-safe base64", url, fmt.Sprintf(`{"instances": [{"b64": %q}, {"b64": %q}]}`, strings.TrimRight(img1, "="), img2), row},
		{"columnar named", url, fmt.Sprintf(`{"inputs": {"image_bytes": [{"b64": %q}, {"b64": %q}]}}`, img1, img2), col},
		{"columnar list", url, fmt.Sprintf(`{"inputs": [{"b64": %q}, {"b64": %q}]}`, img1, img2), col},
		{"specific version", ts.URL + "/v1/models/flowers/versions/1:predict", fmt.Sprintf(`{"instances": [{"b64": %q}, {"b64": %q}]}`, img1, img2), row},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(t, http.MethodPost, tc.url, tc.body)
			wantJSON(t, tc.name, code, body, http.StatusOK, tc.want)
		})
	}
	// The exact bytes matter to clients that compare strings: no spaces,
	// float32 scores printed at float32 precision.
	_, body := do(t, http.MethodPost, url, fmt.Sprintf(`{"instances": [{"b64": %q}]}`, img1))
	if want := `{"predictions":[{"scores":[0.25,0.5,0.25],"classes":"roses","class_ids":1}]}`; body != want {
		t.Errorf("body %s, want %s", body, want)
	}
}

// pixelsJSON is a 2x2x3 image whose first value is first.
func pixelsJSON(first int) string {
	return fmt.Sprintf(`[[[%d, 0, 0], [10, 20, 30]], [[255, 255, 255], [0.5, 1.5, 2]]]`, first)
}

func TestPredictImages(t *testing.T) {
	_, ts := startServer(t, testConfig(t), newFakeLoader(nil))
	url := ts.URL + "/v1/models/flowers:predict"
	row := `{"predictions": [
		{"scores": [0.5, 0.25, 0.25], "classes": "daisy", "class_ids": 0},
		{"scores": [0.25, 0.25, 0.5], "classes": "tulips", "class_ids": 2}]}`
	col := `{"outputs": {"scores": [[0.5, 0.25, 0.25], [0.25, 0.25, 0.5]], "classes": ["daisy", "tulips"], "class_ids": [0, 2]}}`
	a, b := pixelsJSON(3), pixelsJSON(5)
	tests := []struct{ name, body, want string }{
		{"row", fmt.Sprintf(`{"signature_name": "predict_images", "instances": [%s, %s]}`, a, b), row},
		{"row named", fmt.Sprintf(`{"signature_name": "predict_images", "instances": [{"images": %s}, {"images": %s}]}`, a, b), row},
		{"columnar", fmt.Sprintf(`{"signature_name": "predict_images", "inputs": [%s, %s]}`, a, b), col},
		{"columnar named", fmt.Sprintf(`{"signature_name": "predict_images", "inputs": {"images": [%s, %s]}}`, a, b), col},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(t, http.MethodPost, url, tc.body)
			wantJSON(t, tc.name, code, body, http.StatusOK, tc.want)
		})
	}
}

func TestPredictErrors(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxInstances = 3
	_, ts := startServer(t, cfg, newFakeLoader(nil))
	url := ts.URL + "/v1/models/flowers:predict"
	good := fmt.Sprintf(`{"b64": %q}`, b64("\x01ok"))
	tests := []struct {
		name     string
		method   string
		url      string
		body     string
		wantCode int
		wantMsg  string // substring of the error message
	}{
		{"malformed JSON", "POST", url, `{"instances": [`, 400, "malformed JSON"},
		{"not an object", "POST", url, `[1, 2]`, 400, "malformed JSON"},
		{"trailing data", "POST", url, `{"instances": [` + good + `]} x`, 400, "malformed JSON"},
		{"trailing brace", "POST", url, `{"instances": [` + good + `]}}`, 400, "unexpected data after the JSON value"},
		{"missing instances", "POST", url, `{"signature_name": "serving_default"}`, 400, `missing "instances" or "inputs"`},
		{"both formats", "POST", url, `{"instances": [], "inputs": []}`, 400, "both"},
		{"empty instances", "POST", url, `{"instances": []}`, 400, "empty"},
		{"instances not a list", "POST", url, `{"instances": {"b64": "AA=="}}`, 400, "must be a list"},
		{"too many instances", "POST", url, `{"instances": [` + strings.Repeat(good+",", 3) + good + `]}`, 400, "too many instances: 4"},
		{"unknown signature", "POST", url, `{"signature_name": "classify", "instances": [` + good + `]}`, 400, `"classify" not found`},
		{"bad base64", "POST", url, `{"instances": [` + good + `, {"b64": "!!not base64!!"}]}`, 400, "instance 1: bad base64"},
		{"b64 not a string", "POST", url, `{"instances": [{"b64": 12}]}`, 400, `instance 0: "b64" must be a string`},
		{"raw string instance", "POST", url, `{"instances": ["aGVsbG8="]}`, 400, `instance 0: image_bytes must be base64 in an object`},
		{"wrong input name", "POST", url, `{"instances": [{"image": {"b64": "AA=="}}]}`, 400, `instance 0: unknown input(s) "image"`},
		{"wrong columnar input name", "POST", url, `{"inputs": {"images": [` + good + `]}}`, 400, `takes only "image_bytes"`},
		{"undecodable image", "POST", url, fmt.Sprintf(`{"instances": [%s, {"b64": %q}]}`, good, b64("bad image")), 400, "instance 1: cannot decode image"},
		{"wrong height", "POST", url, `{"signature_name": "predict_images", "instances": [[[[1,2,3],[1,2,3]]]]}`, 400, "instance 0: images must have shape [2][2][3], got 1 rows"},
		{"wrong channels", "POST", url, `{"signature_name": "predict_images", "instances": [` + pixelsJSON(1) + `, [[[1,2,3],[1,2]],[[1,2,3],[1,2,3]]]]}`, 400, "instance 1: images must have shape [2][2][3], pixel [0][1] has 2 channels"},
		{"pixels not numbers", "POST", url, `{"signature_name": "predict_images", "instances": [[[["a",2,3]]]]}`, 400, "instance 0: images must be a [2][2][3] array of numbers"},
		{"pixel out of range", "POST", url, `{"signature_name": "predict_images", "instances": [[[[-1,2,3],[1,2,3]],[[1,2,3],[1,2,3]]]]}`, 400, "want 0..255"},
		{"columnar wrong rank", "POST", url, `{"signature_name": "predict_images", "inputs": ` + pixelsJSON(1) + `}`, 400, "instance 0"},
		{"bad version", "POST", ts.URL + "/v1/models/flowers/versions/x:predict", `{}`, 400, "Malformed request: POST /v1/models/flowers/versions/x:predict"},
		{"version overflow", "POST", ts.URL + "/v1/models/flowers/versions/99999999999999999999:predict", `{}`, 400, "Failed to convert version: 99999999999999999999 to numeric."},
		{"both version and label", "POST", ts.URL + "/v1/models/flowers/versions/1/labels/x:predict", `{}`, 400, "Malformed request"},
		{"unknown label", "POST", ts.URL + "/v1/models/flowers/labels/stable:predict", `{"instances": [` + good + `]}`, 400, "Unrecognized servable version label: stable"},
		{"bad JSON to unknown model", "POST", ts.URL + "/v1/models/nope:predict", `{"instances": [`, 400, "malformed JSON"},
		{"case-insensitive path", "POST", ts.URL + "/V1/Models/nope/Versions/3:predict", `{"instances": [` + good + `]}`, 404, "Servable not found for request: Specific(nope, 3)"},
		{"verb compared exactly", "POST", ts.URL + "/v1/models/flowers:PREDICT", `{}`, 400, "Malformed request: POST /v1/models/flowers:PREDICT"},
		{"unknown version", "POST", ts.URL + "/v1/models/flowers/versions/7:predict", `{"instances": [` + good + `]}`, 404, "Servable not found for request: Specific(flowers, 7)"},
		{"unknown model", "POST", ts.URL + "/v1/models/nope:predict", `{"instances": [` + good + `]}`, 404, "Servable not found for request: Latest(nope)"},
		{"unknown verb", "POST", ts.URL + "/v1/models/flowers:explain", `{}`, 400, "Malformed request: POST /v1/models/flowers:explain"},
		{"classify", "POST", ts.URL + "/v1/models/flowers:classify", `{"examples": []}`, 400, "Expected classification signature method_name to be tensorflow/serving/classify. Was: tensorflow/serving/predict"},
		{"regress unknown model", "POST", ts.URL + "/v1/models/nope:regress", `{"examples": []}`, 404, "Servable not found for request: Latest(nope)"},
		{"classify bad JSON", "POST", ts.URL + "/v1/models/nope:classify", `{`, 400, "malformed JSON"},
		{"unknown path", "GET", ts.URL + "/v2/whatever", "", 400, "Malformed request: GET /v2/whatever"},
		{"GET predict", "GET", url, "", 400, "Malformed request: GET /v1/models/flowers:predict"},
		{"POST status", "POST", ts.URL + "/v1/models/flowers", "{}", 400, "Malformed request: POST /v1/models/flowers"},
		{"no model name", "GET", ts.URL + "/v1/models", "", 400, "Missing model name in request."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(t, tc.method, tc.url, tc.body)
			if code != tc.wantCode {
				t.Fatalf("status %d, want %d; body %s", code, tc.wantCode, body)
			}
			if msg := errorMessage(t, body); !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("error %q does not contain %q", msg, tc.wantMsg)
			}
		})
	}
	// Exact TF Serving wording for the 404 clients pattern-match on.
	_, body := do(t, "POST", ts.URL+"/v1/models/flowers/versions/7:predict", `{"instances": [`+good+`]}`)
	if want := `{"error":"Servable not found for request: Specific(flowers, 7)"}`; body != want {
		t.Errorf("body %s, want %s", body, want)
	}
}

func TestPredictBodyTooLarge(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxBodyBytes = 1024
	_, ts := startServer(t, cfg, newFakeLoader(nil))
	url := ts.URL + "/v1/models/flowers:predict"
	big := `{"instances": [{"b64": "` + strings.Repeat("A", 2000) + `"}]}`

	// Declared length over the limit: refused before reading.
	code, body := do(t, http.MethodPost, url, big)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(errorMessage(t, body), "limit") {
		t.Errorf("Content-Length: status %d body %s, want 413", code, body)
	}

	// Chunked body of unknown length: cut off while reading.
	req, _ := http.NewRequest(http.MethodPost, url, struct{ *strings.Reader }{strings.NewReader(big)})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked: status %d, want 413", resp.StatusCode)
	}

	// And the server still answers normal requests.
	code, body = do(t, http.MethodPost, url, fmt.Sprintf(`{"instances": [{"b64": %q}]}`, b64("\x00")))
	if code != http.StatusOK {
		t.Errorf("after 413: status %d body %s", code, body)
	}
}

func TestPredictPanicIs500(t *testing.T) {
	_, ts := startServer(t, testConfig(t), newFakeLoader(nil))
	url := ts.URL + "/v1/models/flowers:predict"
	code, body := do(t, http.MethodPost, url, fmt.Sprintf(`{"instances": [{"b64": %q}]}`, b64("panic now")))
	if code != http.StatusInternalServerError || !strings.Contains(errorMessage(t, body), "model panicked") {
		t.Fatalf("status %d body %s, want 500 model panicked", code, body)
	}
	for range 3 {
		code, body = do(t, http.MethodPost, url, fmt.Sprintf(`{"instances": [{"b64": %q}]}`, b64("\x01")))
		if code != http.StatusOK {
			t.Fatalf("after panic: status %d body %s", code, body)
		}
	}
}

func TestHandlerPanicIs500(t *testing.T) {
	// A panic outside the model (here: in a route) must also become a 500
	// and leave the server up.
	s, err := New(testConfig(t), newFakeLoader(nil).load)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h := s.handle(func(w http.ResponseWriter, r *http.Request) error {
		if r.URL.Path == "/boom" {
			panic("handler bug")
		}
		return s.route(w, r)
	})
	srv := httptestServer(t, h)
	code, body := do(t, http.MethodGet, srv+"/boom", "")
	if code != http.StatusInternalServerError || !strings.Contains(errorMessage(t, body), "handler bug") {
		t.Errorf("status %d body %s, want 500", code, body)
	}
	if code, body := do(t, http.MethodGet, srv+"/v1/models/flowers", ""); code != http.StatusOK {
		t.Errorf("after panic: status %d body %s", code, body)
	}
}
