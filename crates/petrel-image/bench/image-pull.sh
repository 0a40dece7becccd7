#!/usr/bin/env bash
# Pull + unpack of a ~100 MB, 5-layer image from a local registry:
#   petrel image pull (fresh store each run)   vs   skopeo copy docker://… oci:… + umoci unpack
# plus the cached re-pull, and peak RSS of a fresh pull (/usr/bin/time -v).
# Needs: docker-registry, skopeo, umoci, hyperfine, python3 (all in scripts/test-deps.sh).
# Usage: crates/petrel-image/bench/image-pull.sh [RUNS]   (results in $OUT, default /tmp/petrel-bench)
set -euo pipefail
cd "$(dirname "$0")/../../.."
RUNS=${1:-5}
OUT=${OUT:-/tmp/petrel-bench}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build --release -q -p petrel-cli
PETREL=$(realpath "$CARGO_TARGET_DIR/release/petrel")

rm -rf "$OUT" && mkdir -p "$OUT"
# 1. The image: 5 layers of ~20 MB each: 4 incompressible 3 MB files and 2000 small
#    text files (~8 MB), gzip-compressed, written as an OCI layout.
python3 - "$OUT/layout" <<'PY'
import gzip, hashlib, io, json, os, random, sys, tarfile
out = sys.argv[1]
os.makedirs(f"{out}/blobs/sha256", exist_ok=True)
def put(b):
    d = hashlib.sha256(b).hexdigest()
    open(f"{out}/blobs/sha256/{d}", "wb").write(b)
    return "sha256:" + d
rng = random.Random(42)
words = [("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10)))) for _ in range(5000)]
layers, diff_ids = [], []
for i in range(5):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        def add(name, data, mode=0o644):
            ti = tarfile.TarInfo(name); ti.size = len(data); ti.mode = mode; ti.mtime = 1700000000
            t.addfile(ti, io.BytesIO(data))
        def adddir(name):
            ti = tarfile.TarInfo(name); ti.type = tarfile.DIRTYPE; ti.mode = 0o755; t.addfile(ti)
        adddir(f"layer{i}"); adddir(f"layer{i}/bin"); 
        for j in range(4):
            add(f"layer{i}/bin/blob{j}", rng.randbytes(3 << 20), 0o755)
        for d in range(20):
            adddir(f"layer{i}/share/d{d}")
            for k in range(100):
                text = " ".join(rng.choice(words) for _ in range(rng.randint(100, 1200))).encode()
                add(f"layer{i}/share/d{d}/f{k}.txt", text)
    tar = buf.getvalue()
    diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
    gz = gzip.compress(tar, compresslevel=6, mtime=0)
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put(gz), "size": len(gz)})
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/usr/bin"]},
                  "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(cfg), "size": len(cfg)},
                  "layers": layers}).encode()
md = put(man)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
           "digest": md, "size": len(man), "annotations": {"org.opencontainers.image.ref.name": "v1"}}]},
          open(f"{out}/index.json", "w"))
open(f"{out}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
print("image:", sum(l["size"] for l in layers) >> 20, "MiB compressed,", len(layers), "layers")
PY
du -sh "$OUT/layout"

# 2. A registry on loopback, stopped on exit.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$OUT/registry.yml" <<YML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $OUT/registry}}
http: {addr: 127.0.0.1:$PORT}
YML
docker-registry serve "$OUT/registry.yml" >/dev/null 2>&1 &
REG=$!
trap 'kill $REG 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
skopeo copy --quiet --insecure-policy --dest-tls-verify=false "oci:$OUT/layout:v1" "docker://127.0.0.1:$PORT/bench/img:v1"
REF=127.0.0.1:$PORT/bench/img:v1

# 3. Fresh pulls, side by side.
hyperfine --runs "$RUNS" --warmup 1 --export-markdown "$OUT/pull.md" \
  --prepare "rm -rf $OUT/store $OUT/oci $OUT/bundle; sync" \
  -n "petrel image pull" "$PETREL image pull --quiet --store $OUT/store $REF" \
  -n "skopeo copy + umoci unpack" "skopeo copy --quiet --insecure-policy --src-tls-verify=false docker://$REF oci:$OUT/oci:v1 && umoci unpack --image $OUT/oci:v1 $OUT/bundle"

# 4. Cached re-pull (tag resolved against the registry, nothing fetched).
$PETREL image pull --quiet --store "$OUT/store" "$REF" >/dev/null
hyperfine --runs 30 --warmup 3 --export-markdown "$OUT/cached.md" -N \
  -n "petrel image pull (cached)" "$PETREL image pull --quiet --store $OUT/store $REF"

# 5. Peak RSS of a fresh pull.
rm -rf "$OUT/store"
/usr/bin/time -v "$PETREL" image pull --quiet --store "$OUT/store" "$REF" 2>"$OUT/time.txt" >/dev/null
grep -E "Maximum resident|Elapsed" "$OUT/time.txt"
rm -rf "$OUT/oci" "$OUT/bundle"
/usr/bin/time -v sh -c "skopeo copy --quiet --insecure-policy --src-tls-verify=false docker://$REF oci:$OUT/oci:v1 && umoci unpack --image $OUT/oci:v1 $OUT/bundle" 2>"$OUT/time-peer.txt" >/dev/null
echo "skopeo+umoci (largest single process):"; grep -E "Maximum resident" "$OUT/time-peer.txt"
cat "$OUT/pull.md" "$OUT/cached.md"
