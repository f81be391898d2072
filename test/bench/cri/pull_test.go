package cri

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/klauspost/compress/gzip"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/fixtures"
)

// pullLayers and the sizes below make an image like a language runtime's:
// six gzip layers, ~450 MB unpacked in ~6,700 files, ~130 MB compressed.
const (
	pullLayers     = 6
	filesPerLayer  = 1100
	smallFileBytes = 56 << 10
	bigFileBytes   = 14 << 20
)

// bigImage makes the benchmark's image, different for each seed, and
// returns its compressed layers too (for the tar floor). The files are
// slices of a text corpus of words and numbers, which compresses about as
// real layers do (3.5:1).
func bigImage(b *testing.B, seed int64) (v1.Image, [][]byte) {
	rng := rand.New(rand.NewSource(seed))
	words := strings.Fields("the of and to in is was for on that with as by at from his an were are which this be or has had not but first one their its new after who they have her she two been other when there all during into school time may years more most only over city some world would where later up such used many can state about national out known university united then made")
	var corpus bytes.Buffer
	for corpus.Len() < 8<<20 {
		for i := 0; i < 12; i++ {
			corpus.WriteString(words[rng.Intn(len(words))])
			corpus.WriteByte(' ')
		}
		fmt.Fprintf(&corpus, "%d\n", rng.Intn(1000000))
	}
	text := corpus.Bytes()
	slice := func(n int) []byte {
		off := rng.Intn(len(text) - n)
		return text[off : off+n]
	}
	img := empty.Image
	var blobs [][]byte
	for l := 0; l < pullLayers; l++ {
		var tarBuf bytes.Buffer
		tw := tar.NewWriter(&tarBuf)
		add := func(name string, data []byte) {
			tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
			tw.Write(data)
		}
		for d := 0; d < filesPerLayer/100; d++ {
			tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("l%d/d%d/", l, d), Mode: 0o755, Typeflag: tar.TypeDir})
			for f := 0; f < 100; f++ {
				add(fmt.Sprintf("l%d/d%d/f%d", l, d, f), slice(smallFileBytes/2+rng.Intn(smallFileBytes)))
			}
		}
		var big []byte
		for len(big) < bigFileBytes {
			big = append(big, slice(1<<20)...)
		}
		add(fmt.Sprintf("l%d/big", l), big)
		tw.Close()
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.DefaultCompression)
		zw.Write(tarBuf.Bytes())
		zw.Close()
		compressed := gz.Bytes()
		blobs = append(blobs, compressed)
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(compressed)), nil })
		if err != nil {
			b.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, layer); err != nil {
			b.Fatal(err)
		}
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	img, _ = mutate.ConfigFile(img, cf)
	return img, blobs
}

// BenchmarkPull: pull and unpack of a new image each round (cold for every
// daemon), interleaved, beside the floor: the same layers extracted by
// `tar -xzf`, all six in parallel, from files on the same disk (without a
// sync, and with one sync at its end), into a directory marked as ext4's
// top of directory hierarchies, as Berth's layers are. Every round starts from a synced
// disk, so that one round's writeback does not land in the next.
// BERTH_BENCH_PROFILE=DIR writes berthd's CPU profile and execution trace
// of its second pull there.
func BenchmarkPull(b *testing.B) {
	fixtures.RequireRoot(b)
	fixtures.RequireBinary(b, "containerd")
	fixtures.RequireBinary(b, "tar")
	host := fixtures.Registry(b)
	profDir := os.Getenv("BERTH_BENCH_PROFILE")
	targets, stop := startTargetsWith(b, "pull", host, profDir != "")
	defer stop()
	// The floor extracts where ext4 spreads new directories (chattr +T),
	// as Berth unpacks layers (images/snapshot): beside the inodes of what
	// the round before removed, every file create pays for a scan of them.
	// Plain tar into a plain directory is shown too.
	floorDir, plainDir := b.TempDir(), b.TempDir()
	if out, err := exec.Command("chattr", "+T", floorDir).CombinedOutput(); err != nil {
		b.Logf("chattr +T %s: %v %s (the floor then pays what Berth avoids)", floorDir, err, out)
	}
	const floorName = "tar -xzf ×6"
	const rounds = 6
	times := map[string][]time.Duration{}
	var packed, unpacked int64
	for r := 0; r < rounds; r++ {
		img, blobs := bigImage(b, int64(r))
		if r == 0 {
			for _, bl := range blobs {
				packed += int64(len(bl))
			}
		}
		ref := fixtures.Push(b, img, host, fmt.Sprintf("bench/big:%d", r))
		// Rotate who goes first: the first of a round meets the coldest cache.
		order := append(append([]*target{}, targets[r%len(targets):]...), targets[:r%len(targets)]...)
		for _, t := range order {
			syncDisk(b)
			wait := func() {}
			if profDir != "" && t.name == "berthd" && r == 1 {
				wait = profile(b, t, profDir, "pull", 4*time.Second)
			}
			s := time.Now()
			id, err := t.is.PullImage(context.Background(), &runtimeapi.ImageSpec{Image: ref}, nil, nil)
			if err != nil {
				b.Fatalf("%s pull: %v", t.name, err)
			}
			wait()
			times[t.name] = append(times[t.name], time.Since(s))
			_ = t.is.RemoveImage(context.Background(), &runtimeapi.ImageSpec{Image: id})
		}
		plain, synced, n := tarFloor(b, floorDir, blobs)
		times[floorName] = append(times[floorName], plain)
		times[floorName+", sync"] = append(times[floorName+", sync"], synced)
		unpacked = n
		plainTar, _, _ := tarFloor(b, plainDir, blobs)
		times["tar -xzf ×6, plain dir"] = append(times["tar -xzf ×6, plain dir"], plainTar)
		fmt.Printf("round %d:", r)
		for _, t := range order {
			fmt.Printf(" %s %s", t.name, ms(times[t.name][r]))
		}
		fmt.Printf(", tar %s (plain dir %s)\n", ms(plain), ms(plainTar))
	}
	fmt.Printf("\npull + unpack of a %d-layer image (%.0f MB compressed, %.0f MB unpacked), a new one each round, %d rounds, interleaved\n",
		pullLayers, float64(packed)/1e6, float64(unpacked)/1e6, rounds)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tmedian\tmin\tmax\tspread (max-min)/median\tmedian/floor\tmedian/containerd2.4\t")
	floor := pct(times[floorName], .5)
	names := []string{}
	for _, t := range targets {
		names = append(names, t.name)
	}
	for _, name := range append(names, floorName, floorName+", sync", "tar -xzf ×6, plain dir") {
		d := times[name]
		med := pct(d, .5)
		vs := "-"
		if c := times["containerd2.4"]; len(c) > 0 {
			vs = fmt.Sprintf("%.2f", float64(med)/float64(pct(c, .5)))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.0f%%\t%.2f\t%s\t\n", name, ms(med), ms(pct(d, 0)), ms(pct(d, 1)),
			100*float64(pct(d, 1)-pct(d, 0))/float64(med), float64(med)/float64(floor), vs)
	}
	tw.Flush()
}

// tarFloor writes the compressed layers to dir, syncs, and times six
// `tar -xzf` into fresh directories at once: as they end, and after one
// sync more. It returns the bytes unpacked too, and removes what it made.
func tarFloor(b *testing.B, dir string, blobs [][]byte) (plain, synced time.Duration, unpacked int64) {
	defer func() {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}()
	for i, bl := range blobs {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("layer%d.tar.gz", i)), bl, 0o644); err != nil {
			b.Fatal(err)
		}
		os.Mkdir(filepath.Join(dir, fmt.Sprintf("out%d", i)), 0o755)
	}
	syncDisk(b)
	s := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(blobs))
	for i := range blobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := exec.Command("tar", "-xzf", filepath.Join(dir, fmt.Sprintf("layer%d.tar.gz", i)), "-C", filepath.Join(dir, fmt.Sprintf("out%d", i))).CombinedOutput()
			if err != nil {
				errs[i] = fmt.Errorf("tar: %v %s", err, out)
			}
		}()
	}
	wg.Wait()
	plain = time.Since(s)
	syncDisk(b)
	synced = time.Since(s)
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	out, _ := exec.Command("du", "-sb", dir).Output()
	fmt.Sscan(string(out), &unpacked)
	for _, bl := range blobs {
		unpacked -= int64(len(bl))
	}
	return plain, synced, unpacked
}

func syncDisk(b *testing.B) {
	if err := exec.Command("sync").Run(); err != nil {
		b.Fatal(err)
	}
}
