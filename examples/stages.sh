# Sourced by the training examples (run from the repository root): builds blockdrop (or runs
# the binary BD names, unbuilt: a long queue of runs keeps one binary while the tree changes),
# and defines `stage` and `cifar10_data`.

if [ -n "${BD:-}" ]; then
    bd=$BD
else
    cargo build --release
    bd=target/release/blockdrop
fi

# stage DIR EPOCHS ARGS…: start the run in DIR, or resume it when it exists.
stage() {
    local dir=$1 epochs=$2
    shift 2
    if [ -e "$dir/config.json" ]; then
        "$bd" train "$1" --resume "$dir" --epochs "$epochs"
    else
        "$bd" train "$@" --out "$dir" --epochs "$epochs"
    fi
}

# cifar10_data DIR RUNS: prints DIR when it holds CIFAR-10 (class folders, or the binary or
# python release); else unpacks ../shared/data/cifar10-jpeg.tar.gz into RUNS and prints that.
cifar10_data() {
    local data=$1 runs=$2
    if [ -d "$data/train" ] || [ -d "$data/cifar-10-batches-bin" ] || [ -d "$data/cifar-10-batches-py" ]; then
        echo "$data"
        return
    fi
    local archive=../shared/data/cifar10-jpeg.tar.gz
    if [ ! -f "$archive" ]; then
        echo "no CIFAR-10 at $data and no $archive: give the data folder" >&2
        exit 2
    fi
    mkdir -p "$runs"
    tar xzf "$archive" -C "$runs"
    echo "$runs/cifar10-jpeg"
}
