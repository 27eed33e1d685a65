// kubectl, from the k8s.io/kubectl module that helm already depends on, for the test that runs
// `kubectl accord …` through kubectl's plugin lookup (server/tests/chart.rs).
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	if err := cli.RunNoErrOutput(cmd.NewDefaultKubectlCommand()); err != nil {
		util.CheckErr(err)
	}
}
