# The public methods of docker.DockerClient (docker 7.1) that a user of
# containers, images, volumes and networks calls, each as dockerd answers
# it. Run by TestDockerPythonSDKMethods: argv[1] the Docker socket, argv[2]
# a pullable image. Prints "ok" at the end; the first failure ends it.
import io, sys, tarfile, time
import docker

c = docker.DockerClient(base_url="unix://" + sys.argv[1], version="auto", timeout=60)
ref = sys.argv[2]
api = c.api

def expect(cond, what):
    if not cond:
        raise SystemExit("FAIL: " + what)

def raises(kind, fn, what):
    try:
        fn()
    except kind:
        return
    raise SystemExit("FAIL: %s did not raise %s" % (what, kind.__name__))

# system
expect(c.ping() is True, "ping")
expect("ServerVersion" in c.info(), "info")
expect("ApiVersion" in c.version(), "version")
start = int(time.time()) - 1

# images
img = c.images.pull(ref)
expect(ref in img.tags or any(t.startswith(ref.split(":")[0]) for t in img.tags), "pull tags %s" % img.tags)
expect(c.images.get(ref).id == img.id, "images.get")
expect(img.tag("sdk/retag", "v1") is True, "tag")
expect(any("sdk/retag:v1" in i.tags for i in c.images.list()), "images.list after tag %s" % [i.tags for i in c.images.list()])
expect([i.id for i in c.images.list(name="sdk/retag")] == [img.id], "images.list(name=)")
expect(c.images.list(filters={"dangling": True}) == [], "images.list dangling")
expect(len(img.history()) >= 1, "history")
expect(img.attrs["Config"] is not None, "image attrs")
c.images.remove("sdk/retag:v1")
raises(docker.errors.ImageNotFound, lambda: c.images.get("sdk/retag:v1"), "removed tag")
raises(docker.errors.ImageNotFound, lambda: c.images.get("no/such:image"), "images.get missing")

# containers
ct = c.containers.create(ref, ["sh", "-c", "echo out; echo err >&2; sleep 600"], name="m1",
                         labels={"suite": "sdk"}, environment={"A": "1"}, working_dir="/tmp")
expect(ct.status == "created", "created status %s" % ct.status)
ct.start()
ct.reload()
expect(ct.status == "running", "running status %s" % ct.status)
expect(ct.labels == {"suite": "sdk"}, "labels %s" % ct.labels)
deadline = time.time() + 10
while b"err" not in ct.logs() and time.time() < deadline:
    time.sleep(0.1)
expect(ct.logs(stdout=True, stderr=False) == b"out\n", "logs stdout %r" % ct.logs(stdout=True, stderr=False))
expect(ct.logs(stdout=False, stderr=True) == b"err\n", "logs stderr")
expect(b"out" in ct.logs(timestamps=True, tail=1) or b"err" in ct.logs(timestamps=True, tail=1), "logs tail+timestamps")
expect(ct.logs(since=int(time.time()) + 100) == b"", "logs since the future")
top = ct.top()
expect("Processes" in top and len(top["Processes"]) >= 1, "top %s" % top)
r = ct.exec_run("sh -c 'echo $A; pwd'", environment={"A": "2"})
expect(r.exit_code == 0 and r.output == b"2\n/tmp\n", "exec_run %r" % (r,))
r = ct.exec_run(["sh", "-c", "echo o; echo e >&2"], demux=True)
expect(r.output == (b"o\n", b"e\n"), "exec_run demux %r" % (r.output,))
r = ct.exec_run(["sh", "-c", "exit 7"])
expect(r.exit_code == 7, "exec exit code %s" % r.exit_code)
ct.exec_run(["sh", "-c", "echo changed > /tmp/f"])
expect(any(d["Path"] == "/tmp/f" for d in ct.diff()), "diff %s" % ct.diff())
bits, stat = ct.get_archive("/tmp/f")
tf = tarfile.open(fileobj=io.BytesIO(b"".join(bits)))
expect(tf.extractfile("f").read() == b"changed\n" and stat["name"] == "f", "get_archive")
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    data = b"put\n"
    ti = tarfile.TarInfo("put.txt"); ti.size = len(data)
    t.addfile(ti, io.BytesIO(data))
expect(ct.put_archive("/tmp", buf.getvalue()) is True, "put_archive")
expect(ct.exec_run("cat /tmp/put.txt").output == b"put\n", "put_archive content")
ct.pause(); ct.reload()
expect(ct.status == "paused", "paused %s" % ct.status)
ct.unpause(); ct.reload()
expect(ct.status == "running", "unpaused")
st = ct.stats(stream=False)
expect("memory_stats" in st, "stats one")
gen = ct.stats(stream=True, decode=True)
expect("memory_stats" in next(gen), "stats stream first")
gen.close()
ct.rename("m2"); ct.reload()
expect(ct.name == "m2", "rename")
ct.update(mem_limit="64m")
ct.reload()
expect(ct.attrs["HostConfig"]["Memory"] == 64 << 20, "update memory %s" % ct.attrs["HostConfig"]["Memory"])
expect([x.name for x in c.containers.list(filters={"label": "suite=sdk"})] == ["m2"], "list label filter")
expect([x.name for x in c.containers.list(filters={"name": "m2", "status": "running"})] == ["m2"], "list name+status")
expect(c.containers.list(filters={"label": ["suite=sdk", "other=x"]}) == [], "list two labels (all must match)")
ct.stop(timeout=1)
res = ct.wait(timeout=30)
expect(res["StatusCode"] == 137, "wait after stop %s" % res)
ct.restart(timeout=1); ct.reload()
expect(ct.status == "running", "restart")
ct.kill(signal="SIGKILL")
expect(ct.wait(timeout=30)["StatusCode"] == 137, "wait after kill")
expect(c.containers.get("m2").attrs["State"]["ExitCode"] == 137, "exit code inspected")
ct.commit(repository="sdk/committed", tag="1", changes=["ENV COMMITTED=1"])
expect("COMMITTED=1" in c.images.get("sdk/committed:1").attrs["Config"]["Env"], "commit changes")
ct.remove(v=True)
raises(docker.errors.NotFound, lambda: c.containers.get("m2"), "removed container")
out = c.containers.run(ref, "echo ran", remove=True)
expect(out == b"ran\n", "run remove=True %r" % out)
raises(docker.errors.ContainerError, lambda: c.containers.run(ref, "sh -c 'exit 3'", remove=True), "run exit 3")
raises(docker.errors.ImageNotFound, lambda: c.containers.create("127.0.0.1:1/no/such:1"), "create of an unknown image")
pr = c.containers.prune()
expect("ContainersDeleted" in pr, "containers.prune %s" % pr)
c.images.remove("sdk/committed:1")

# volumes
v = c.volumes.create("sdkv", labels={"a": "1"})
expect(c.volumes.get("sdkv").attrs["Labels"] == {"a": "1"}, "volume labels")
expect([x.name for x in c.volumes.list(filters={"dangling": True})] == ["sdkv"], "volumes dangling")
c.containers.run(ref, "sh -c 'echo hi > /v/f'", volumes={"sdkv": {"bind": "/v", "mode": "rw"}}, remove=True)
expect(c.containers.run(ref, "cat /v/f", volumes=["sdkv:/v:ro"], remove=True) == b"hi\n", "volume content")
expect("VolumesDeleted" in c.volumes.prune(filters={"label": "a=2"}), "volumes.prune")
expect(c.volumes.get("sdkv") is not None, "a label filter kept the volume from prune")
v.remove()
raises(docker.errors.NotFound, lambda: c.volumes.get("sdkv"), "removed volume")

# networks
n = c.networks.create("sdknet", labels={"n": "1"})
expect(c.networks.get(n.id).name == "sdknet", "networks.get")
expect([x.name for x in c.networks.list(names=["sdknet"])] == ["sdknet"], "networks.list names")
expect([x.name for x in c.networks.list(filters={"label": "n=1"})] == ["sdknet"], "networks.list label")
srv = c.containers.run(ref, "sh -c 'mkdir /w; echo hello > /w/index.html; exec httpd -f -p 80 -h /w'", detach=True, name="srv", network="sdknet")
cli = c.containers.run(ref, "sleep 600", detach=True, name="cli")
n.connect(cli, aliases=["front"])
n.reload()
expect(sorted(x.name for x in n.containers) == ["cli", "srv"], "network members")
r = cli.exec_run("wget -qO- http://srv/")
expect(r.output == b"hello\n", "by name over the network %r" % (r.output,))
n.disconnect(cli)
cli.remove(force=True); srv.remove(force=True)
n.remove()
raises(docker.errors.NotFound, lambda: c.networks.get("sdknet"), "removed network")
expect("NetworksDeleted" in c.networks.prune(), "networks.prune")

# events and disk usage
evs = list(c.events(since=start, until=int(time.time()) + 1, decode=True, filters={"type": "container", "event": "die"}))
expect(len(evs) >= 3 and all(e["Type"] == "container" and e["Action"] == "die" for e in evs), "events %d" % len(evs))
expect("Images" in c.df(), "df")
print("ok")
