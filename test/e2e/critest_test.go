package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-runtime/berth/test/fixtures"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// critestFocus is the part of Kubernetes' CRI validation suite that runs
// (BERTH_CRITEST_FOCUS and BERTH_CRITEST_SKIP replace them); critestSkip are the specs that cannot
// pass here yet, each for a reason of its own:
//   - "public image with digest": names the real image by its digest, which no
//     stand-in can have;
//   - "MaskedPaths": masks /bin/ls and expects `sh -c ls` to fail, but Debian's
//     busybox-static shell runs its applets without exec (the mask itself
//     works: test/runtime's battery checks the masked paths).
const (
	critestFocus = `.`
	critestSkip  = `Windows|public image with digest|MaskedPaths`
)

// TestCritest runs critest (../shared/tools/critest, or $BERTH_CRITEST)
// against a berthd of the test's, with stand-ins for the images its specs
// pull served from a registry on 127.0.0.1 that berthd's registry
// configuration makes the mirror of the registries critest names, and
// requires every focused spec to pass.
func TestCritest(t *testing.T) {
	t.Parallel() // beside TestStreamingURLExpires, which mostly waits
	requireCNI(t)
	critest := os.Getenv("BERTH_CRITEST")
	if critest == "" {
		critest = filepath.Join(moduleRoot(t), "..", "shared", "tools", "critest")
	}
	if _, err := os.Stat(critest); err != nil {
		t.Skipf("needs critest (../shared/tools/critest or $BERTH_CRITEST): %v", err)
	}
	focus, skip := critestFocus, critestSkip
	if f := os.Getenv("BERTH_CRITEST_FOCUS"); f != "" {
		focus = f
	}
	if s, ok := os.LookupEnv("BERTH_CRITEST_SKIP"); ok {
		skip = s
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
		"--ginkgo.focus", focus, "--ginkgo.skip", skip, "--nri-socket", d.nriSocket(),
		"--ginkgo.junit-report", report, "--ginkgo.no-color")
	cmd.Dir = d.dir
	out, runErr := cmd.CombinedOutput()
	passed, failed, skippedNames, failures, err := readJUnit(report)
	skipped := len(skippedNames)
	if err != nil {
		t.Fatalf("critest: %v (%v)\n%s", err, runErr, out)
	}
	t.Logf("critest (focus %q): %d passed, %d failed, %d skipped", focus, passed, failed, skipped)
	if testing.Verbose() {
		t.Logf("skipped:\n  %s", strings.Join(skippedNames, "\n  "))
	}
	if failed > 0 || passed == 0 {
		t.Fatalf("critest failures:\n%s\n\ncritest output:\n%s", strings.Join(failures, "\n"), tail(out, 8000))
	}
}

// pushCritestImages pushes stand-ins, built from busybox, for the images
// critest's specs use, under the paths critest asks for (the registries are
// mirrored to host). One cannot be made: test-image-digest, which critest names
// by a digest of the real image.
func pushCritestImages(t *testing.T, host string) {
	t.Helper()
	// What Debian's busybox-static lacks beside the upstream busybox image:
	// pgrep, and the www-data account the user specs name.
	const pgrep = "#!/bin/sh\n# pgrep NAME: PIDs of the processes named NAME\nrc=1\nfor d in /proc/[0-9]*; do\n  [ \"$(cat $d/comm 2>/dev/null)\" = \"$1\" ] && { echo ${d#/proc/}; rc=0; }\ndone\nexit $rc\n"
	etc := map[string]string{
		"etc/passwd": fixtures.EtcFiles["etc/passwd"] + "www-data:x:33:33:www-data:/var/www:/bin/false\n",
		"etc/group":  fixtures.EtcFiles["etc/group"] + "www-data:x:33:\n",
	}
	// nginx, ipcs and nnp (critest-standin); one setuid-root file, linked
	// under the three names, so that nnp can show what no_new_privs does.
	standin := fixtures.Layer(t, standinTar(t, fixtures.GoBinary(t, "./test/fixtures/critest-standin")))
	image := func(c fixtures.ImageConfig, files map[string]string) v1.Image {
		c.Cmd = append([]string(nil), c.Cmd...)
		if c.Cmd == nil && c.Entrypoint == nil {
			c.Cmd = []string{"sh"}
		}
		all := map[string]string{"usr/bin/pgrep": pgrep}
		maps.Copy(all, etc)
		maps.Copy(all, files)
		img, err := mutate.AppendLayers(fixtures.BusyboxImage(t, c), standin, fixtures.Layer(t, tarOf(t, all)))
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	web := func(banner string) []string {
		return []string{"sh", "-c", "mkdir -p /www && echo '<h1>" + banner + "</h1>' > /www/index.html && echo " + banner + " && exec httpd -f -vv -p 80 -h /www"}
	}
	busybox := image(fixtures.ImageConfig{}, nil)
	pause := image(fixtures.ImageConfig{Entrypoint: []string{"sleep", "2147483647"}}, nil)
	tags := image(fixtures.ImageConfig{Env: []string{"TEST=tags"}}, nil)
	cri := "k8s-staging-cri-tools/"
	images := map[string]v1.Image{
		"e2e-test-images/busybox:1.29-2":   busybox,
		"e2e-test-images/busybox:1.36.1-1": busybox,
		"e2e-test-images/nginx:1.14-2":     image(fixtures.ImageConfig{Entrypoint: []string{"/usr/sbin/nginx"}}, nil),
		"e2e-test-images/httpd:2.4.39-4":   image(fixtures.ImageConfig{Entrypoint: web("httpd")}, nil),
		"e2e-test-images/nonewprivs:1.3":   image(fixtures.ImageConfig{Entrypoint: []string{"/usr/local/bin/nnp"}}, nil),
		"pause:3.9":                        pause,
		// On the host's network, at the port critest expects of it.
		cri + "hostnet-nginx-" + runtime.GOARCH + ":latest": image(fixtures.ImageConfig{
			Entrypoint: []string{"sh", "-c", "mkdir -p /www && echo hostnet > /www/index.html && exec httpd -f -p 12003 -h /www"}}, nil),
		cri + "test-image-latest:latest":              image(fixtures.ImageConfig{Env: []string{"TEST=latest"}}, nil),
		cri + "test-image-tag:test":                   image(fixtures.ImageConfig{Env: []string{"TEST=tag"}}, nil),
		cri + "test-image-tag:all":                    image(fixtures.ImageConfig{Env: []string{"TEST=all"}}, nil),
		cri + "test-image-tags:1":                     tags,
		cri + "test-image-tags:2":                     tags,
		cri + "test-image-tags:3":                     tags,
		cri + "test-image-user-uid:latest":            image(fixtures.ImageConfig{User: "1002"}, nil),
		cri + "test-image-user-username:latest":       image(fixtures.ImageConfig{User: "www-data"}, nil),
		cri + "test-image-user-uid-group:latest":      image(fixtures.ImageConfig{User: "1003:1003"}, nil),
		cri + "test-image-user-username-group:latest": image(fixtures.ImageConfig{User: "www-data:www-data"}, nil),
		// As images/image-predefined-group builds it: uid 1000 is default-user, in group 50000.
		cri + "test-image-predefined-group:latest": image(fixtures.ImageConfig{User: "1000"}, map[string]string{
			"etc/passwd": "root:x:0:0:root:/root:/bin/sh\ndefault-user:x:1000:1000::/home/default-user:/bin/sh\n",
			"etc/group":  "root:x:0:\ndefault-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n",
		}),
	}
	for i := 1; i <= 3; i++ {
		images[fmt.Sprintf("%stest-image-%d:latest", cri, i)] = image(fixtures.ImageConfig{Env: []string{fmt.Sprintf("TEST=%d", i)}}, nil)
	}
	for repo, img := range images {
		fixtures.Push(t, img, host, repo)
	}
}

// standinTar is a layer of bin as usr/sbin/nginx (setuid root), hard-linked
// as usr/bin/ipcs and usr/local/bin/nnp.
func standinTar(t *testing.T, bin []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(1700000000, 0)
	for _, d := range []string{"usr/", "usr/sbin/", "usr/bin/", "usr/local/", "usr/local/bin/"} {
		tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime})
	}
	tw.WriteHeader(&tar.Header{Name: "usr/sbin/nginx", Typeflag: tar.TypeReg, Mode: 0o4755, Size: int64(len(bin)), ModTime: mtime})
	tw.Write(bin)
	for _, l := range []string{"usr/bin/ipcs", "usr/local/bin/nnp"} {
		tw.WriteHeader(&tar.Header{Name: l, Typeflag: tar.TypeLink, Linkname: "usr/sbin/nginx", ModTime: mtime})
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tarOf is a layer's tar of files (path → content; executable under bin dirs).
func tarOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		mode := int64(0o644)
		if strings.Contains(name, "bin/") {
			mode = 0o755
		}
		hdr := &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(files[name])), ModTime: time.Unix(1700000000, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(files[name]))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func moduleRoot(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// readJUnit reads a ginkgo JUnit report: the counts, the skipped specs'
// names and the failures.
func readJUnit(path string) (passed, failed int, skipped, failures []string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, nil, nil, err
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
		return 0, 0, nil, nil, fmt.Errorf("%s: %w", path, err)
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
				skipped = append(skipped, c.Name)
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
