// Command kubesec is upstream kubesec (github.com/controlplaneio/kubesec/v2), unchanged but for
// one default: kubesec validates every manifest against Kubernetes JSON schemas that it
// downloads, and a lab node has no network, so with no --schema-location and no
// SCHEMA_LOCATION it validates against an embedded schema of a Kubernetes object's envelope
// (apiVersion, kind, metadata) instead of failing every scan. Scoring is kubesec's own.
package main

import (
	_ "embed"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/controlplaneio/kubesec/v2/cmd"
)

//go:embed object.schema.json
var objectSchema []byte

func main() {
	if os.Getenv("SCHEMA_LOCATION") == "" && !namesSchemaLocation(os.Args[1:]) {
		if path, err := writeSchema(); err == nil {
			os.Setenv("SCHEMA_LOCATION", path)
		}
	}
	cmd.Execute()
}

func namesSchemaLocation(args []string) bool {
	for _, a := range args {
		if a == "--schema-location" || strings.HasPrefix(a, "--schema-location=") {
			return true
		}
	}
	return false
}

// writeSchema puts the embedded schema in a per-user temp folder (kubeconform reads schemas
// from files) and returns its path.
func writeSchema() (string, error) {
	dir := filepath.Join(os.TempDir(), "kubesec-offline-schema-"+strconv.Itoa(os.Getuid()))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "object.json")
	if old, err := os.ReadFile(path); err == nil && string(old) == string(objectSchema) {
		return path, nil
	}
	tmp, err := os.CreateTemp(dir, "object-*.json")
	if err != nil {
		return "", err
	}
	if _, err := tmp.Write(objectSchema); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	return path, os.Rename(tmp.Name(), path)
}
