//go:build goolm

// Package build_with_-tags_goolm stops a build without -tags goolm at once, before mautrix tries to
// compile libolm through cgo (which needs olm/olm.h), and its import path is the message: a plain
// `go build ./...` prints "imports .../build_with_-tags_goolm: build constraints exclude all Go
// files". Only platforms/matrix and matrixtest import it.
package goolm
