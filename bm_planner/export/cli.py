"""``bm-export``: export a planner checkpoint's denoiser to ONNX with deployment metadata. Example::

    bm-export --checkpoint assets/planner-small-v2 --out outputs/planner-small.onnx --check

``--check`` also compares ONNX Runtime with torch on random inputs (one denoising step) and on a full DDIM plan;
``--tensorrt`` additionally builds a TensorRT engine next to the ONNX file (needs a GPU and ``bm[trt]``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from bm_planner.export.onnx_export import DEFAULT_OPSET, ExportError, export_onnx


def load_for_export(checkpoint: str | Path):
    """(model, normalizer, state_rep, checkpoint dir) of a checkpoint or run directory (EMA weights)."""
    from bm_planner.agent import DiffusionAgent

    agent = DiffusionAgent.from_pretrained(checkpoint)
    return agent.model, agent.normalizer, agent.rep, agent.path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="bm-export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--checkpoint", required=True, help="checkpoint or run directory")
    p.add_argument("--out", required=True, help="output .onnx file (written atomically)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET)
    p.add_argument("--check", action="store_true", help="parity check per step and per plan against torch")
    p.add_argument("--tensorrt", choices=("fp32", "fp16"), default=None, help="also build a TensorRT engine")
    a = p.parse_args(argv)
    ckpt, out = Path(a.checkpoint), Path(a.out)
    if not ckpt.exists():
        p.error(f"--checkpoint {ckpt} does not exist")
    if out.suffix != ".onnx":
        p.error(f"--out must end in .onnx, got {str(out)!r}")
    if out.exists() and out.is_dir():
        p.error(f"--out {out} is a directory")
    if not out.parent.is_dir():
        p.error(f"--out {out}: the folder {out.parent} does not exist")
    if not os.access(out.parent, os.W_OK | os.X_OK):
        p.error(f"--out {out}: the folder {out.parent} is not writable")
    from bm_planner.training.checkpoint import CheckpointError

    try:
        model, normalizer, rep, path = load_for_export(ckpt)
        export_onnx(model, out, normalizer, rep, checkpoint=path, opset=a.opset, check=True)
        report: dict = {"onnx": str(out), "bytes": out.stat().st_size, "checkpoint": path}
        if a.check:
            from bm_planner.export.parity import parity_report

            report["parity"] = parity_report(model, out, normalizer, rep)
            if not report["parity"]["ok"]:
                print(json.dumps(report, indent=1))
                print("bm-export: parity check FAILED", file=sys.stderr)
                return 1
        if a.tensorrt:
            from bm_planner.backends.tensorrt import build_engine

            engine = out.with_suffix(f".{a.tensorrt}.engine")
            _, secs = build_engine(out, engine, fp16=a.tensorrt == "fp16")
            report["tensorrt"] = {"engine": str(engine), "build_s": secs}
    except (CheckpointError, ExportError, RuntimeError, ValueError) as exc:
        print(f"bm-export: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. a read-only file system: name the target, not a temp file
        print(f"bm-export: error: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
