"""Take what ``gpu_bench.py`` needs to a lent GPU machine, in two calls of the device tool.

That machine has PyTorch but not facenet-pytorch or usearch, cannot download, and sees
neither ``../shared`` nor this machine's files beyond what a call carries: at most 64 MiB,
the repository included. The FaceNet weights alone are 94 MB, so they travel in two parts, one
per call, and are put back together (and their sha256 checked) on that machine.

* ``pack`` (here) writes ``.gpu/a``: the facenet-pytorch and usearch wheels for that machine's
  Python, the video, and the weights' first part; and ``.gpu/b``: the rest of the weights and
  lfw_dev's first fold of pairs (``pairs.txt`` and the 807 photos it names).
* ``unpack a`` / ``unpack b`` (there, as each call's first command) copy a part under
  ``/tmp/facesearch-gpu``; ``a`` installs the wheels, ``b`` joins and verifies the weights.
  Then ``. /tmp/facesearch-gpu/env`` points Python and the benchmarks at them.

The second call must come while the machine is still held (it is given back 30 s after a
call ends); ``unpack b`` says so in one line when the first call's files are gone. The calls
are in docs/gpu.md.

    python benchmarks/gpu_carry.py pack [--out .gpu] [--pairs 300]
    python3 benchmarks/gpu_carry.py unpack a|b      # on the GPU machine
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
CALL_LIMIT = 64 * 2**20  # what one call of the device tool carries, the repository included
THERE = Path("/tmp/facesearch-gpu")
PYTHON_THERE = "3.12"  # the GPU image's Python (the device tool's KINDS.md)
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]
WHEELS = ("facenet-pytorch", "usearch")  # what that image lacks of facesearch's dependencies


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def repo_bytes() -> int:
    """The tracked files, which travel with every call."""
    out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True)
    return sum((REPO / f).stat().st_size for f in out.stdout.decode().split("\0") if f)


def lfw_fold(lfw: Path, pairs: int) -> tuple[list[str], set[Path]]:
    """The header and first ``pairs`` same and ``pairs`` different lines of lfw's ``pairs.txt``,
    and the photos they name."""
    lines = (lfw / "pairs.txt").read_text().splitlines()[1:]
    same = [line for line in lines if len(line.split()) == 3][:pairs]
    diff = [line for line in lines if len(line.split()) == 4][:pairs]
    photos = set()
    for line in same + diff:
        p = line.split()
        names = [(p[0], p[1]), (p[0], p[2])] if len(p) == 3 else [(p[0], p[1]), (p[2], p[3])]
        for name, i in names:
            photos.add(lfw / "images" / name / f"{name}_{int(i):04d}.jpg")
    return [f"1\t{pairs}", *same, *diff], photos


def pack(out: Path, pairs: int, python: str) -> None:
    sys.path.insert(0, str(HERE))
    from _common import FACES, SHARED
    from facesearch.weights import KNOWN_WEIGHTS

    shutil.rmtree(out, ignore_errors=True)
    a, b = out / "a", out / "b"
    wheels = a / "wheels"
    specs = [f"{name}=={metadata.version(name)}" for name in WHEELS]
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
    cmd += ["--python-version", python, "--implementation", "cp", "-d", str(wheels)]
    for platform in PLATFORMS:
        cmd += ["--platform", platform]
    subprocess.run(cmd + specs, check=True)
    video = a / "shared" / "faces" / "facenet_pytorch_data" / "video.mp4"
    video.parent.mkdir(parents=True)
    shutil.copy(FACES / "facenet_pytorch_data" / "video.mp4", video)
    lines, photos = lfw_fold(FACES / "lfw_dev", pairs)
    lfw = b / "shared" / "faces" / "lfw_dev"
    for p in photos:
        (lfw / "images" / p.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(p, lfw / "images" / p.parent.name / p.name)
    (lfw / "pairs.txt").write_text("\n".join(lines) + "\n")

    weights = next(
        SHARED / "models" / w.filename
        for w in KNOWN_WEIGHTS
        if (SHARED / "models" / w.filename).is_file()
    )
    data = weights.read_bytes()
    # the cut that leaves the two calls equally large
    cut = min(len(data), max(0, (tree_bytes(b) + len(data) - tree_bytes(a)) // 2))
    for part, (folder, chunk) in enumerate(((a, data[:cut]), (b, data[cut:]))):
        target = folder / "shared" / "models" / f"{weights.name}.part{part}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(chunk)
    for name, folder in (("a", a), ("b", b)):
        total = repo_bytes() + tree_bytes(folder)
        print(
            f".gpu/{name}: {tree_bytes(folder) / 2**20:.1f} MiB (+ the repository: "
            f"{total / 2**20:.1f} of the {CALL_LIMIT / 2**20:.0f} MiB a call carries)"
        )
        if total > CALL_LIMIT:
            sys.exit(f"{folder} is too large for one call: use fewer --pairs")
    print(f"lfw_dev: {len(photos)} photos of {len(lines) - 1} pairs; wheels: {', '.join(specs)}")


def unpack(part: str) -> None:
    """On the GPU machine: the part's files under THERE, then the wheels (a) or the weights (b)."""
    src = REPO / ".gpu" / part / "shared"
    if part == "b" and not (THERE / "site").is_dir():
        sys.exit(
            f"{THERE} is gone (the machine was given back after the first call): "
            "run the call with 'unpack a' again, then this one at once"
        )
    shutil.copytree(src, THERE / "shared", dirs_exist_ok=True)
    if part == "a":
        wheels = sorted(str(p) for p in (REPO / ".gpu" / "a" / "wheels").glob("*.whl"))
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-index",
                "--no-deps",
                "--no-compile",
                "--upgrade",
                "--target",
                str(THERE / "site"),
                *wheels,
            ],
            check=True,
        )
        env = (
            f"export PYTHONPATH={THERE / 'site'}:{REPO} FACESEARCH_SHARED={THERE / 'shared'} "
            f"FACESEARCH_MODELS={THERE / 'shared' / 'models'} PYTHONUNBUFFERED=1\n"
        )
        (THERE / "env").write_text(env)
        print(f"unpacked a: wheels in {THERE / 'site'}; now '. {THERE / 'env'}'")
        return
    models = THERE / "shared" / "models"
    parts = sorted(models.glob("*.part[0-9]"))
    if len(parts) != 2:
        sys.exit(f"{models}: expected the weights' two parts, found {len(parts)}")
    target = models / parts[0].name.rsplit(".part", 1)[0]
    with open(target, "wb") as fh:
        for p in parts:
            fh.write(p.read_bytes())
            p.unlink()
    sys.path[:0] = [str(THERE / "site"), str(REPO)]
    from facesearch.weights import KNOWN_WEIGHTS

    expected = {w.filename: w.sha256 for w in KNOWN_WEIGHTS}.get(target.name)
    actual = hashlib.sha256(target.read_bytes()).hexdigest()
    if actual != expected:
        target.unlink()
        sys.exit(f"{target.name}: sha256 {actual[:12]}… after joining, expected {expected}")
    print(f"unpacked b: {target} ({target.stat().st_size} bytes, sha256 verified)")


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="write .gpu/a and .gpu/b here")
    p.add_argument("--out", type=Path, default=REPO / ".gpu")
    p.add_argument("--pairs", type=int, default=300, help="lfw same and different pairs each")
    p.add_argument("--python", default=PYTHON_THERE, help="the GPU machine's Python version")
    u = sub.add_parser("unpack", help="on the GPU machine: one part, at the start of its call")
    u.add_argument("part", choices=["a", "b"])
    args = ap.parse_args()
    if args.command == "pack":
        os.chdir(REPO)
        pack(args.out, args.pairs, args.python)
    else:
        unpack(args.part)
    return 0


if __name__ == "__main__":
    sys.exit(main())
