#!/usr/bin/env bash
# Checks deploy/Dockerfile where no Docker engine runs: both of its stages are replayed in
# Debian bookworm chroots made with debootstrap, as root. The build stage gets what
# rust:1-bookworm has (compilers, git, curl; the host's Rust toolchain bind-mounted in place of
# the image's) and runs the Dockerfile's RUN lines on the sources as `.dockerignore` leaves
# them; the runtime stage gets debian:bookworm-slim's packages, the files the Dockerfile
# copies and its environment, and runs `loopsmith doctor`, `generate` and `serve` (SIGTERM,
# exit 0) as the unprivileged `loopsmith` user.
#
#   sudo deploy/check-image-without-docker.sh [work-dir]     # ~40 min on 2 cores (the build)
#
# Needs: debootstrap, network to Debian's mirror, PyPI and crates.io. A host whose HTTPS goes
# through an intercepting proxy must have its CA in /usr/local/share/ca-certificates.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/loopsmith-image-check}
build=$work/build
run=$work/runtime
mirror=http://deb.debian.org/debian

cleanup() {
    for m in "$build/usr/local/cargo" "$build/usr/local/rustup" "$build/dev" "$build/proc" "$run/proc"; do
        mountpoint -q "$m" && umount "$m" || true
    done
}
trap cleanup EXIT

trust_host_cas() {
    cp /etc/resolv.conf "$1/etc/resolv.conf"
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$1/usr/local/share/ca-certificates/"
        chroot "$1" update-ca-certificates >/dev/null
    fi
}

echo "== build stage (rust:1-bookworm)"
[ -d "$build/usr" ] || debootstrap --variant=minbase bookworm "$build" "$mirror"
mount -t proc proc "$build/proc"
mount --bind /dev "$build/dev"
chroot "$build" env DEBIAN_FRONTEND=noninteractive apt-get update -q
chroot "$build" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    build-essential ca-certificates curl git
trust_host_cas "$build"
mkdir -p "$build/usr/local/rustup" "$build/usr/local/cargo"
mount --bind "${RUSTUP_HOME:-$HOME/.rustup}" "$build/usr/local/rustup"
mount --bind "${CARGO_HOME:-$HOME/.cargo}" "$build/usr/local/cargo"
# COPY . . with .dockerignore: the committed sources (a target/ left by an earlier check is
# kept, so a second run rebuilds only what changed).
mkdir -p "$build/src"
find "$build/src" -mindepth 1 -maxdepth 1 ! -name target -exec rm -rf {} +
git -C "$repo" archive HEAD | tar x -C "$build/src"
chroot "$build" env -i HOME=/root DEBIAN_FRONTEND=noninteractive \
    RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/sbin:/usr/bin:/sbin:/bin sh -ec '
    apt-get update -q
    apt-get install -y -q --no-install-recommends pkg-config libvpx-dev nasm python3-pip
    cd /src
    cargo xtask setup --cpu
    cargo build --release --locked --bin loopsmith'

echo "== runtime stage (debian:bookworm-slim)"
[ -d "$run/usr" ] || debootstrap --variant=minbase bookworm "$run" "$mirror"
mount -t proc proc "$run/proc"
trust_host_cas "$run"
chroot "$run" env DEBIAN_FRONTEND=noninteractive apt-get update -q
chroot "$run" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    libvpx7 ca-certificates
chroot "$run" sh -c 'id loopsmith >/dev/null 2>&1 || useradd --system --home-dir /var/lib/loopsmith --shell /usr/sbin/nologin loopsmith'
chroot "$run" install -d -o loopsmith -g loopsmith -m 0750 /var/lib/loopsmith /etc/loopsmith
rm -rf "$run/opt/loopsmith" && mkdir -p "$run/opt/loopsmith/models"
cp "$build/src/target/release/loopsmith" "$run/usr/local/bin/loopsmith"
cp -a "$build/src/.loopsmith/onnxruntime" "$run/opt/loopsmith/onnxruntime"
cp -a "$build/src/models/tiny" "$run/opt/loopsmith/models/tiny"
cp "$repo/config/loopsmith.example.toml" "$run/etc/loopsmith/loopsmith.toml"
chmod 0644 "$run/etc/loopsmith/loopsmith.toml"
cat > "$run/tmp/check.sh" <<'EOF'
set -e
cd /var/lib/loopsmith
export ORT_DYLIB_PATH=/opt/loopsmith/onnxruntime/libonnxruntime.so \
    LOOPSMITH_CONFIG=/etc/loopsmith/loopsmith.toml LOOPSMITH_STORAGE__DATA_DIR=/var/lib/loopsmith \
    LOOPSMITH_CONTROL__SOCKET=/var/lib/loopsmith/control.sock LOOPSMITH_LOCAL__DEVICE=cpu \
    HOME=/var/lib/loopsmith
loopsmith doctor
loopsmith generate "a red ball bouncing on a blue background" --out /var/lib/loopsmith/check.webm
loopsmith serve 2> /var/lib/loopsmith/serve.log &
pid=$!
for _ in $(seq 1 100); do [ -S control.sock ] && break; sleep 0.1; done
[ -S control.sock ] || { cat serve.log; exit 1; }
kill -TERM "$pid"
wait "$pid"
echo "serve: control socket up, SIGTERM, exit 0"
EOF
chroot --userspec=loopsmith:loopsmith "$run" env -i PATH=/usr/local/bin:/usr/bin:/bin sh /tmp/check.sh
echo "== the image's stages work"
