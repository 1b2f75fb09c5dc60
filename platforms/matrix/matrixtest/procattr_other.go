//go:build !linux

package matrixtest

import "syscall"

// procAttr: only Linux can tie the child's life to ours; elsewhere Close must run.
func procAttr() *syscall.SysProcAttr { return nil }
