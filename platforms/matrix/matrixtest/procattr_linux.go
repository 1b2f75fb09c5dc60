package matrixtest

import "syscall"

// procAttr makes the kernel kill Dendrite when the test process dies, even by SIGKILL or a panic,
// so an interrupted test never leaves a homeserver running.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
