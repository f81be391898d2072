package e2e

import (
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/berth-runtime/berth/test/fixtures"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// critestFocus is the part of Kubernetes' CRI validation suite that must
// pass: the specs about pod networking (issue 10). BERTH_CRITEST_FOCUS
// widens or narrows it.
const critestFocus = `Networking|portforward|runtime conditions|Multiple Containers`

// TestCritest runs critest (../shared/tools/critest, or $BERTH_CRITEST)
// against a berthd of the test's, with stand-ins for the images its specs
// pull served from a registry on 127.0.0.1 that berthd's registry
// configuration makes the mirror of the registries critest names, and
// requires every focused spec to pass.
func TestCritest(t *testing.T) {
	requireCNI(t)
	critest := os.Getenv("BERTH_CRITEST")
	if critest == "" {
		critest = filepath.Join(moduleRoot(t), "..", "shared", "tools", "critest")
	}
	if _, err := os.Stat(critest); err != nil {
		t.Skipf("needs critest (../shared/tools/critest or $BERTH_CRITEST): %v", err)
	}
	focus := critestFocus
	if f := os.Getenv("BERTH_CRITEST_FOCUS"); f != "" {
		focus = f
	}
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	host := fixtures.Registry(t)
	pushCritestImages(t, host)
	d := startDaemon(t)
	// The registries critest names are served by the test's (hosts.toml, as
	// an operator would write it): the local registry is the server itself,
	// so nothing is ever asked of the real ones.
	for _, reg := range []string{"registry.k8s.io", "k8s.gcr.io", "gcr.io", "docker.io"} {
		dir := filepath.Join(d.dir, "certs.d", reg)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		hosts := fmt.Sprintf("server = \"http://%s\"\n", host)
		if err := os.WriteFile(filepath.Join(dir, "hosts.toml"), []byte(hosts), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	report := filepath.Join(d.dir, "critest.xml")
	ep := "unix://" + d.socket
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, critest, "--runtime-endpoint", ep, "--image-endpoint", ep,
		"--ginkgo.focus", focus, "--ginkgo.skip", "Windows",
		"--ginkgo.junit-report", report, "--ginkgo.no-color")
	cmd.Dir = d.dir
	out, runErr := cmd.CombinedOutput()
	passed, failed, skipped, failures, err := readJUnit(report)
	if err != nil {
		t.Fatalf("critest: %v (%v)\n%s", err, runErr, out)
	}
	t.Logf("critest (focus %q): %d passed, %d failed, %d skipped", focus, passed, failed, skipped)
	if failed > 0 || passed == 0 {
		t.Fatalf("critest failures:\n%s\n\ncritest output:\n%s", strings.Join(failures, "\n"), tail(out, 8000))
	}
}

// pushCritestImages pushes stand-ins, built from busybox, for the images the
// focused specs use, under the paths critest asks for.
func pushCritestImages(t *testing.T, host string) {
	t.Helper()
	busybox := fixtures.BusyboxImage(t, fixtures.ImageConfig{Cmd: []string{"sh"}})
	web := func(banner string) []string {
		return []string{"sh", "-c", "mkdir -p /www && echo '<h1>" + banner + "</h1>' > /www/index.html && echo " + banner + " && exec httpd -f -vv -p 80 -h /www"}
	}
	nginx := fixtures.BusyboxImage(t, fixtures.ImageConfig{Entrypoint: web("Welcome to nginx!")})
	httpd := fixtures.BusyboxImage(t, fixtures.ImageConfig{Entrypoint: web("httpd")})
	for repo, img := range map[string]v1.Image{
		"e2e-test-images/busybox:1.29-2":   busybox,
		"e2e-test-images/busybox:1.36.1-1": busybox,
		"e2e-test-images/nginx:1.14-2":     nginx,
		"e2e-test-images/httpd:2.4.39-4":   httpd,
		// On the host's network, at the port critest expects of it.
		"k8s-staging-cri-tools/hostnet-nginx-" + runtime.GOARCH + ":latest": fixtures.BusyboxImage(t, fixtures.ImageConfig{
			Entrypoint: []string{"sh", "-c", "mkdir -p /www && echo hostnet > /www/index.html && exec httpd -f -p 12003 -h /www"}}),
	} {
		fixtures.Push(t, img, host, repo)
	}
}

func moduleRoot(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// readJUnit counts a ginkgo JUnit report's test cases.
func readJUnit(path string) (passed, failed, skipped int, failures []string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, 0, nil, err
	}
	var r struct {
		Suites []struct {
			Cases []struct {
				Name    string    `xml:"name,attr"`
				Status  string    `xml:"status,attr"`
				Skipped *struct{} `xml:"skipped"`
				Failure *struct {
					Message string `xml:"message,attr"`
				} `xml:"failure"`
				Error *struct {
					Message string `xml:"message,attr"`
				} `xml:"error"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &r); err != nil {
		return 0, 0, 0, nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, s := range r.Suites {
		for _, c := range s.Cases {
			switch {
			case c.Failure != nil:
				failed++
				failures = append(failures, c.Name+": "+c.Failure.Message)
			case c.Error != nil:
				failed++
				failures = append(failures, c.Name+": "+c.Error.Message)
			case c.Skipped != nil || c.Status == "skipped" || c.Status == "pending":
				skipped++
			default:
				passed++
			}
		}
	}
	return passed, failed, skipped, failures, nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
