package main

import "testing"

func TestDebugLogging(t *testing.T) {
	cases := []struct {
		args []string
		env  string
		want bool
	}{
		{nil, "", false},
		{[]string{"train", "--data", "d"}, "", false},
		{[]string{"--log-level", "debug", "train"}, "", true},
		{[]string{"--log-level=DEBUG", "train"}, "", true},
		{[]string{"-log-level", "debug"}, "", true},
		{[]string{"--log-level", "info", "train"}, "debug", false}, // the flag wins over the environment
		{[]string{"train"}, "debug", true},
		{[]string{"predict", "--", "--log-level", "debug"}, "", false}, // file names after --
	}
	for _, tc := range cases {
		if got := debugLogging(tc.args, tc.env); got != tc.want {
			t.Errorf("debugLogging(%q, %q) = %v, want %v", tc.args, tc.env, got, tc.want)
		}
	}
}
