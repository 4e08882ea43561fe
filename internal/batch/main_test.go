package batch_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// tfflowersBin is the tfflowers binary built once by TestMain; jobs run as its children.
var tfflowersBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tfflowers-batch-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tfflowersBin = filepath.Join(dir, "tfflowers")
	build := exec.Command("go", "build", "-o", tfflowersBin, "github.com/tfflowers/tfflowers/cmd/tfflowers")
	build.Env = os.Environ()
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "batch tests: building tfflowers: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
