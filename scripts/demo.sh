#!/usr/bin/env bash
# The main job, end to end: set up, enroll the sample people, identify a group photo.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
cd "$REPO"
"$VENV/bin/python" scripts/fetch_samples.py
GALLERY="${FACESEARCH_GALLERY:-$REPO/out/demo-gallery}"
fs() { "$VENV/bin/facesearch" --gallery "$GALLERY" "$@"; }
echo "== facesearch enroll sample_images/people  (gallery: $GALLERY)"
fs enroll sample_images/people
echo
echo "== facesearch identify sample_images/group/bbt2.jpg"
fs identify sample_images/group/bbt2.jpg --annotate out/bbt2.annotated.jpg
