package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/fixtures"
)

// wsDial opens the streaming URL as a websocket with the given subprotocol,
// as kubectl does with current API servers.
func wsDial(t *testing.T, rawURL, protocol string) *websocket.Conn {
	t.Helper()
	u := strings.Replace(rawURL, "http://", "ws://", 1)
	d := websocket.Dialer{Subprotocols: []string{protocol}, HandshakeTimeout: 10 * time.Second}
	c, resp, err := d.Dial(u, nil)
	if err != nil {
		t.Fatalf("dial %s: %v (%v)", u, err, resp)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestStreamingExec: the CRI Exec call's URL, spoken to over websockets
// (v4.channel.k8s.io: channel byte, then data; 3 carries the final status).
func TestStreamingExec(t *testing.T) {
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	_, cid, _ := startPod(t, d, "stream", nil, "sleep", "600")
	resp, err := d.rs.Exec(context.Background(), &runtimeapi.ExecRequest{
		ContainerId: cid, Cmd: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, Stdout: true, Stderr: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	c := wsDial(t, resp.Url, "v4.channel.k8s.io")
	var out, errOut, status bytes.Buffer
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			break
		}
		if len(msg) == 0 {
			continue
		}
		switch msg[0] {
		case 1:
			out.Write(msg[1:])
		case 2:
			errOut.Write(msg[1:])
		case 3:
			status.Write(msg[1:])
		}
	}
	if out.String() != "out\n" || errOut.String() != "err\n" {
		t.Fatalf("stdout %q stderr %q", out.String(), errOut.String())
	}
	if !strings.Contains(status.String(), "NonZeroExitCode") || !strings.Contains(status.String(), `"message":"3"`) {
		t.Fatalf("status %s, want exit code 3", status.String())
	}
	// The URL is single-use: whoever learns it afterwards gets nothing.
	assertURLRefused(t, resp.Url, "a second time")
}

// assertURLRefused: the streaming server answers url with 404.
func assertURLRefused(t *testing.T, url, when string) {
	t.Helper()
	dialer := websocket.Dialer{Subprotocols: []string{"v4.channel.k8s.io"}, HandshakeTimeout: 10 * time.Second}
	if c, r, err := dialer.Dial(strings.Replace(url, "http://", "ws://", 1), nil); err == nil {
		c.Close()
		t.Fatalf("an exec URL served %s", when)
	} else if r == nil || r.StatusCode != http.StatusNotFound {
		t.Fatalf("an exec URL used %s: %v %v, want 404", when, err, r)
	}
}

// TestPortForward reaches a server on the pod's own loopback, which nothing
// outside the pod's network namespace can.
func TestPortForward(t *testing.T) {
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	podID, _, _ := startPod(t, d, "pf", nil, "sh", "-c", "mkdir -p /www && echo pong > /www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /www")
	time.Sleep(300 * time.Millisecond) // httpd binds
	resp, err := d.rs.PortForward(context.Background(), &runtimeapi.PortForwardRequest{PodSandboxId: podID, Port: []int32{8080}})
	if err != nil {
		t.Fatal(err)
	}
	c := wsDial(t, resp.Url+"?port=8080", "v4.channel.k8s.io")
	// Channel 0 carries data, 1 errors; the server begins each with the port.
	req := append([]byte{0}, []byte("GET / HTTP/1.0\r\n\r\n")...)
	if err := c.WriteMessage(websocket.BinaryMessage, req); err != nil {
		t.Fatal(err)
	}
	var data bytes.Buffer
	seen := map[byte]bool{}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for !strings.Contains(data.String(), "pong") {
		_, msg, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v (got %q)", err, data.String())
		}
		if len(msg) == 0 {
			continue
		}
		ch, body := msg[0], msg[1:]
		if !seen[ch] {
			seen[ch] = true
			if len(body) < 2 || binary.LittleEndian.Uint16(body) != 8080 {
				t.Fatalf("channel %d does not begin with the port: %q", ch, body)
			}
			body = body[2:]
		}
		switch ch {
		case 0:
			data.Write(body)
		case 1:
			if len(body) > 0 {
				t.Fatalf("port-forward error: %q", body)
			}
		}
	}
}

// TestStreamingAttach: stdin reaches a container created with stdin, its
// output comes back, and so does its exit code.
func TestStreamingAttach(t *testing.T) {
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ctx := context.Background()
	ref := pulledBusybox(t, d)
	pod := podConfig("attach", filepath.Join(d.dir, "pods", "attach"))
	podID, err := d.rs.RunPodSandbox(ctx, pod, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.rs.RemovePodSandbox(context.Background(), podID) })
	cid, err := d.rs.CreateContainer(ctx, podID, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "attach"}, Image: &runtimeapi.ImageSpec{Image: ref},
		Command: []string{"sh", "-c", "read x; echo got:$x; exit 6"}, Stdin: true, StdinOnce: true, LogPath: "attach.log",
	}, pod)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.rs.StartContainer(ctx, cid); err != nil {
		t.Fatal(err)
	}
	resp, err := d.rs.Attach(ctx, &runtimeapi.AttachRequest{ContainerId: cid, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	c := wsDial(t, resp.Url, "v4.channel.k8s.io")
	if err := c.WriteMessage(websocket.BinaryMessage, append([]byte{0}, []byte("hello\n")...)); err != nil {
		t.Fatal(err)
	}
	var out, status bytes.Buffer
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			break
		}
		if len(msg) > 0 && msg[0] == 1 {
			out.Write(msg[1:])
		}
		if len(msg) > 0 && msg[0] == 3 {
			status.Write(msg[1:])
		}
	}
	if out.String() != "got:hello\n" || strings.Contains(status.String(), "Failure") {
		t.Fatalf("attach: stdout %q status %s", out.String(), status.String())
	}
	if st := waitExited(t, d, cid); st.ExitCode != 6 {
		t.Fatalf("exit code %d", st.ExitCode)
	}
}

// TestStreamingURLExpires: an exec URL nobody used is refused once its
// minute is up (cri-streaming's token lifetime), so a URL that leaked in a
// log is worth nothing later. It waits the minute out in parallel with
// TestCritest.
func TestStreamingURLExpires(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	_, cid, _ := startPod(t, d, "expiry", nil, "sleep", "600")
	resp, err := d.rs.Exec(context.Background(), &runtimeapi.ExecRequest{ContainerId: cid, Cmd: []string{"true"}, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(61 * time.Second)
	assertURLRefused(t, resp.Url, "after its minute")
}
