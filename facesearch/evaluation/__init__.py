"""``facesearch evaluate`` / ``calibrate``: how well recognition works on labelled photos.

``evalset`` reads a folder-per-person set (and LFW pair lists), ``protocols`` embeds each photo's
subject once and runs verification and open-set identification on the embeddings, ``metrics``
holds the ROC / k-fold / open-set arithmetic, and ``report`` writes the HTML report.
"""

from .evalset import EvalSet, load_eval_set
from .protocols import Evaluation, default_cache_dir, evaluate, parse_gallery_sizes
from .report import summary_text, write_report

__all__ = [
    "EvalSet",
    "Evaluation",
    "default_cache_dir",
    "evaluate",
    "load_eval_set",
    "parse_gallery_sizes",
    "summary_text",
    "write_report",
]
