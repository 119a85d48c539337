"""``trainer inference``: predictions of a trained run on new data, with the run's own
config and code, so that using a model needs no script."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from sweeptrainer.commands import verb_parser

VERB = "inference"
USAGE = ("trainer inference RUN_DIR INPUT OUTPUT   predict with a run's best state",)


def parser() -> argparse.ArgumentParser:
    parser = verb_parser(
        VERB,
        description="Predict with a run's best state (states/best.pt) and write a row per sample:\n"
        "the prediction and a score per class.",
        epilog="""\
examples:
  trainer inference results/default/training/RUN Digits:test predictions.csv
  trainer inference results/default/training/RUN features.csv predictions.parquet
  trainer inference results/images/training/RUN data/images/seven predictions.csv
  trainer inference results/default/training/RUN MyData:test predictions.csv
""",
    )
    parser.add_argument(
        "run_dir",
        metavar="RUN_DIR",
        help="a run folder: <results_dir>/<experiment_id>/training/<run_name>",
    )
    parser.add_argument(
        "input",
        metavar="INPUT",
        help="NAME:SPLIT (a split of a dataset option, e.g. Digits:test, built as training "
        "builds it); for a run on files (audio, images, arrays): a folder of new files, or a "
        "table listing them; for a run of your dataset class that defines load(path): a file "
        "or a folder of files it reads; for a run on a table: a CSV/Parquet file with the "
        "dataset's feature columns",
    )
    parser.add_argument(
        "output", metavar="OUTPUT", help="the predictions file to write (.csv or .parquet)"
    )
    return parser


def run(args: Sequence[str]) -> int:
    from sweeptrainer.usercode import import_from_cwd

    ns = parser().parse_args(args)
    import_from_cwd()  # the project's own classes and functions, as when it trained
    from sweeptrainer.inference import predict

    frame = predict(ns.run_dir, ns.input, ns.output)
    skipped = frame.attrs.get("skipped") or []
    shown = ", ".join(f"{name} ({why})" for name, why in skipped[:5])
    more = f", ... ({len(skipped) - 5} more)" if len(skipped) > 5 else ""
    print(
        f"wrote {len(frame)} predictions to {ns.output}"
        + (f"; skipped {len(skipped)} file(s): {shown}{more}" if skipped else "")
    )
    return 0
