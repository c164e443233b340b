// Command chartgen writes the Helm chart generated from internal/install
// into the directory given as its argument (`make gen`: deploy/helm/weft).
package main

import (
	"fmt"
	"os"

	"github.com/weft-mesh/weft/internal/install"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: chartgen DIR   (e.g. "+install.ChartDir+")")
		os.Exit(2)
	}
	if err := install.WriteChart(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "chartgen:", err)
		os.Exit(1)
	}
}
