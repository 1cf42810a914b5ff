# lib.sh - shell functions the bench scripts share. Sourced (`. bench/lib.sh`) from the top of
# the tree by sh and bash scripts alike, so POSIX sh only; its variables are prefixed lib_. Each
# function returns non-zero on failure and leaves the message to its caller (each script names
# itself in its own `die`).

# default_net: prints $NET, or ./net after `make net` (which brings it up to date) when NET is
# unset or empty; fails when make does.
default_net() {
    if [ -n "${NET:-}" ]; then
        echo "$NET"
    else
        make --no-print-directory net >/dev/null && echo ./net
    fi
}

# fashion_ready NET [DATA]: prepares data/fashion with NET (`net prepare fashion-mnist`, reading
# Debian's dataset-fashion-mnist) unless data/fashion/train.list is already there; then fails
# when the .data file DATA (if given) is missing.
fashion_ready() {
    { [ -s data/fashion/train.list ] || "$1" prepare fashion-mnist; } &&
        { [ $# -lt 2 ] || [ -f "$2" ]; }
}

# scratch_data DATA DIR: DIR/<DATA's name>, a copy of the .data file DATA whose backup= is
# DIR/backup (made here), so that training writes its checkpoints there and never into backup/.
scratch_data() {
    lib_out=$2/$(basename "$1")
    grep -v '^[[:space:]]*backup[[:space:]]*=' "$1" >"$lib_out" &&
        echo "backup=$2/backup" >>"$lib_out" &&
        mkdir -p "$2/backup"
}

# darknet_jpegs: true when the sample pictures of Debian's darknet package are there.
darknet_jpegs() {
    ls /usr/share/darknet/data/*.jpg >/dev/null 2>&1
}

# jpeg_set DIR PER_CLASS: an ImageFolder tree DIR/jpeg, one class folder per picture of
# /usr/share/darknet/data/*.jpg holding PER_CLASS 224x224 RGB JPEGs (quality 90) cut from it at
# random positions and sizes (a third of its shorter side to all of it; seeded, so every run cuts
# the same set; python3-pil), and DIR/jpeg.data naming it (classes=, train=). Sets jpeg_classes.
jpeg_set() {
    /usr/bin/python3 - "$1/jpeg" "$2" <<'EOF' || return 1
import glob, os, random, sys
from PIL import Image
out, per_class = sys.argv[1], int(sys.argv[2])
rng = random.Random(1)
for path in sorted(glob.glob('/usr/share/darknet/data/*.jpg')):
    name = os.path.splitext(os.path.basename(path))[0]
    os.makedirs(os.path.join(out, name))
    im = Image.open(path).convert('RGB')
    for i in range(per_class):
        side = rng.randint(min(im.size) // 3, min(im.size))
        x, y = rng.randint(0, im.width - side), rng.randint(0, im.height - side)
        tile = im.crop((x, y, x + side, y + side)).resize((224, 224), Image.BILINEAR)
        tile.save(os.path.join(out, name, '%02d.jpg' % i), quality=90)
EOF
    jpeg_classes=$(ls "$1/jpeg" | wc -l)
    printf 'classes=%s\ntrain=%s/jpeg/\n' "$jpeg_classes" "$1" >"$1/jpeg.data"
}
