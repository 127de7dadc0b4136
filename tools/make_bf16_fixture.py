"""Writes test/fixtures/bf16/adamw-ema.json: one AdamW update and one EMA step on bfloat16 tensors
as torch computes them, for test/unit/bf16-training.test.ts.

Run by hand (never in CI) with torch installed (see tools/requirements-parity.txt):
    python tools/make_bf16_fixture.py
Values are stored as float32 numbers; every one of them is exactly a bfloat16.
"""
import json
import os

import torch

torch.manual_seed(0)
N = 512


def bf(x):
    return x.to(torch.bfloat16)


def listed(t):
    return [float(v) for v in t.float().tolist()]


# Weights spread over several binades, gradients and moments of a mid-training state.
param0 = bf(torch.randn(N) * torch.logspace(-3, 0, N))
grad = bf(torch.randn(N) * 1e-3)
exp_avg0 = bf(torch.randn(N) * 1e-4)
exp_avg_sq0 = bf(torch.rand(N) * 1e-6)
cases = []
for foreach in (False, True):
    for lr in (1e-5, 1e-4):
        p = param0.clone().requires_grad_(True)
        opt = torch.optim.AdamW([p], lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, foreach=foreach)
        opt.state[p] = {
            "step": torch.tensor(2.0),
            "exp_avg": exp_avg0.clone(),
            "exp_avg_sq": exp_avg_sq0.clone(),
        }
        p.grad = grad.clone()
        opt.step()
        st = opt.state[p]
        cases.append(
            {
                "foreach": foreach,
                "lr": lr,
                "stepBefore": 2,
                "param": listed(p.detach()),
                "expAvg": listed(st["exp_avg"]),
                "expAvgSq": listed(st["exp_avg_sq"]),
                "changed": int((p.detach() != param0).sum()),
            }
        )

# diffusers EMAModel.step on bf16 shadows (non-foreach): s.sub_(one_minus_decay * (s - param)),
# decay = min(max_decay, (1 + step) / (10 + step)) with step = optimization_step - 1.
shadow0 = bf(param0.float() + torch.randn(N) * 1e-3)
ema = []
for updates_before, max_decay in ((4, 0.9999), (100000, 0.9999)):
    step = updates_before
    decay = min(max_decay, (1 + step) / (10 + step))
    s = shadow0.clone()
    s.sub_((1 - decay) * (s - param0))
    ema.append({"updatesBefore": updates_before, "maxDecay": max_decay, "decay": decay, "shadow": listed(s)})

out = {
    "torch": torch.__version__,
    "param0": listed(param0),
    "grad": listed(grad),
    "expAvg0": listed(exp_avg0),
    "expAvgSq0": listed(exp_avg_sq0),
    "weightDecay": 1e-2,
    "adamw": cases,
    "shadow0": listed(shadow0),
    "ema": ema,
}
path = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "bf16", "adamw-ema.json")
with open(path, "w") as f:
    json.dump(out, f)
print("wrote", path, [c["changed"] for c in cases])
