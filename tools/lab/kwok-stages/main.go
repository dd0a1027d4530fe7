// Command kwok-stages writes the stage definitions that kwok ships embedded in its Go
// packages as one multi-document YAML file. The standalone kwok controller only simulates
// what its --config stages describe; kwokctl assembles the same set internally, so the lab
// reads them from the pinned kwok module instead of keeping a copy of its own.
package main

import (
	"fmt"
	"os"
	"strings"

	nodefast "sigs.k8s.io/kwok/kustomize/stage/node/fast"
	nodelease "sigs.k8s.io/kwok/kustomize/stage/node/heartbeat-with-lease"
	podfast "sigs.k8s.io/kwok/kustomize/stage/pod/fast"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: kwok-stages OUTPUT.yaml")
		os.Exit(2)
	}
	docs := []string{
		nodefast.DefaultNodeInit,
		// Lease-based heartbeat: the node lifecycle controller then sees Leases renewed,
		// as with a real kubelet, and node status is patched rarely (less etcd churn).
		nodelease.DefaultNodeHeartbeatWithLease,
		podfast.DefaultPodReady,
		podfast.DefaultPodComplete,
		podfast.DefaultPodDelete,
	}
	var b strings.Builder
	for _, d := range docs {
		b.WriteString("---\n")
		b.WriteString(strings.TrimPrefix(strings.TrimSpace(d), "---\n"))
		b.WriteString("\n")
	}
	if err := os.WriteFile(os.Args[1], []byte(b.String()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
