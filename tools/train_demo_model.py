"""Train the demo Mask R-CNN on the demo generator, then evaluate and export it exactly as the gate uses it.

    python tools/train_demo_model.py --seconds 420 --out models/demo      # on a CUDA GPU

Training samples are drawn on the fly from ``preprocgate.data.demo.render(seed, "train", i)`` (JPEG round trip
included, like the files the gate reads) and preprocessed by the gate's own ``torch`` variant at 320×320, so
the model is trained on the training-time reference path. Writes ``maskrcnn_mbv3.pt`` (fp16 state dict),
``maskrcnn_mbv3.onnx`` (fp32 weights taken from that fp16 file) and ``TRAINING.json`` (command, figures,
sha256 of both files).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from preprocgate.data import demo
from preprocgate.evaluators.cocoeval import PycocotoolsEvaluator
from preprocgate.functional.coco import to_results
from preprocgate.hashing import file_sha256
from preprocgate.models.demo_maskrcnn import INPUT_SIZE, DemoMaskRCNN
from preprocgate.models.torch_module import TorchModuleAdapter
from preprocgate.spec import InputSpec
from preprocgate.variants.torch_interpolate import TorchInterpolate

FACTORY = "preprocgate.models.demo_maskrcnn:build"


class TrainSamples(torch.utils.data.Dataset):
    def __init__(self, seed: int) -> None:
        self.seed = seed

    def __len__(self) -> int:
        return 10**8

    def __getitem__(self, i: int) -> tuple[np.ndarray, dict[str, torch.Tensor]]:
        image, instances = demo.render(self.seed, "train", i)
        _, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, demo.JPEG_QUALITY])
        image = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
        h, w = INPUT_SIZE
        masks, boxes, labels = [], [], []
        for inst in instances:
            m = cv2.resize(inst.mask.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR) > 0.5
            ys, xs = np.nonzero(m)
            if len(ys) < 4:
                continue
            masks.append(m)
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            labels.append(inst.category_id)
        target = {
            "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor(labels, dtype=torch.int64),
            "masks": torch.from_numpy(np.stack(masks) if masks else np.zeros((0, h, w), bool)).to(torch.uint8),
        }
        return image, target


def train(args: argparse.Namespace, device: torch.device) -> tuple[DemoMaskRCNN, dict]:
    torch.manual_seed(args.seed)
    model = DemoMaskRCNN().to(device).train()
    preprocess = TorchInterpolate(InputSpec(size=INPUT_SIZE), device)
    loader = torch.utils.data.DataLoader(
        TrainSamples(args.seed),
        batch_size=args.batch,
        num_workers=args.workers,
        collate_fn=lambda b: b,
        prefetch_factor=4,
        persistent_workers=True,
    )
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    start, it, log = time.time(), 0, []
    for batch in loader:
        elapsed = time.time() - start
        if elapsed > args.seconds:
            break
        frac = elapsed / args.seconds
        lr = args.lr * min(1.0, (it + 1) / 200) * 0.5 * (1 + math.cos(math.pi * frac))
        for g in opt.param_groups:
            g["lr"] = lr
        x = preprocess([b[0] for b in batch])
        targets = [{k: v.to(device, non_blocking=True) for k, v in b[1].items()} for b in batch]
        with torch.autocast(device.type, dtype=torch.bfloat16):
            losses = model.net(list(x), targets)
        loss = sum(losses.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        if it % 100 == 0:
            row = {"it": it, "s": round(elapsed, 1), "lr": lr, **{k: round(float(v), 4) for k, v in losses.items()}}
            log.append(row)
            print(json.dumps(row), flush=True)
        it += 1
    return model, {"iterations": it, "seconds": round(time.time() - start, 1), "log": log}


def evaluate(weights: Path, device: torch.device, cache: Path, count: int) -> dict:
    """Evaluate like the gate: decode the val files, torch preprocessing, the torch adapter, pycocotools."""
    paths = demo.ensure(cache, "val", count)
    gt = json.loads(paths.annotations.read_text())
    adapter = TorchModuleAdapter(device, factory=FACTORY, file=weights)
    preprocess = TorchInterpolate(InputSpec(size=INPUT_SIZE), device)
    results = []
    for info in gt["images"]:
        image = cv2.imread(str(paths.images / info["file_name"]), cv2.IMREAD_COLOR)
        det = adapter(preprocess([image]), [image.shape[:2]])[0]
        results += to_results(info["id"], det)
    evaluator = PycocotoolsEvaluator(paths.annotations)
    ids = [i["id"] for i in gt["images"]]
    return {t: evaluator.evaluate(results, t, ids) for t in ("bbox", "segm")}


class _SingleImage(torch.nn.Module):
    def __init__(self, model: DemoMaskRCNN) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):  # type: ignore[no-untyped-def]
        out = self.model.net([x[0]])[0]
        return out["boxes"], out["labels"], out["scores"], out["masks"]


def export_onnx(weights: Path, path: Path, cache: Path) -> dict:
    model = DemoMaskRCNN().eval()
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    paths = demo.ensure(cache, "val", 100)
    preprocess = TorchInterpolate(InputSpec(size=INPUT_SIZE), torch.device("cpu"))
    sample = preprocess([cv2.imread(str(p)) for p in sorted(paths.images.iterdir())[:1]])
    single = _SingleImage(model).eval()
    torch.onnx.export(
        single,
        (sample,),
        str(path),
        opset_version=17,
        input_names=["image"],
        output_names=["boxes", "labels", "scores", "masks"],
        dynamo=False,
    )
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = {"boxes": 0.0, "scores": 0.0, "masks": 0.0}
    for p in sorted(paths.images.iterdir())[:5]:
        x = preprocess([cv2.imread(str(p))])
        with torch.inference_mode():
            ref = single(x)
        got = session.run(None, {"image": x.numpy()})
        n = min(len(ref[2]), len(got[2]))
        for name, r, g in (("boxes", ref[0], got[0]), ("scores", ref[2], got[2]), ("masks", ref[3], got[3])):
            if n:
                worst[name] = max(worst[name], float(np.abs(r[:n].numpy() - g[:n]).max()))
    return {"ort_vs_torch_max_abs": worst}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=420)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=4e-4)
    parser.add_argument("--workers", type=int, default=max(1, min(14, (os.cpu_count() or 2) - 2)))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-count", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("models/demo"))
    parser.add_argument("--onnx-out", type=Path, default=Path("preprocgate/demo"), help="shipped in the package")
    parser.add_argument("--cache", type=Path, default=Path(".cache/preprocgate"))
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    args.out.mkdir(parents=True, exist_ok=True)
    model, stats = train(args, device)
    weights = args.out / "maskrcnn_mbv3.pt"
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}, weights)
    metrics = evaluate(weights, device, args.cache, args.val_count)
    print(json.dumps(metrics), flush=True)
    onnx_path = args.onnx_out / "maskrcnn_mbv3.onnx"
    export = export_onnx(weights, onnx_path, args.cache)
    import torchvision

    record = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
        "versions": {
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "python": platform.python_version(),
        },
        "train": {k: v for k, v in stats.items() if k != "log"},
        "loss_log": stats["log"],
        "val_metrics": metrics,
        "val_images": args.val_count,
        **export,
        "sha256": {weights.name: file_sha256(weights), onnx_path.name: file_sha256(onnx_path)},
    }
    (args.out / "TRAINING.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({k: v for k, v in record.items() if k != "loss_log"}, indent=2))


if __name__ == "__main__":
    main()
