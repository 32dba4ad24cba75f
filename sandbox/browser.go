package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// chromiumPackage is Debian's headless-capable Chromium, which the report's browser test
// drives.
const chromiumPackage = "chromium"

// chromiumNames are the names Chromium's binary has on Debian and elsewhere, in the order
// they are tried.
var chromiumNames = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// FindChromium returns the path of a Chromium (or Chrome) binary on PATH, "" if none.
func FindChromium() string {
	for _, name := range chromiumNames {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	return ""
}

// EnsureChromium returns the path of Chromium, installing Debian's package with apt-get
// when it is missing (as root; CI runs on a fresh Debian machine with only Go).
func EnsureChromium(ctx context.Context) (string, error) {
	if path := FindChromium(); path != "" {
		return path, nil
	}
	if os.Geteuid() != 0 {
		return "", errors.New("chromium is not installed and installing it needs root: apt-get install -y chromium")
	}
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	for _, args := range [][]string{
		{"update"},
		{"install", "-y", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=300", chromiumPackage},
	} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("apt-get %s: %w\n%s", strings.Join(args, " "), err, lastLines(string(out), 30))
		}
	}
	if path := FindChromium(); path != "" {
		return path, nil
	}
	return "", fmt.Errorf("apt-get installed %s but no chromium binary is on PATH", chromiumPackage)
}
