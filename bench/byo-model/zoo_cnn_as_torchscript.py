#!/usr/bin/python3
"""The zoo's cnn with the zoo's own initial parameters, as a TorchScript file: the bench's same-start comparison.

  mpipipe train --algo single --model cnn --seed 1 --max-steps 1 --lr 1e-30 --momentum 0 --save-parameters zoo-init.bin
  /usr/bin/python3 bench/byo-model/zoo_cnn_as_torchscript.py zoo-init.bin zoo-init-cnn.pt

The flat buffer holds the parameters in layer order (weight, then bias), which is nn.Sequential's named_parameters()
order for the same layers; a step with lr 1e-30 leaves them as initialized (below float32 resolution).
"""
import sys

import numpy as np
import torch

sys.path.insert(0, __file__.rsplit("/", 3)[0] + "/tests/fixtures/torchscript")
from make_fixtures import cnn  # noqa: E402

flat = torch.from_numpy(np.fromfile(sys.argv[1], dtype="<f4"))
model = cnn()
offset = 0
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(flat[offset:offset + p.numel()].view_as(p))
        offset += p.numel()
assert offset == flat.numel(), f"{flat.numel()} values in {sys.argv[1]}, the cnn has {offset} parameters"
torch.jit.script(model).save(sys.argv[2])
print(f"{sys.argv[2]}: {offset} parameters from {sys.argv[1]}")
