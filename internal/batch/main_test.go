package batch_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/tfflowers/tfflowers/internal/tftest"
)

// tfflowersBin is the tfflowers binary built once by TestMain; jobs run as its children.
var tfflowersBin string

func TestMain(m *testing.M) {
	bin, cleanup, err := tftest.BuildCLI()
	if err != nil {
		fmt.Fprintf(os.Stderr, "batch tests: %v\n", err)
		os.Exit(1)
	}
	tfflowersBin = bin
	code := m.Run()
	cleanup()
	os.Exit(code)
}
