package up

import "syscall"

// childAttrs makes children die with weft up even if it is killed.
func childAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
