//go:build kosmos

package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"text/template"

	"github.com/kosmos.io/kosmos/pkg/kosmosctl/manifest"
)

func init() { register("kosmos", exportKosmos) }

// exportKosmos renders the install manifests that kosmosctl applies, with the values
// kosmosctl uses by default, into <out>/kosmos/*.yaml.
func exportKosmos(out string) error {
	values := map[string]string{
		"Namespace":       "kosmos-system",
		"ImageRepository": "ghcr.io/kosmos-io",
		"Version":         *kosmosVersion,
		"UseProxy":        "false",
	}
	docs := map[string]string{
		"crd-clusters.yaml":       manifest.Cluster,
		"crd-clusternodes.yaml":   manifest.ClusterlinkClusterNode,
		"crd-nodeconfigs.yaml":    manifest.ClusterlinkNodeConfig,
		"crd-serviceimports.yaml": manifest.ServiceImport,
		"crd-serviceexports.yaml": manifest.ServiceExport,
		"network-manager.yaml":    manifest.ClusterlinkNetworkManagerDeployment,
	}
	dest := filepath.Join(out, "kosmos")
	if err := os.RemoveAll(dest); err != nil {
		return err
	}
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return err
	}
	for name, text := range docs {
		t, err := template.New(name).Option("missingkey=error").Parse(text)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		var b bytes.Buffer
		if err := t.Execute(&b, values); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dest, name), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}
