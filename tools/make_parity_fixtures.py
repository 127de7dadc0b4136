#!/usr/bin/env python3
"""Write the diffusers parity fixtures under test/fixtures/parity/.

Run by hand (never in CI), from the repository root, in a virtualenv outside the repository:

    python3 -m venv /tmp/parity-venv
    /tmp/parity-venv/bin/pip install -r tools/requirements-parity.txt
    /tmp/parity-venv/bin/python tools/make_parity_fixtures.py

Everything is seeded, so a rerun with the pinned versions reproduces the same files. The TypeScript
tests compare the engine against these files; see test/fixtures/parity/README.md for what each
file holds.

Layout convention: PyTorch is NCHW, the engine is NHWC. Every image-shaped array is written in
NHWC (converted here with permute(0, 2, 3, 1)) and its name says so (`*.nhwc`); the UNet weights
keep diffusers' own state-dict layout, since the engine converts them on load.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

import diffusers
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, UNet2DConditionModel

OUT = Path(__file__).resolve().parent.parent / "test" / "fixtures" / "parity"
SEED = 20240521

TINY_UNET_CONFIG = dict(
    sample_size=8,
    in_channels=4,
    out_channels=4,
    block_out_channels=[32, 64],
    layers_per_block=2,
    down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"],
    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"],
    cross_attention_dim=32,
    attention_head_dim=2,
    norm_num_groups=8,
)

# SD1.5 noise schedule (docs/algorithm.md section 3).
SCHEDULE = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
)


def f32_list(t: torch.Tensor | np.ndarray) -> list[float]:
    """Float32 values as JSON numbers; float(float32) is exact, so the TS side can fround them back."""
    a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    return [float(v) for v in a.astype(np.float32).reshape(-1)]


def nhwc(t: torch.Tensor) -> torch.Tensor:
    return t.permute(0, 2, 3, 1).contiguous()


def json_safe(v):
    """JSON has no Infinity/NaN (diffusers' lambda_min_clipped defaults to -inf): write them as strings."""
    if isinstance(v, float) and not np.isfinite(v):
        return str(v)
    if isinstance(v, dict):
        return {k: json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    return v


def write_json(name: str, obj: dict) -> None:
    path = OUT / name
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(json_safe(obj), separators=(",", ":"), allow_nan=False) + "\n")
    os.replace(tmp, path)


def save_tensors(name: str, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    path = OUT / name
    tmp = path.with_suffix(".tmp")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def versions() -> dict[str, str]:
    import safetensors

    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "safetensors": safetensors.__version__,
        "numpy": np.__version__,
    }


def tiny_unet() -> None:
    torch.manual_seed(SEED)
    unet = UNet2DConditionModel(**TINY_UNET_CONFIG).eval()
    # The default init leaves norm scales at exactly 1, biases at 0 and some projections tiny; a
    # random init of every parameter keeps a wrong wiring (a swapped bias, a missing norm scale, an
    # ignored projection) from hiding behind them.
    # Weights are rounded to float16 precision so the file can be stored as F16 (half the size)
    # while the forward pass below uses exactly the values the engine will read back.
    g = torch.Generator().manual_seed(SEED + 1)
    with torch.no_grad():
        for name, p in unet.named_parameters():
            is_norm_scale = p.ndim == 1 and "norm" in name and name.endswith(".weight")
            std = 0.06 if p.ndim > 1 else 0.1
            mean = 1.0 if is_norm_scale else 0.0
            p.copy_((torch.randn(p.shape, generator=g) * std + mean).half().float())

    n_params = sum(p.numel() for p in unet.parameters())
    state = {k: v.detach().half() for k, v in unet.state_dict().items()}
    save_tensors(
        "tiny-unet.safetensors",
        state,
        {"format": "pt", "layout": "diffusers state dict (PyTorch: conv [O,I,kh,kw], linear [O,I])"},
    )
    cfg = dict(unet.config)
    cfg = {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items() if not k.startswith("_")}
    write_json(
        "tiny-unet-config.json",
        {"config": cfg, "num_parameters": n_params, "num_tensors": len(state), "seed": SEED, "versions": versions()},
    )

    # Forward: batch 2, 8x8, a different timestep per sample, context [2, 5, 32].
    g = torch.Generator().manual_seed(SEED + 2)
    sample = torch.randn(2, 4, 8, 8, generator=g)
    context = torch.randn(2, 5, 32, generator=g)
    timesteps = torch.tensor([999, 37], dtype=torch.int64)
    with torch.no_grad():
        eps = unet(sample, timesteps, encoder_hidden_states=context).sample
        # A second call at other timesteps, so a wrong time embedding cannot pass by luck.
        timesteps2 = torch.tensor([500, 1], dtype=torch.int64)
        eps2 = unet(sample, timesteps2, encoder_hidden_states=context).sample
    save_tensors(
        "unet-forward.safetensors",
        {
            "input.sample.nhwc": nhwc(sample),
            "input.sample.nchw": sample,
            "input.context": context,
            "input.timesteps.a": timesteps.float(),
            "input.timesteps.b": timesteps2.float(),
            "output.eps.a.nhwc": nhwc(eps),
            "output.eps.a.nchw": eps,
            "output.eps.b.nhwc": nhwc(eps2),
            "output.eps.b.nchw": eps2,
        },
        {
            "layout": "*.nhwc = [B,H,W,C] (engine); *.nchw = [B,C,H,W] (PyTorch); context = [B,L,D]",
            "timesteps": "integer timesteps stored as F32; output.eps.a uses input.timesteps.a, .b uses .b",
            "weights": "tiny-unet.safetensors (F16 values, forward computed in float32 from them)",
            "versions": json.dumps(versions()),
        },
    )
    print(f"tiny unet: {n_params} parameters, {len(state)} tensors")


def dpm_scheduler(**over) -> DPMSolverMultistepScheduler:
    args = dict(
        SCHEDULE,
        solver_order=2,
        algorithm_type="dpmsolver++",
        solver_type="midpoint",
        lower_order_final=True,
        final_sigmas_type="zero",
        timestep_spacing="linspace",
        prediction_type="epsilon",
    )
    args.update(over)
    return DPMSolverMultistepScheduler(**args)


def schedulers() -> None:
    ddpm = DDPMScheduler(**SCHEDULE, clip_sample=False, prediction_type="epsilon")
    out: dict = {"versions": versions(), "schedule": SCHEDULE}
    out["betas"] = f32_list(ddpm.betas)
    out["alphas_cumprod"] = f32_list(ddpm.alphas_cumprod)

    # DPM-Solver++ 20-step tables.
    dpm = dpm_scheduler()
    dpm.set_timesteps(20)
    out["dpm_solver"] = {
        "config": {k: v for k, v in dict(dpm.config).items() if not k.startswith("_") and k != "trained_betas"},
        "num_inference_steps": 20,
        "timesteps": [int(t) for t in dpm.timesteps],
        "sigmas": f32_list(dpm.sigmas),
    }

    # Other spacings, for the timestep-grid tests (SD1.5's PNDM-style config: leading + offset 1).
    # DPMSolverMultistepScheduler and DDIMScheduler define "linspace"/"leading" differently; the
    # engine follows DPMSolverMultistepScheduler, DDIM's are recorded for reference only.
    grids, ddim_grids = {}, {}
    for spacing, offset in (("linspace", 0), ("leading", 0), ("leading", 1), ("trailing", 0)):
        key = f"{spacing}_offset{offset}"
        s = dpm_scheduler(timestep_spacing=spacing, steps_offset=offset) if spacing != "linspace" else dpm_scheduler()
        for n in (20, 7):
            s.set_timesteps(n)
            grids[f"{key}_n{n}"] = [int(t) for t in s.timesteps]
        d = DDIMScheduler(**SCHEDULE, timestep_spacing=spacing, steps_offset=offset, clip_sample=False)
        d.set_timesteps(20)
        ddim_grids[f"{key}_n20"] = [int(t) for t in d.timesteps]
    out["dpm_solver_timesteps"] = grids
    out["ddim_timesteps_reference_only"] = ddim_grids

    # Full DPM-Solver++ run on a fixed "model": given per-step model outputs, record every step.
    # Covers the first-order first step, 2nd-order midpoint steps and the first-order final step.
    # Replaying step i needs the model outputs of every step before it (the multistep history).
    g = torch.Generator().manual_seed(SEED + 3)
    shape = (2, 4, 3, 3)
    x = torch.randn(shape, generator=g)
    run: dict = {"shape_nhwc": [shape[0], shape[2], shape[3], shape[1]], "x_T.nhwc": f32_list(nhwc(x))}
    samples, outputs, prevs = [], [], []
    dpm = dpm_scheduler()
    dpm.set_timesteps(20)
    for t in dpm.timesteps:
        eps = torch.randn(shape, generator=g) * 0.8 + 0.1 * x
        prev = dpm.step(eps, t, x).prev_sample
        samples.append(f32_list(nhwc(x)))
        outputs.append(f32_list(nhwc(eps)))
        prevs.append(f32_list(nhwc(prev)))
        x = prev
    run["timesteps"] = [int(t) for t in dpm.timesteps]
    run["sample.nhwc"] = samples
    run["model_output.nhwc"] = outputs
    run["prev_sample.nhwc"] = prevs
    out["dpm_solver_run"] = run

    # add_noise with a different timestep per sample.
    g = torch.Generator().manual_seed(SEED + 4)
    x0 = torch.randn(3, 4, 2, 2, generator=g)
    noise = torch.randn(3, 4, 2, 2, generator=g)
    ts = torch.tensor([0, 499, 999], dtype=torch.int64)
    noisy = ddpm.add_noise(x0, noise, ts)
    out["add_noise"] = {
        "timesteps": [int(t) for t in ts],
        "shape_nhwc": [3, 2, 2, 4],
        "original.nhwc": f32_list(nhwc(x0)),
        "noise.nhwc": f32_list(nhwc(noise)),
        "noisy.nhwc": f32_list(nhwc(noisy)),
    }

    # DDIM (eta 0, leading spacing, set_alpha_to_one True): a middle step and the final step.
    ddim = DDIMScheduler(**SCHEDULE, clip_sample=False, set_alpha_to_one=True, timestep_spacing="leading")
    ddim.set_timesteps(20)
    g = torch.Generator().manual_seed(SEED + 5)
    ddim_steps = []
    for t in (500, 0):
        x = torch.randn(2, 4, 2, 2, generator=g)
        eps = torch.randn(2, 4, 2, 2, generator=g)
        prev = ddim.step(eps, t, x, eta=0.0).prev_sample
        ddim_steps.append(
            {
                "timestep": t,
                "prev_timestep": t - 1000 // 20,
                "sample.nhwc": f32_list(nhwc(x)),
                "model_output.nhwc": f32_list(nhwc(eps)),
                "prev_sample.nhwc": f32_list(nhwc(prev)),
            }
        )
    out["ddim_step"] = {"shape_nhwc": [2, 2, 2, 4], "set_alpha_to_one": True, "steps": ddim_steps}

    # DDPM ancestral step (fixed_small variance): the variance noise is the generator's next draw,
    # which randn with an identically seeded generator reproduces.
    ddpm.set_timesteps(20)
    g = torch.Generator().manual_seed(SEED + 6)
    ddpm_steps = []
    for t in (500, 50, 0):
        x = torch.randn(2, 4, 2, 2, generator=g)
        eps = torch.randn(2, 4, 2, 2, generator=g)
        var_noise = torch.randn(2, 4, 2, 2, generator=torch.Generator().manual_seed(SEED + 7 + t))
        prev = ddpm.step(eps, t, x, generator=torch.Generator().manual_seed(SEED + 7 + t)).prev_sample
        ddpm_steps.append(
            {
                "timestep": t,
                "prev_timestep": t - 1000 // 20,
                "sample.nhwc": f32_list(nhwc(x)),
                "model_output.nhwc": f32_list(nhwc(eps)),
                "variance_noise.nhwc": f32_list(nhwc(var_noise)),
                "prev_sample.nhwc": f32_list(nhwc(prev)),
            }
        )
    out["ddpm_step"] = {"shape_nhwc": [2, 2, 2, 4], "variance_type": "fixed_small", "steps": ddpm_steps}

    write_json("schedulers.json", out)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    schedulers()
    tiny_unet()
    for p in sorted(OUT.iterdir()):
        print(f"{p.name}: {p.stat().st_size} bytes")


if __name__ == "__main__":
    main()
