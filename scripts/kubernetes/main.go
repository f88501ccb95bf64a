// Command kube is the Kubernetes control plane in one binary: kube-apiserver,
// kube-controller-manager, kube-scheduler, kubectl and etcd. One link instead of five (on
// 2 cores: 18 CPU-seconds instead of 42) and 190 MB on disk instead of 410; compiling the
// shared packages, which all five need, is the rest of a cold build either way. Each
// component is still the release's own command, chosen by the name the binary is run as
// (ensure.sh makes a symlink per component) or by the first argument:
//
//	kube-apiserver --etcd-servers=...        (through the symlink)
//	kube kube-apiserver --etcd-servers=...   (through the binary)
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	_ "time/tzdata" // time zones for CronJobs, as the release's own binaries embed them

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	_ "k8s.io/component-base/logs/json/register"          // the JSON log format
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go's metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // the version metric
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"

	_ "k8s.io/client-go/plugin/pkg/client/auth" // kubectl's client auth plugins
)

// Each entry runs one component with os.Args as that component expects them (os.Args[0]
// its own name), and returns its exit code.
var components = map[string]func() int{
	"kube-apiserver": func() int {
		return cli.Run(apiserver.NewAPIServerCommand())
	},
	"kube-controller-manager": func() int {
		return cli.Run(controllermanager.NewControllerManagerCommand())
	},
	"kube-scheduler": func() int {
		return cli.Run(scheduler.NewSchedulerCommand())
	},
	"kubectl": func() int {
		// As the release's kubectl: verbosity is read before the command is built, so
		// that building it (plugins, .kuberc) logs at the level asked for.
		logs.GlogSetter(cmd.GetLogVerbosity(os.Args)) //nolint:errcheck
		var command *cobra.Command = cmd.NewDefaultKubectlCommand()
		if err := cli.RunNoErrOutput(command); err != nil {
			util.CheckErr(err) // prints the error as kubectl does, and exits non-zero
		}
		return 0
	},
	"etcd": func() int {
		etcdmain.Main(os.Args) // exits the process itself on failure
		return 0
	},
}

func main() {
	name := filepath.Base(os.Args[0])
	run, ok := components[name]
	if !ok && len(os.Args) > 1 {
		if run, ok = components[os.Args[1]]; ok {
			os.Args = os.Args[1:]
		}
	}
	if !ok {
		names := make([]string, 0, len(components))
		for n := range components {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(os.Stderr, "usage: %s COMPONENT [ARGS...]  (or run it as COMPONENT)\ncomponents: %s\n",
			name, strings.Join(names, ", "))
		os.Exit(2)
	}
	os.Exit(run())
}
