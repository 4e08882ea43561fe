//go:build !linux

package atomicfile

import "errors"

var errNoReplaceUnsupported = errors.New("rename without replace unsupported")

func renameNoReplace(string, string) error { return errNoReplaceUnsupported }
