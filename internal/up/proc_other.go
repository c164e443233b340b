//go:build !linux

package up

import "syscall"

func childAttrs() *syscall.SysProcAttr { return nil }
