package serve

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestParseImage(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		want    []float32
		wantErr string
	}{
		{"ok", `[[[1,2,3],[4,5,6]],[[7,8,9],[10,11,12]]]`, []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, ""},
		{"spaces and exponents", " [ [ [0 , 2.5e1, 255] ,[1E2,-0,0.5]] , [[0,0,0],[0,0,1]] ] ", []float32{0, 25, 255, 100, 0, 0.5, 0, 0, 0, 0, 0, 1}, ""},
		{"too few rows", `[[[1,2,3],[4,5,6]]]`, nil, "got 1 rows"},
		{"too many rows", `[[[1,2,3],[4,5,6]],[[1,2,3],[4,5,6]],[[1,2,3],[4,5,6]]]`, nil, "more than 2 rows"},
		{"short row", `[[[1,2,3]],[[7,8,9],[10,11,12]]]`, nil, "row 0 has 1 pixels"},
		{"long row", `[[[1,2,3],[1,2,3],[1,2,3]],[[7,8,9],[10,11,12]]]`, nil, "row 0 has more than 2 pixels"},
		{"grey pixel", `[[[1,2,3],[4,5,6]],[[7],[10,11,12]]]`, nil, "pixel [1][0] has 1 channels"},
		{"rgba pixel", `[[[1,2,3],[4,5,6,7]],[[7,8,9],[10,11,12]]]`, nil, "pixel [0][1] has more than 3 channels"},
		{"string", `[[[1,"2",3],[4,5,6]],[[7,8,9],[10,11,12]]]`, nil, "array of numbers, found '\"' at offset 5"},
		{"null", `null`, nil, "array of numbers"},
		{"too deep", `[[[[1],2,3],[4,5,6]],[[7,8,9],[10,11,12]]]`, nil, "array of numbers"},
		{"negative", `[[[1,2,3],[4,5,6]],[[7,8,-1],[10,11,12]]]`, nil, "pixel [1][0] has value -1; want 0..255"},
		{"too bright", `[[[1,2,3],[4,5,6]],[[7,8,9],[10,11,1e40]]]`, nil, "1e40"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseImage([]byte(tc.raw), 2)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseImageMatchesEncodingJSON(t *testing.T) {
	const size = 16
	rng := rand.New(rand.NewPCG(1, 2))
	img := make([][][]float32, size)
	var want []float32
	for y := range img {
		img[y] = make([][]float32, size)
		for x := range img[y] {
			px := []float32{float32(rng.IntN(256)), rng.Float32() * 255, float32(rng.IntN(2551)) / 10}
			img[y][x] = px
			want = append(want, px...)
		}
	}
	raw, err := json.Marshal(img)
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseImage(raw, size)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Error("parseImage disagrees with encoding/json")
	}
}

// TestTFFloatFormat: TF Serving's json_tensor_test.cc cases, and float32
// values that need nine digits to read back.
func TestTFFloatFormat(t *testing.T) {
	cases := map[float32]string{
		9e6: "9e+06", 999999: "999999.0", 0.5: "0.5", 0.0003: "0.0003", 3e-5: "3e-05", 555557.5: "555557.5",
		0: "0.0", 1: "1.0", 1435774380: "1.43577434e+09", 0.1: "0.1", 0.123456789: "0.123456791",
		1.0 / 3: "0.333333343", -2: "-2.0", 100000: "100000.0", 1e6: "1e+06",
	}
	for v, want := range cases {
		if got := string(appendTFFloat(nil, v)); got != want {
			t.Errorf("%v: got %s, want %s", v, got, want)
		}
	}
	b, err := tfFloats{1, 0.25}.MarshalJSON()
	if err != nil || string(b) != "[1.0,0.25]" {
		t.Errorf("list: %s %v", b, err)
	}
}
