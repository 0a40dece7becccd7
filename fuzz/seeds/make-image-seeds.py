#!/usr/bin/env python3
"""Writes the image-format seeds into fuzz/corpus/{oci_manifest,tar_layer,sif,docker_archive}.

Real documents where a tool makes them here (umoci for an OCI layout, mksquashfs for the
SIF partition, the config `docker save` wrote in docker-config.json), hand-made ones for
the shapes those tools never write (Docker manifest lists, hostile layer entries).
Run from the repository root: python3 fuzz/seeds/make-image-seeds.py
"""

import gzip
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import tarfile
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
SEEDS = os.path.join(ROOT, "fuzz", "seeds")


def out(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


# ---- tar layers -------------------------------------------------------------------


def tar_bytes(members, fmt=tarfile.PAX_FORMAT):
    """members: list of (TarInfo, data or None)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
            else:
                t.addfile(info)
    return buf.getvalue()


def ti(name, kind=tarfile.REGTYPE, link="", mode=0o644, uid=0, gid=0, pax=None):
    i = tarfile.TarInfo(name)
    i.type = kind
    i.linkname = link
    i.mode = mode
    i.uid, i.gid = uid, gid
    i.mtime = 1700000000
    if pax:
        i.pax_headers = pax
    return i


def layers():
    normal = tar_bytes(
        [
            (ti("bin/", tarfile.DIRTYPE, mode=0o755), None),
            (ti("bin/sh", mode=0o755), b"#!/bin/true\n"),
            (ti("bin/ls", tarfile.SYMTYPE, link="sh"), None),
            (ti("bin/cat", tarfile.LNKTYPE, link="bin/sh"), None),
            (ti("etc/passwd"), b"root:x:0:0::/root:/bin/sh\n"),
            (ti("etc/.wh.shadow"), b""),
            (ti("var/.wh..wh..opq"), b""),
            (ti("tmp/", tarfile.DIRTYPE, mode=0o1777), None),
            (ti("usr/bin/su", mode=0o4755, uid=1000, gid=1000), b"x"),
            (ti("dev/null", tarfile.CHRTYPE, mode=0o666), None),
            (ti("run/fifo", tarfile.FIFOTYPE), None),
            (ti("x/xattr", pax={"SCHILY.xattr.user.k": "v"}), b"x"),
            (ti("long/" + "n" * 200), b"long name"),
        ]
    )
    out("tar_layer", "normal.tar", normal)
    out("tar_layer", "normal.tar.gz", gzip.compress(normal, mtime=0))
    zst = subprocess.run(["zstd", "-q", "-c"], input=normal, capture_output=True, check=True)
    out("tar_layer", "normal.tar.zst", zst.stdout)
    out("tar_layer", "gnu-longname.tar", tar_bytes([(ti("d/" + "g" * 150), b"g")], tarfile.GNU_FORMAT))
    hostile = {
        "dotdot": [(ti("../escape"), b"x")],
        "absolute": [(ti("/abs"), b"x")],
        "symlink-parent": [
            (ti("link", tarfile.SYMTYPE, link="../outside"), None),
            (ti("link/secret"), b"overwritten"),
        ],
        "symlink-abs-parent": [
            (ti("link", tarfile.SYMTYPE, link="/tmp"), None),
            (ti("link/x"), b"x"),
        ],
        "hardlink-out": [(ti("h", tarfile.LNKTYPE, link="../outside/secret"), None)],
        "hardlink-abs": [(ti("h", tarfile.LNKTYPE, link="/etc/passwd"), None)],
        "hardlink-through-symlink": [
            (ti("l", tarfile.SYMTYPE, link="../outside"), None),
            (ti("h", tarfile.LNKTYPE, link="l/secret"), None),
        ],
        "symlink-then-file": [
            (ti("a", tarfile.SYMTYPE, link="../outside/secret"), None),
            (ti("a"), b"replaces the link, not its target"),
        ],
        "dir-then-file": [(ti("d/", tarfile.DIRTYPE), None), (ti("d/f"), b"1"), (ti("d"), b"2")],
        "pax-path-dotdot": [(ti("fine", pax={"path": "../../pax-escape"}), b"x")],
        "pax-linkpath": [(ti("s", tarfile.SYMTYPE, pax={"linkpath": "../../" * 20}), None)],
        "whiteout-dotdot": [(ti("a/.wh...."), b"")],
        "dot-entries": [(ti("./", tarfile.DIRTYPE), None), (ti("./a/./b"), b"x")],
    }
    for name, members in hostile.items():
        out("tar_layer", "hostile-" + name + ".tar", tar_bytes(members))


# ---- OCI / Docker manifests, indexes, configs -------------------------------------


def oci_docs():
    tmp = tempfile.mkdtemp()
    try:
        lay = os.path.join(tmp, "layout")
        subprocess.run(["umoci", "init", "--layout", lay], check=True)
        subprocess.run(["umoci", "new", "--image", lay + ":t"], check=True)
        subprocess.run(
            [
                "umoci", "config", "--image", lay + ":t",
                "--config.env", "PATH=/usr/bin:/bin", "--config.env", "A=b c",
                "--config.entrypoint", "/bin/sh", "--config.cmd", "-c", "--config.cmd", "id",
                "--config.workingdir", "/work", "--config.user", "1000:1000",
                "--config.label", "org.example=yes", "--os", "linux", "--architecture", "amd64",
            ],
            check=True,
        )
        # Each JSON document of the layout (index, manifests, config) is a seed.
        out("oci_manifest", "umoci-index.json", open(os.path.join(lay, "index.json"), "rb").read())
        blobs = os.path.join(lay, "blobs", "sha256")
        for b in sorted(os.listdir(blobs)):
            data = open(os.path.join(blobs, b), "rb").read()
            try:
                doc = json.loads(data)
            except ValueError:
                continue
            kind = doc.get("mediaType", "config").rsplit(".", 2)[-2] if "mediaType" in doc else "config"
            out("oci_manifest", "umoci-%s-%s.json" % (kind, b[:12]), data)
    finally:
        shutil.rmtree(tmp)
    out("oci_manifest", "docker-config.json", open(os.path.join(SEEDS, "docker-config.json"), "rb").read())
    desc = lambda mt, d, size, **kw: dict(mediaType=mt, digest=d, size=size, **kw)
    d1, d2, d3 = sha(b"1"), sha(b"2"), sha(b"3")
    docker_manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": desc("application/vnd.docker.container.image.v1+json", d1, 895),
        "layers": [desc("application/vnd.docker.image.rootfs.diff.tar.gzip", d2, 100)],
    }
    out("oci_manifest", "docker-manifest.json", json.dumps(docker_manifest, indent=3))
    plat = lambda arch, variant=None: {"os": "linux", "architecture": arch, **({"variant": variant} if variant else {})}
    manifest_list = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [
            desc("application/vnd.docker.distribution.manifest.v2+json", d1, 527, platform=plat("amd64")),
            desc("application/vnd.docker.distribution.manifest.v2+json", d2, 527, platform=plat("arm", "v7")),
            desc("application/vnd.docker.distribution.manifest.v2+json", d3, 527, platform=plat("arm64", "v8")),
        ],
    }
    out("oci_manifest", "docker-manifest-list.json", json.dumps(manifest_list))
    oci_index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            desc("application/vnd.oci.image.manifest.v1+json", d1, 500, platform=plat("arm64")),
            desc("application/vnd.oci.image.manifest.v1+json", d2, 500,
                 annotations={"org.opencontainers.image.ref.name": "latest"}),
            desc("application/vnd.oci.image.manifest.v1+json", "sha512:" + "0" * 128, 500, platform=plat("amd64")),
        ],
    }
    out("oci_manifest", "oci-index-platforms.json", json.dumps(oci_index))
    out("oci_manifest", "schema1.json", json.dumps({"schemaVersion": 1, "name": "x", "fsLayers": []}))


# ---- SIF -----------------------------------------------------------------------------


def sif():
    tmp = tempfile.mkdtemp()
    try:
        src = os.path.join(tmp, "root")
        os.makedirs(os.path.join(src, "bin"))
        with open(os.path.join(src, "bin", "hello"), "w") as f:
            f.write("#!/bin/sh\necho hi\n")
        sq = os.path.join(tmp, "root.squashfs")
        subprocess.run(["mksquashfs", src, sq, "-quiet", "-noappend", "-all-root", "-mkfs-time", "0",
                        "-all-time", "0"], check=True, stdout=subprocess.DEVNULL)
        squash = open(sq, "rb").read()
    finally:
        shutil.rmtree(tmp)

    def header(total, d_off, d_size, data_off, data_size):
        h = b"#!/usr/bin/env run-singularity\n".ljust(32, b"\0")
        h += b"SIF_MAGIC\0" + b"01\0" + b"02\0" + b"\x11" * 16
        h += struct.pack("<8q", 1700000000, 1700000000, 0, total, d_off, d_size, data_off, data_size)
        assert len(h) == 128
        return h

    def descriptor(dtype, offset, size, fs=1, part=2, name=b"rootfs", used=1):
        d = struct.pack("<iBIII", dtype, used, 1, 0, 0)
        d += struct.pack("<7q", offset, size, size, 1700000000, 1700000000, 0, 0)
        d += name.ljust(128, b"\0")
        extra = struct.pack("<ii", fs, part) + b"02\0"
        d += extra.ljust(384, b"\0")
        assert len(d) == 585
        return d

    deffile = b"Bootstrap: docker\nFrom: busybox\n"
    d_off = 128
    data_off = d_off + 2 * 585
    parts = [
        ("primary", [descriptor(0x4001, data_off, len(deffile), name=b"deffile"),
                     descriptor(0x4004, data_off + len(deffile), len(squash))]),
        ("system-only", [descriptor(0x4004, data_off + len(deffile), len(squash), part=1),
                         descriptor(0x4001, data_off, len(deffile), used=0)]),
        ("encrypted", [descriptor(0x4004, data_off + len(deffile), len(squash), fs=5),
                       descriptor(0x4001, data_off, len(deffile))]),
    ]
    for name, descs in parts:
        body = header(2, d_off, 2 * 585, data_off, len(deffile) + len(squash)) + b"".join(descs)
        out("sif", name + ".sif", body + deffile + squash)
    out("sif", "squashfs-alone", squash)


# ---- docker save archives ----------------------------------------------------------


def docker_archives():
    config = open(os.path.join(SEEDS, "docker-config.json"), "rb").read()
    layer = tar_bytes([(ti("hello"), b"hello\n"), (ti("bin/", tarfile.DIRTYPE), None)])
    cfg = json.loads(config)
    cfg["rootfs"]["diff_ids"] = [sha(layer)]
    config = json.dumps(cfg).encode()

    def archive(members):
        return tar_bytes([(ti(n) if d is not None else ti(n, tarfile.DIRTYPE), d) for n, d in members],
                         tarfile.USTAR_FORMAT)

    cfg_name = hashlib.sha256(config).hexdigest() + ".json"
    lid = hashlib.sha256(b"layer-id").hexdigest()
    legacy = [
        {"Config": cfg_name, "RepoTags": ["hello:1", "example.org/a/b:c"], "Layers": [lid + "/layer.tar"]}
    ]
    out("docker_archive", "legacy.tar", archive([
        (lid + "/", None), (lid + "/VERSION", b"1.0"), (lid + "/json", b"{}"),
        (lid + "/layer.tar", layer), (cfg_name, config),
        ("manifest.json", json.dumps(legacy).encode()),
        ("repositories", json.dumps({"hello": {"1": lid}}).encode()),
    ]))
    gz = gzip.compress(layer, mtime=0)
    blob = lambda b: "blobs/sha256/" + hashlib.sha256(b).hexdigest()
    newer = [{"Config": blob(config), "RepoTags": None, "Layers": [blob(gz)]}]
    out("docker_archive", "oci-style-gzip.tar", archive([
        ("blobs/", None), ("blobs/sha256/", None), (blob(config), config), (blob(gz), gz),
        ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
        ("manifest.json", json.dumps(newer).encode()),
    ]))
    out("docker_archive", "missing-layer.tar", archive([
        (cfg_name, config), ("manifest.json", json.dumps(legacy).encode()),
    ]))
    out("docker_archive", "dotslash.tar", archive([
        ("./" + cfg_name, config), ("./layer.tar", layer),
        ("./manifest.json", json.dumps([{"Config": "./" + cfg_name, "Layers": ["./layer.tar"]}]).encode()),
    ]))


if __name__ == "__main__":
    layers()
    oci_docs()
    sif()
    docker_archives()
