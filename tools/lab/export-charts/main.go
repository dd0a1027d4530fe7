// Command export-charts writes upstream Helm charts and manifests that Go modules embed to
// a directory, as unpacked charts that `helm` and kubernetes.core.helm accept as a local
// path. Each source lives in its own file behind a build tag, so that a source whose module
// cannot be resolved is left out of the build while the others still export.
package main

import (
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

type exporter struct {
	name string
	run  func(out string) error
}

var (
	exporters []exporter

	ciliumVersion = flag.String("cilium-version", "", "cilium chart version to export (cilium-<v>.tgz)")
	istioVersion  = flag.String("istio-version", "", "version written into the istio Chart.yaml files")
	kosmosVersion = flag.String("kosmos-version", "", "kosmos image tag rendered into its manifests")
)

func register(name string, run func(out string) error) {
	exporters = append(exporters, exporter{name, run})
}

func main() {
	out := flag.String("out", "", "output directory")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "export-charts: -out is required")
		os.Exit(2)
	}
	sort.Slice(exporters, func(i, j int) bool { return exporters[i].name < exporters[j].name })
	failed := false
	for _, e := range exporters {
		if err := e.run(*out); err != nil {
			fmt.Fprintf(os.Stderr, "export-charts: %s: %v\n", e.name, err)
			failed = true
			continue
		}
		fmt.Printf("export-charts: %s ok\n", e.name)
	}
	if failed {
		os.Exit(1)
	}
}

// copyTree copies dir from fsys to dest, replacing dest, so that a re-export never leaves
// files of an older chart version behind.
func copyTree(fsys fs.FS, dir, dest string, edit func(rel string, data []byte) []byte) error {
	if err := os.RemoveAll(dest); err != nil {
		return err
	}
	return fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, dir), "/")
		target := filepath.Join(dest, filepath.FromSlash(rel))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		f, err := fsys.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		data, err := io.ReadAll(f)
		if err != nil {
			return err
		}
		if edit != nil {
			data = edit(rel, data)
		}
		return os.WriteFile(target, data, 0o644)
	})
}
