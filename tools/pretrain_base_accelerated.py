"""Pretrains the built-in world's base model with PyTorch (a GPU when there is one) on a corpus written
by tools/export-pretraining-corpus.ts, and writes model bundles the engine loads unchanged.

The engine's UNet is diffusers' UNet2DConditionModel and its text encoder transformers'
CLIPTextModel (same parameter names and numerics), so the weights trained here are the engine's
weights: the bundle holds them under `unet/` and `text_encoder/` with the corpus' bundle metadata
(the configs), exactly as engine/io/model-bundle.ts writes a bundle. The objective is the engine's
SFT objective: epsilon-prediction MSE on the scaled-linear DDPM schedule, uniform timesteps, prompt
dropout to the empty prompt (for classifier-free guidance), AdamW, gradient clipping, linear warmup
then cosine decay, and an EMA of every weight with the engine's decay warmup
(engine/training/ema.ts: decay_n = min(decay, (1 + n) / (10 + n))), which is what the bundles hold.

    python tools/pretrain_base_accelerated.py --corpus /tmp/corpus --out /tmp/base-gpu \
        --steps 8000 --batch 512 --lr 1e-3 --save-at 1000,3000,8000 [--caption-noise 0.3] \
        [--freeze-text] [--max-seconds 400] [--seed 0]

Writes base-step<N>.safetensors for each --save-at step (and the last step), log.jsonl (loss per
100 updates) and summary.json (options, versions, device, wall time, SHA-256 of each bundle).
Run by hand; never in CI. Requirements: tools/requirements-pretrain-accelerated.txt.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import math
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from diffusers import UNet2DConditionModel
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel

BUNDLE_FORMAT = "dro-pipeline/model@1"
NUM_TRAIN_TIMESTEPS = 1000


def read_u8(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    data = np.frombuffer(gzip.decompress(path.read_bytes()), dtype=np.uint8)
    if data.size != int(np.prod(shape)):
        raise SystemExit(f"{path}: {data.size} bytes, expected {shape}")
    return data.reshape(shape)


def unet_from_config(cfg: dict) -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=cfg["sample_size"],
        in_channels=cfg["in_channels"],
        out_channels=cfg["out_channels"],
        down_block_types=tuple(cfg["down_block_types"]),
        up_block_types=tuple(cfg["up_block_types"]),
        block_out_channels=tuple(cfg["block_out_channels"]),
        layers_per_block=cfg["layers_per_block"],
        cross_attention_dim=cfg["cross_attention_dim"],
        attention_head_dim=cfg["attention_head_dim"],
        norm_num_groups=cfg["norm_num_groups"],
    )


def text_from_config(cfg: dict, tokenizer: dict) -> CLIPTextModel:
    # Special ids follow the word tokenizer: bos 0, eos (also padding) 1.
    return CLIPTextModel(
        CLIPTextConfig(
            vocab_size=cfg["vocab_size"],
            hidden_size=cfg["hidden_size"],
            intermediate_size=cfg["intermediate_size"],
            num_hidden_layers=cfg["num_hidden_layers"],
            num_attention_heads=cfg["num_attention_heads"],
            max_position_embeddings=cfg["max_position_embeddings"],
            layer_norm_eps=cfg.get("layer_norm_eps", 1e-5),
            hidden_act=cfg.get("hidden_act", "quick_gelu"),
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    )


def learning_rate_at(lr: float, warmup: int, update: int, total: int) -> float:
    """The engine's schedule (engine/training/lr-schedule.ts): linear warmup, then cosine."""
    if warmup > 0 and update <= warmup:
        return lr * update / warmup
    span = max(1, total - warmup)
    progress = min(1.0, max(0.0, (update - warmup - 1) / span))
    return lr * 0.5 * (1 + math.cos(math.pi * progress))


def bundle_tensors(unet: torch.nn.Module, text: torch.nn.Module) -> dict[str, torch.Tensor]:
    out = {f"unet/{k}": v.detach().float().cpu().contiguous() for k, v in unet.state_dict().items()}
    for k, v in text.state_dict().items():
        if k.endswith("position_ids"):
            continue
        key = k if k.startswith("text_model.") else f"text_model.{k}"
        out[f"text_encoder/{key}"] = v.detach().float().cpu().contiguous()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=8000)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--max-grad-norm", type=float, default=1.0)
    ap.add_argument("--prompt-dropout", type=float, default=0.1)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--caption-noise", type=float, default=None, help="at most the corpus' own")
    ap.add_argument("--freeze-text", action="store_true")
    ap.add_argument("--save-at", default="")
    ap.add_argument("--max-seconds", type=float, default=0, help="stop early (saving) after this long")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    corpus = Path(args.corpus)
    meta = json.loads((corpus / "corpus.json").read_text())
    n, h, w, c, L = meta["size"], meta["height"], meta["width"], meta["channels"], meta["tokenLength"]
    images = read_u8(corpus / "images.u8.gz", (n, h, w, c))
    tokens = read_u8(corpus / "tokens.u8.gz", (n, L))
    exact = read_u8(corpus / "exact-tokens.u8.gz", (n, L))
    kinds = read_u8(corpus / "kinds.u8.gz", (n,))
    noise = meta["corpus"]["captionNoise"]
    rng = np.random.default_rng(args.seed)
    if args.caption_noise is not None:
        if args.caption_noise > noise + 1e-9:
            raise SystemExit(f"--caption-noise {args.caption_noise} exceeds the corpus' {noise}")
        # Keep a noisy caption with probability target/corpus, else use what the scene shows.
        keep = rng.random(n) < (args.caption_noise / noise if noise > 0 else 0)
        tokens = np.where(((kinds == 0) | keep)[:, None], tokens, exact)
        noise = args.caption_noise
    empty = np.array(meta["emptyPromptTokens"], dtype=np.int64)

    bundle_meta = meta["bundleMetadata"]
    if bundle_meta.get("format") != BUNDLE_FORMAT:
        raise SystemExit(f"corpus.json bundleMetadata.format is {bundle_meta.get('format')!r}")
    unet_cfg = json.loads(bundle_meta["unet_config"])
    text_cfg = json.loads(bundle_meta["text_encoder_config"])
    if unet_cfg["sample_size"] != h:
        raise SystemExit(f"unet sample_size {unet_cfg['sample_size']} != corpus resolution {h}")

    torch.manual_seed(args.seed)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = False  # float32 weights the engine reproduces
    torch.backends.cudnn.allow_tf32 = False
    unet = unet_from_config(unet_cfg).to(dev).train()
    text = text_from_config(text_cfg, json.loads(bundle_meta["tokenizer"])).to(dev)
    text.train(not args.freeze_text)
    params = list(unet.parameters()) + ([] if args.freeze_text else list(text.parameters()))
    for p in text.parameters():
        p.requires_grad_(not args.freeze_text)
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay, betas=(0.9, 0.999), eps=1e-8)
    ema_unet = unet_from_config(unet_cfg).to(dev).eval()
    ema_unet.load_state_dict(unet.state_dict())
    ema_text = text_from_config(text_cfg, {}).to(dev).eval()
    ema_text.load_state_dict(text.state_dict())
    for p in list(ema_unet.parameters()) + list(ema_text.parameters()):
        p.requires_grad_(False)

    betas = torch.linspace(0.00085**0.5, 0.012**0.5, NUM_TRAIN_TIMESTEPS, dtype=torch.float32) ** 2
    alphas_cumprod = torch.cumprod(1.0 - betas.double(), 0).float().to(dev)

    images_t = torch.from_numpy(images.copy()).to(dev)
    tokens_t = torch.from_numpy(tokens.astype(np.int64)).to(dev)
    empty_t = torch.from_numpy(empty).to(dev)
    gen = torch.Generator(device=dev).manual_seed(args.seed)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_at = sorted({int(s) for s in args.save_at.split(",") if s} | {args.steps})
    log = (out / "log.jsonl").open("w")
    saved: list[dict] = []

    def save(step: int) -> None:
        path = out / f"base-step{step}.safetensors"
        tensors = bundle_tensors(ema_unet, ema_text)
        save_file(tensors, str(path) + ".tmp", metadata=bundle_meta)
        os.replace(str(path) + ".tmp", path)
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        saved.append({"step": step, "file": path.name, "sha256": sha, "bytes": path.stat().st_size})
        print(f"saved {path.name} sha256 {sha}", flush=True)

    t0 = time.time()
    loss_sum, loss_n, step = 0.0, 0, 0
    ema_params = list(ema_unet.parameters()) + list(ema_text.parameters())
    live_params = list(unet.parameters()) + list(text.parameters())
    while step < args.steps:
        step += 1
        for g in opt.param_groups:
            g["lr"] = learning_rate_at(args.lr, args.warmup, step, args.steps)
        idx = torch.randint(0, n, (args.batch,), device=dev, generator=gen)
        x0 = images_t[idx].permute(0, 3, 1, 2).float() / 127.5 - 1.0
        ids = tokens_t[idx]
        drop = torch.rand(args.batch, device=dev, generator=gen) < args.prompt_dropout
        ids = torch.where(drop[:, None], empty_t[None, :], ids)
        t = torch.randint(0, NUM_TRAIN_TIMESTEPS, (args.batch,), device=dev, generator=gen)
        eps = torch.randn(x0.shape, device=dev, generator=gen)
        ac = alphas_cumprod[t].view(-1, 1, 1, 1)
        xt = ac.sqrt() * x0 + (1 - ac).sqrt() * eps
        if args.freeze_text:
            with torch.no_grad():
                ctx = text(input_ids=ids).last_hidden_state
        else:
            ctx = text(input_ids=ids).last_hidden_state
        pred = unet(xt, t, encoder_hidden_states=ctx).sample
        loss = torch.nn.functional.mse_loss(pred, eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, args.max_grad_norm)
        opt.step()
        with torch.no_grad():
            decay = min(args.ema, (1 + step) / (10 + step))
            torch._foreach_lerp_(ema_params, live_params, 1 - decay)
        loss_sum += float(loss.detach()) if step % 20 == 0 else 0.0
        loss_n += 1 if step % 20 == 0 else 0
        if step % 100 == 0 or step == args.steps:
            row = {
                "step": step,
                "loss": round(loss_sum / max(1, loss_n), 5),
                "lr": opt.param_groups[0]["lr"],
                "seconds": round(time.time() - t0, 1),
            }
            log.write(json.dumps(row) + "\n")
            log.flush()
            print(json.dumps(row), flush=True)
            loss_sum, loss_n = 0.0, 0
        out_of_time = args.max_seconds > 0 and time.time() - t0 > args.max_seconds
        if step in save_at or out_of_time:
            save(step)
        if out_of_time:
            print(f"stopped at step {step}: --max-seconds {args.max_seconds} reached", flush=True)
            break

    summary = {
        "options": vars(args),
        "captionNoise": noise,
        "corpus": meta["corpus"],
        "stepsDone": step,
        "imagesSeen": step * args.batch,
        "seconds": round(time.time() - t0, 1),
        "device": torch.cuda.get_device_name(0) if dev.type == "cuda" else platform.processor() or "cpu",
        "versions": {
            "torch": torch.__version__,
            "diffusers": __import__("diffusers").__version__,
            "transformers": __import__("transformers").__version__,
        },
        "bundles": saved,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
