//go:build istio

package main

import (
	"fmt"
	"path/filepath"
	"regexp"

	"istio.io/istio/manifests"
)

func init() { register("istio", exportIstio) }

// The in-tree Chart.yaml files carry placeholder versions that Istio's release tooling
// rewrites; set the real one so that `helm list` and version checks show it.
var chartVersionLine = regexp.MustCompile(`(?m)^(version|appVersion):.*$`)

func exportIstio(out string) error {
	if *istioVersion == "" {
		return fmt.Errorf("-istio-version is required")
	}
	edit := func(rel string, data []byte) []byte {
		if rel != "Chart.yaml" {
			return data
		}
		return chartVersionLine.ReplaceAll(data, []byte("${1}: "+*istioVersion))
	}
	for dest, src := range map[string]string{
		"istio-base":    "charts/base",
		"istiod":        "charts/istio-control/istio-discovery",
		"istio-gateway": "charts/gateway",
	} {
		if err := copyTree(manifests.FS, src, filepath.Join(out, dest), edit); err != nil {
			return fmt.Errorf("%s: %w", src, err)
		}
	}
	return nil
}
