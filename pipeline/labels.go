package pipeline

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/tfflowers/tfflowers/internal/atomicfile"
)

// ReadLabelsFile reads class names, one per line; line i+1 holds the name
// of label i. Surrounding spaces, a UTF-8 byte-order mark, CRLF line ends
// and blank lines at the end of the file are tolerated. An empty line in
// the middle is an error rather than being skipped, because skipping it
// would silently shift every following label by one.
func ReadLabelsFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read labels file: %w", err)
	}
	b = bytes.TrimPrefix(b, []byte("\ufeff"))
	text := strings.TrimRight(strings.ReplaceAll(string(b), "\r\n", "\n"), " \t\r\n")
	if text == "" {
		return nil, fmt.Errorf("read labels file %s: %w: file is empty; want one class name per line", path, ErrLabelsFile)
	}
	lines := strings.Split(text, "\n")
	names := make([]string, len(lines))
	seen := make(map[string]int, len(lines))
	for i, l := range lines {
		names[i] = strings.TrimSpace(l)
		// Checked here, not only in validateClassNames, so the message can
		// point at line numbers.
		if names[i] == "" {
			return nil, fmt.Errorf("read labels file %s: %w: line %d is empty; remove the blank line or name the class (line i+1 names label i)", path, ErrLabelsFile, i+1)
		}
		if j, dup := seen[names[i]]; dup {
			return nil, fmt.Errorf("read labels file %s: %w: %q appears twice (lines %d and %d)", path, ErrLabelsFile, names[i], j+1, i+1)
		}
		seen[names[i]] = i
	}
	if err := validateClassNames(names); err != nil {
		return nil, fmt.Errorf("read labels file %s: %w", path, err)
	}
	return names, nil
}

// WriteLabelsFile atomically writes class names one per line, in label
// order, so that ReadLabelsFile returns them unchanged.
func WriteLabelsFile(path string, classes []string) error {
	if err := validateClassNames(classes); err != nil {
		return fmt.Errorf("write labels file %s: %w", path, err)
	}
	for i, c := range classes {
		if c != strings.TrimSpace(c) || strings.ContainsAny(c, "\r\n") {
			return fmt.Errorf("write labels file %s: %w: name of label %d (%q) has surrounding spaces or a line break and would not read back unchanged", path, ErrLabelsFile, i, c)
		}
	}
	data := []byte(strings.Join(classes, "\n") + "\n")
	if err := atomicfile.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write labels file: %w", err)
	}
	return nil
}

// validateClassNames rejects lists with no names, empty names or duplicate
// names; in every case a label would be ambiguous or meaningless.
func validateClassNames(names []string) error {
	if len(names) == 0 {
		return fmt.Errorf("%w: no class names given", ErrLabelsFile)
	}
	seen := make(map[string]int, len(names))
	for i, n := range names {
		if strings.TrimSpace(n) == "" {
			return fmt.Errorf("%w: name of label %d is empty", ErrLabelsFile, i)
		}
		if j, dup := seen[n]; dup {
			return fmt.Errorf("%w: %q appears twice (labels %d and %d)", ErrLabelsFile, n, j, i)
		}
		seen[n] = i
	}
	return nil
}
