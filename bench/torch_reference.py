#!/usr/bin/env python3
"""Peer benchmark: the rows of `npm run bench` (bench/run.ts) timed with PyTorch + diffusers.

Run by hand (never in CI), from the repository root, in a virtualenv outside the repository:

    python3 -m venv /tmp/torchvenv
    /tmp/torchvenv/bin/pip install --no-deps -r bench/requirements-torch.txt
    npm run bench -- --dump-spec bench/results/spec.json
    /tmp/torchvenv/bin/python bench/torch_reference.py --spec bench/results/spec.json \
        --out bench/results/torch-reference.json
    npm run bench -- --backends wasm --compare bench/results/torch-reference.json

The spec file is written by the TypeScript side (bench/spec.ts): the UNet configs with diffusers'
own keys, the batch sizes, the context length, the optimizer's learning rate, the DRO hinge margin,
the sampler settings, the timing budget and the FLOP count of every operation. Both sides divide by
the same FLOP counts, so their GFLOP/s figures are comparable.

What each row times, as bench/run.ts defines it (B = the config's batch, 8 context tokens):
  forward   one UNet forward on B inputs, no gradient;
  sftStep   MSE against a fixed target, backward, one Adam step (lr 1e-4) on all parameters;
  droStep   ref forward on 2B inputs (expert + policy halves) without gradient, phi forward on the
            same 2B with gradient, per-sample MSE minus ref's, split into halves,
            mean(relu((l_expert - l_policy) + margin)), backward, one Adam step;
  sample20  20 steps of DPMSolverMultistepScheduler (dpmsolver++, order 2) from x_T of B images,
            one model call per step (guidance scale 1, as in bench/run.ts).
Timing: one warm-up call, then repetitions until the budget or the repetition cap is reached; the
median counts. Threads: 1 by default (the engine's wasm backend runs single-threaded in Node).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import diffusers
import torch
import torch.nn.functional as F
from diffusers import DPMSolverMultistepScheduler, UNet2DConditionModel

ROOT = Path(__file__).resolve().parent.parent
OPS = ("forward", "sftStep", "droStep", "sample20")
UNET_KEYS = (
    "in_channels",
    "out_channels",
    "block_out_channels",
    "layers_per_block",
    "down_block_types",
    "up_block_types",
    "cross_attention_dim",
    "attention_head_dim",
    "norm_num_groups",
    "sample_size",
)


class SpecError(Exception):
    pass


def load_spec(path: Path) -> dict:
    try:
        spec = json.loads(path.read_text())
    except FileNotFoundError:
        raise SpecError(
            f"{path}: not found; write it with `npm run bench -- --dump-spec {path}`"
        ) from None
    except json.JSONDecodeError as err:
        raise SpecError(f"{path}: not valid JSON ({err})") from None

    def need(obj: dict, key: str, where: str):
        if not isinstance(obj, dict) or key not in obj:
            raise SpecError(f"{path}: field '{where}{key}' is missing")
        return obj[key]

    for key in ("contextLength", "learningRate", "droMargin", "timing", "sampler", "configs"):
        need(spec, key, "")
    for name, c in spec["configs"].items():
        unet = need(c, "unet", f"configs.{name}.")
        for key in UNET_KEYS:
            need(unet, key, f"configs.{name}.unet.")
        for key in ("batch", "size", "params", "flops"):
            need(c, key, f"configs.{name}.")
        for op in OPS:
            need(c["flops"], op, f"configs.{name}.flops.")
    return spec


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def time_it(fn, budget_ms: float, max_reps: int) -> tuple[float, float]:
    """bench/run.ts's timeIt: one warm-up, then repetitions within the budget; the median wall and
    the median process CPU milliseconds (user + system, all threads)."""
    fn()
    times: list[float] = []
    cpu: list[float] = []
    start = time.perf_counter()
    while len(times) < max_reps and (not times or (time.perf_counter() - start) * 1000 < budget_ms):
        c0 = time.process_time()
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return median(times), median(cpu)


def build_unet(unet_config: dict) -> UNet2DConditionModel:
    # The remaining keys keep diffusers' defaults, which are the engine's constants
    # (engine/models/unet-config.ts UNET_CONSTANTS): norm eps 1e-5, flip_sin_to_cos, freq_shift 0,
    # GEGLU feed-forward, no dropout.
    return UNet2DConditionModel(**{k: unet_config[k] for k in UNET_KEYS})


def bench_config(name: str, c: dict, spec: dict, quick: bool) -> dict:
    torch.manual_seed(2024)
    unet_config = c["unet"]
    batch, size = c["batch"], c["size"]
    phi = build_unet(unet_config).eval()  # no dropout or batch norm: eval and train compute the same
    params = sum(p.numel() for p in phi.parameters())
    if params != c["params"]:
        raise SpecError(
            f"config '{name}': diffusers builds {params} parameters, the engine {c['params']}; "
            "the two models differ"
        )
    ref = build_unet(unet_config).eval().requires_grad_(False)
    ref.load_state_dict(phi.state_dict())
    # NCHW here, NHWC in the engine: the same values in each side's native layout.
    shape = (batch, unet_config["in_channels"], size, size)
    x = torch.randn(shape)
    target = torch.randn(shape)
    ctx = torch.randn(batch, spec["contextLength"], unet_config["cross_attention_dim"])
    t = torch.randint(0, 1000, (batch,))
    x2, target2, ctx2, t2 = (torch.cat([v, v]) for v in (x, target, ctx, t))
    # tf.train.adam: betas 0.9 / 0.999, epsilon 1e-7.
    opt = torch.optim.Adam(phi.parameters(), lr=spec["learningRate"], eps=1e-7)
    timing = spec["timing"]
    budget = timing["quickBudgetMs"] if quick else timing["budgetMs"]
    reps = timing["quickMaxReps"] if quick else timing["maxReps"]
    margin = spec["droMargin"]

    def forward():
        with torch.inference_mode():
            phi(x, t, ctx).sample.sum().item()

    def sft_step():
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(phi(x, t, ctx).sample, target)
        loss.backward()
        opt.step()
        loss.item()

    def per_sample(pred):
        return ((pred - target2) ** 2).mean(dim=(1, 2, 3))

    def dro_step():
        with torch.no_grad():
            ref_loss = per_sample(ref(x2, t2, ctx2).sample)
        opt.zero_grad(set_to_none=True)
        le, lp = (per_sample(phi(x2, t2, ctx2).sample) - ref_loss).chunk(2)
        loss = F.relu((le - lp) + margin).mean()
        loss.backward()
        opt.step()
        loss.item()

    s = spec["sampler"]
    scheduler = DPMSolverMultistepScheduler(
        num_train_timesteps=s["num_train_timesteps"],
        beta_start=s["beta_start"],
        beta_end=s["beta_end"],
        beta_schedule=s["beta_schedule"],
        algorithm_type=s["algorithm_type"],
        solver_order=s["solver_order"],
        solver_type=s["solver_type"],
        lower_order_final=s["lower_order_final"],
        final_sigmas_type=s["final_sigmas_type"],
        timestep_spacing=s["timestep_spacing"],
        prediction_type="epsilon",
    )
    if s["guidance_scale"] != 1:
        raise SpecError("sampler.guidance_scale: only 1 (one model call per step) is implemented")

    def sample():
        with torch.inference_mode():
            scheduler.set_timesteps(s["steps"])  # also resets the multistep history
            xt = x.clone()
            for step_t in scheduler.timesteps:
                eps = ref(xt, step_t.expand(batch), ctx).sample
                xt = scheduler.step(eps, step_t, xt).prev_sample
            xt.sum().item()

    timed = {
        "forward": time_it(forward, budget, reps),
        "sftStep": time_it(sft_step, budget, reps),
        "droStep": time_it(dro_step, budget, reps),
        "sample20": time_it(sample, 1 if quick else budget, 1 if quick else timing["sampleMaxReps"]),
    }
    ms = {op: timed[op][0] for op in OPS}
    cpu_ms = {op: timed[op][1] for op in OPS}
    forward_ms, sft_ms, dro_ms, sample_ms = (ms[op] for op in OPS)
    flops = c["flops"]
    gf = {op: flops[op] / ms[op] / 1e6 for op in OPS}
    return {
        "backend": f"torch-cpu-{torch.get_num_threads()}t",
        "gradients": "autograd",
        "config": name,
        "batch": batch,
        "size": size,
        "params": params,
        "forwardMs": forward_ms,
        "sftStepMs": sft_ms,
        "droStepMs": dro_ms,
        "sample20Ms": sample_ms,
        "cpuMs": cpu_ms,
        "trainOverForward": sft_ms / forward_ms,
        "forwardImagesPerSec": 1000 * batch / forward_ms,
        "sftImagesPerSec": 1000 * batch / sft_ms,
        "forwardGflops": gf["forward"],
        "sftGflops": gf["sftStep"],
        "droGflops": gf["droStep"],
        "sample20Gflops": gf["sample20"],
        "flops": flops,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, default=ROOT / "bench" / "results" / "spec.json")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "torch-reference.json")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    parser.add_argument("--configs", default=None, help="comma-separated subset, e.g. tiny")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, as npm run bench --quick")
    args = parser.parse_args()
    if args.threads < 1:
        parser.error("--threads must be >= 1")

    try:
        spec = load_spec(args.spec)
        names = args.configs.split(",") if args.configs else list(spec["configs"])
        for n in names:
            if n not in spec["configs"]:
                raise SpecError(f"--configs: '{n}' is not in {args.spec} (has {', '.join(spec['configs'])})")
        load_start = os.getloadavg()
        torch.set_num_threads(args.threads)
        torch.set_num_interop_threads(1)
        rows = []
        for n in names:
            row = bench_config(n, spec["configs"][n], spec, args.quick)
            rows.append(row)
            print(
                f"{row['backend']:<14} {n} B{row['batch']} {row['size']}px  "
                f"fwd {row['forwardMs']:.1f} ms  sft {row['sftStepMs']:.1f} ms  "
                f"dro {row['droStepMs']:.1f} ms  sample20 {row['sample20Ms']:.0f} ms  "
                f"GFLOP/s fwd {row['forwardGflops']:.2f} sft {row['sftGflops']:.2f} "
                f"dro {row['droGflops']:.2f} sample {row['sample20Gflops']:.2f}",
                flush=True,
            )
    except SpecError as err:
        sys.exit(f"error: {err}")

    spec_path = args.spec.resolve()
    spec_name = str(spec_path.relative_to(ROOT) if spec_path.is_relative_to(ROOT) else spec_path)
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "peer": "pytorch+diffusers",
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "machine": {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count()},
        "quick": args.quick,
        "loadavg": {"start": list(load_start), "end": list(os.getloadavg())},
        "contextLength": spec["contextLength"],
        "spec": spec_name,
        "note": "median of repetitions after one warm-up, as bench/run.ts; machine load inflates times",
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f"{args.out.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
