"""Loads a diffusers folder exported by the pipeline with diffusers itself and checks it.

A trained stage of a latent model writes `<stage prefix>/diffusers/` (see docs/latent-models.md);
copy it to a local folder and run

    python tools/check_diffusers_export.py <folder> [--expect-unet <file.safetensors>]

It loads the folder with `StableDiffusionPipeline.from_pretrained`, compares every UNet tensor with
`--expect-unet` when given (e.g. the stage's `unet/diffusion_pytorch_model.safetensors`), runs the
UNet once on a fixed input and generates one image with 2 steps, and prints what it checked. Run by
hand in a virtualenv from tools/requirements-sd-fixtures.txt; never in CI.
"""

import argparse
import sys

import torch
from diffusers import StableDiffusionPipeline
from safetensors.torch import load_file


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("--expect-unet")
    args = parser.parse_args()

    pipe = StableDiffusionPipeline.from_pretrained(args.folder, safety_checker=None)
    print(f"loaded {args.folder}: unet {sum(p.numel() for p in pipe.unet.parameters())} params, "
          f"vae {sum(p.numel() for p in pipe.vae.parameters())}, "
          f"text encoder {sum(p.numel() for p in pipe.text_encoder.parameters())}")

    if args.expect_unet:
        want = load_file(args.expect_unet)
        have = pipe.unet.state_dict()
        if set(want) != set(have):
            print(f"FAIL: UNet names differ: {sorted(set(want) ^ set(have))[:5]}")
            return 1
        worst = max(float((have[k].float() - want[k].float()).abs().max()) for k in want)
        if worst != 0.0:
            print(f"FAIL: UNet weights differ from {args.expect_unet} by up to {worst}")
            return 1
        print(f"UNet: all {len(want)} tensors equal {args.expect_unet}")

    c = pipe.unet.config
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, c.in_channels, c.sample_size, c.sample_size, generator=generator)
    ids = pipe.tokenizer(["a red ball"], padding="max_length", max_length=pipe.tokenizer.model_max_length,
                         truncation=True, return_tensors="pt").input_ids
    with torch.no_grad():
        ctx = pipe.text_encoder(ids)[0]
        eps = pipe.unet(x, 500, encoder_hidden_states=ctx).sample
    if not torch.isfinite(eps).all():
        print("FAIL: the UNet's prediction is not finite")
        return 1
    print(f"UNet forward: shape {tuple(eps.shape)}, std {float(eps.std()):.4f}")
    size = c.sample_size * pipe.vae_scale_factor
    image = pipe("a red ball", num_inference_steps=2, height=size, width=size, generator=generator,
                 output_type="np").images[0]
    print(f"pipeline: one {image.shape[1]}x{image.shape[0]} image, values in [{image.min():.3f}, {image.max():.3f}]")
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
