"""``python -m medtext predict --model_dir DIR ...`` timed the way ``benchmarks/speed.py`` times the other
inference paths (run by it, one process each): the CLI itself (``medtext/deploy/onnx_corpus.py``), unchanged,
in this process, with the ONNX Runtime session wrapped to record each batch's shape and real tokens.

    python benchmarks/onnx_timer.py --out timing.json -- --model_dir DIR --data.predict_file F [--onnx.int8 true]

``predict_seconds`` is the time of ``ExportedModel.logits`` + ``decide`` (tokenization, the length-sorted
batches, calibration), what the CLI's own "abstracts/s" line covers: after the model is loaded and the
file read, as ``step_timer.LightningStepTimer`` for ``medtext predict`` and ``hf_baseline.py predict``
for the pipeline. Peak RSS is the process's ``VmHWM`` at the end (model load and file writing included).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from step_timer import StepLog, peak_rss_mib


class RecordingSession:
    """An ``onnxruntime.InferenceSession`` that records (abstracts, padded length, real tokens) per run."""

    def __init__(self, session, log: StepLog):
        self.session, self.log = session, log

    def run(self, names, feeds, *args, **kwargs):
        mask = feeds["attention_mask"]
        self.log.shapes.append((int(mask.shape[0]), int(mask.shape[1]), int(mask.sum())))
        return self.session.run(names, feeds, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.session, name)


def instrument(log: StepLog) -> None:
    """Wrap ``ExportedModel``'s session and time its ``logits`` and ``decide`` calls into ``log``."""
    from medtext.deploy.onnx_predict import ExportedModel

    init, logits, decide = ExportedModel.__init__, ExportedModel.logits, ExportedModel.decide
    log.extra["predict_seconds"] = 0.0

    def timed(method):
        def wrapper(self, *args, **kwargs):
            began = time.perf_counter()
            try:
                return method(self, *args, **kwargs)
            finally:
                log.extra["predict_seconds"] += time.perf_counter() - began
        return wrapper

    def wrapped_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.session = RecordingSession(self.session, log)

    ExportedModel.__init__, ExportedModel.logits, ExportedModel.decide = wrapped_init, timed(logits), timed(decide)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("predict_args", nargs=argparse.REMAINDER, help="after --: medtext predict --model_dir arguments")
    args = parser.parse_args()
    predict_args = args.predict_args[1:] if args.predict_args[:1] == ["--"] else args.predict_args
    from medtext.core.atomic_files import atomic_write_text
    from medtext.deploy.onnx_corpus import main as onnx_predict

    log = StepLog(0)
    instrument(log)
    onnx_predict(predict_args)
    log.extra.update(predict_abstracts=sum(s[0] for s in log.shapes), predict_shapes=list(log.shapes),
                     peak_rss_mib=peak_rss_mib())
    atomic_write_text(args.out, json.dumps({**log.summary(), **log.extra}) + "\n")


if __name__ == "__main__":
    main()
