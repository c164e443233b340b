// Package cli holds the weft command line, one file per command: the
// control plane server (`weft control`) and the commands an operator runs.
package cli
