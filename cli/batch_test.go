package cli

import (
	"strings"
	"testing"
)

// CheckTrainArgs parses with train's own flags: what train accepts passes, what it
// refuses fails with the flag package's message.
func TestCheckTrainArgs(t *testing.T) {
	for _, ok := range [][]string{
		{"--data=d", "--epochs=3", "--lr=1e-3", "--augment=true", "--tfrecords=a", "--tfrecords=b", "--seed=7"},
		{},
	} {
		if err := CheckTrainArgs(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for args, want := range map[string]string{
		"--epochs=abc":     "invalid value",
		"--image-size=1.5": "invalid value",
		"--seed=-1":        "invalid value",
		"--augment=maybe":  "invalid boolean",
		"--nope=1":         "not defined",
	} {
		if err := CheckTrainArgs([]string{args}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error with %q", args, err, want)
		}
	}
	if err := CheckTrainArgs([]string{"--data=d", "extra"}); err == nil {
		t.Error("a positional argument passed")
	}
}
