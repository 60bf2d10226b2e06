"""The small Keras models read and measured on another backend, in their own process
(a backend is chosen once per process): ``python keras_backend_run.py BACKEND``.
Prints one JSON object: model -> "ok", or what differs."""

from __future__ import annotations

import json
import os
import sys

os.environ["KERAS_BACKEND"] = sys.argv[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from keras_checks import check_boxes, check_verify  # noqa: E402
from keras_models import SMALL  # noqa: E402


def main() -> None:
    result = {}
    for name, build in SMALL.items():
        try:
            m = build()
            a = check_boxes(m)
            check_verify(m)
            result[name] = "ok" if not a.graph.unknown_ops else f"unknown {a.graph.unknown_ops}"
        except Exception as exc:  # reported, the test shows which
            result[name] = f"{type(exc).__name__}: {str(exc)[:300]}"
    print(json.dumps(result))


if __name__ == "__main__":
    main()
