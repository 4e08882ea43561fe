package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"testing"
)

func TestWriteHint(t *testing.T) {
	chown := fmt.Sprintf("chown %d:%d DIR", os.Getuid(), os.Getgid())
	mkdir := func(errno error) error { return &fs.PathError{Op: "mkdir", Path: "/models/flowers", Err: errno} }
	cases := map[string]struct {
		err  error
		want []string // parts of the hint; none: no hint
	}{
		// As internal/train and savedmodel wrap them: "--out DIR: mkdir DIR: permission denied".
		"mkdir denied, wrapped": {fmt.Errorf("--out /models/flowers: %w", mkdir(syscall.EACCES)),
			[]string{"may not create files in /models;", chown, "--user"}},
		"temp file denied": {fmt.Errorf("atomic write x: %w",
			&fs.PathError{Op: "createtemp", Path: "/models/run/.labels.txt.tmp-*", Err: syscall.EACCES}),
			[]string{"in /models/run;", chown}},
		"read-only mount": {fmt.Errorf("savedmodel: export to /models/flowers: %w", mkdir(syscall.EROFS)),
			[]string{"/models is on a read-only file system", "without :ro"}},
		"missing parent":   {mkdir(syscall.ENOENT), nil},
		"unreadable input": {&fs.PathError{Op: "open", Path: "/data/a.jpg", Err: syscall.EACCES}, nil},
		"not a path error": {errors.New("permission denied"), nil},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := writeHint(tc.err)
			if len(tc.want) == 0 {
				if got != "" {
					t.Fatalf("writeHint(%v) = %q, want none", tc.err, got)
				}
				return
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("writeHint(%v) = %q, want it to contain %q", tc.err, got, w)
				}
			}
		})
	}
}

// TestPrintError: the hint follows the error on its one line.
func TestPrintError(t *testing.T) {
	var b strings.Builder
	printError(&b, fmt.Errorf("--out /models/run: %w", &fs.PathError{Op: "mkdir", Path: "/models/run", Err: syscall.EACCES}))
	const want = "tfflowers: --out /models/run: mkdir /models/run: permission denied; uid "
	if got := b.String(); !strings.HasPrefix(got, want) || !strings.Contains(got, "chown ") || strings.Count(got, "\n") != 1 {
		t.Fatalf("printError wrote %q, want one line starting %q with the chown hint", got, want)
	}
	b.Reset()
	printError(&b, errors.New("boom"))
	if b.String() != "tfflowers: boom\n" {
		t.Fatalf("printError wrote %q for a plain error", b.String())
	}
}
