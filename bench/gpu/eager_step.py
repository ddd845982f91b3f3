#!/usr/bin/env python3
"""The training step of `mpipipe bench bridge` in PyTorch eager: the same model (ModelZoo's layer list), batch,
optimizer (SGD with momentum, no dampening, no weight decay), loss, data path and per-step readings, timed the same way.

Per step, as the bridge's Worker does: the batch's rows gathered from the training set in host memory (index_select),
copied to the device, zeroed gradients, forward, mean cross-entropy, backward, SGD step, then the loss and the number
of correct predictions read on the host (the bridge reads both every step, which waits for the device). The data is
the synthetic set's geometry (1x28x28, 10 classes; random values: the step time does not depend on them).

    python3 eager_step.py --model cnn --device cuda:0 --steps 200 --warmup 20
prints one line: `eager model cnn device cuda:0 batch 128 steps 200 mean_ms .. p10_ms .. median_ms .. p90_ms ..`
"""
import argparse
import statistics
import sys
import time

import torch
from torch import nn


def build(model: str, shape=(1, 28, 28), classes=10) -> nn.Sequential:
    """ModelZoo.Build (src/MpiPipeline.Torch/ModelZoo.cs) for the same names."""
    channels, rows, columns = shape
    features = channels * rows * columns
    if model == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(features, 256), nn.ReLU(), nn.Linear(256, classes))
    if model == "cnn":
        return nn.Sequential(
            nn.Conv2d(channels, 16, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * (rows // 4) * (columns // 4), 128), nn.ReLU(), nn.Linear(128, classes))
    if model.startswith("deep-mlp:"):
        parts = model.split(":")
        count = int(parts[1])
        width = int(parts[2]) if len(parts) == 3 else 256
        layers: list[nn.Module] = [nn.Flatten()]
        inputs = features
        for i in range(count):
            outputs = classes if i == count - 1 else width
            if i > 0:
                layers.append(nn.ReLU())
            layers.append(nn.Linear(inputs, outputs))
            inputs = outputs
        return nn.Sequential(*layers)
    sys.exit(f"eager_step.py: unknown model '{model}' (mlp, cnn, deep-mlp:N[:W])")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    count = 8192  # SyntheticImages.TrainCount
    images = torch.randn(count, 1, 28, 28)
    labels = torch.randint(0, 10, (count,))
    model = build(args.model).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    generator = torch.Generator().manual_seed(args.seed)
    order = torch.randperm(count, generator=generator)

    times = []
    for t in range(args.warmup + args.steps):
        start = time.perf_counter()
        first = (t * args.batch) % (count - args.batch)
        index = order[first:first + args.batch]
        x = images.index_select(0, index).to(device)
        y = labels.index_select(0, index).to(device)
        optimizer.zero_grad(set_to_none=False)  # the bridge zeroes its flat gradient buffer
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y)
        loss.backward()
        optimizer.step()
        _ = loss.item()
        _ = int((logits.detach().argmax(1) == y).sum().item())
        if t >= args.warmup:
            times.append((time.perf_counter() - start) * 1000)

    deciles = statistics.quantiles(times, n=10) if len(times) >= 2 else [times[0]] * 9
    print(f"eager model {args.model} device {args.device} batch {args.batch} steps {args.steps} "
          f"mean_ms {statistics.fmean(times):.4f} p10_ms {deciles[0]:.4f} median_ms {statistics.median(times):.4f} "
          f"p90_ms {deciles[8]:.4f} torch {torch.__version__}")


if __name__ == "__main__":
    main()
