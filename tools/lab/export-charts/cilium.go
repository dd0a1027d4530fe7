//go:build cilium

package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	ciliumcharts "github.com/cilium/charts"
)

func init() { register("cilium", exportCilium) }

// exportCilium unpacks cilium-<version>.tgz from the embedded chart repository. The
// archive's top-level "cilium/" directory becomes <out>/cilium-<version>: the lab's current
// chart (<out>/cilium) comes from the cilium/cilium module itself (build.py).
func exportCilium(out string) error {
	if *ciliumVersion == "" {
		return fmt.Errorf("-cilium-version is required")
	}
	data, err := ciliumcharts.HelmFS.ReadFile("cilium-" + *ciliumVersion + ".tgz")
	if err != nil {
		return err
	}
	dest := filepath.Join(out, "cilium-"+*ciliumVersion)
	if err := os.RemoveAll(dest); err != nil {
		return err
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(h.Name)
		// Refuse entries that would escape the destination.
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("unsafe path in archive: %q", h.Name)
		}
		rel, ok := strings.CutPrefix(name, "cilium/")
		if !ok {
			continue
		}
		target := filepath.Join(dest, rel)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				return err
			}
			if err := os.WriteFile(target, b, 0o644); err != nil {
				return err
			}
		}
	}
}
