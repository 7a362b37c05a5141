#!/usr/bin/env bash
# The main job, end to end: set up, enroll the sample people, identify a group photo.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
cd "$REPO"
"$VENV/bin/python" scripts/fetch_samples.py
if [[ -n "${FACESEARCH_GALLERY:-}" ]]; then
  GALLERY="$FACESEARCH_GALLERY"
else
  GALLERY="$REPO/out/demo-gallery"
  rm -rf "$GALLERY"  # the demo's own gallery starts fresh (an older version's would be refused)
fi
fs() { "$VENV/bin/facesearch" --gallery "$GALLERY" "$@"; }
echo "== facesearch enroll sample_images/people  (gallery: $GALLERY)"
fs enroll sample_images/people
echo
echo "== facesearch identify sample_images/group/bbt2.jpg"
fs identify sample_images/group/bbt2.jpg --annotate out/bbt2.annotated.jpg
