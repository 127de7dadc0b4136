#!/usr/bin/env python3
"""Builds test/fixtures/clip-reward: a tiny random CLIP scorer exported to ONNX, with parity values.

Run by hand (never in CI) with torch, transformers >= 5, onnx and Pillow installed:

    python tools/make_clip_reward_fixture.py [--out test/fixtures/clip-reward]

The folder it writes has the layout of a CLIP-based reward model (PickScore, HPS v2) exported
to ONNX:

    logits_per_image.onnx      the same weights exported as CLIPModel's forward: output
                               logits_per_image float32 [B, B] (a plain CLIP export)
    model.onnx                 inputs pixel_values float32 [B, 3, 32, 32], input_ids int64 [B, 77];
                               output scores float32 [B] = logit_scale.exp() * cos(image, text)
    preprocessor_config.json   CLIPImageProcessor settings (shortest-edge resize, bicubic, center
                               crop, rescale, normalize)
    vocab.json, merges.txt, tokenizer_config.json
                               the CLIP BPE tokenizer of test/fixtures/tiny-sd/tokenizer
    images/*.png               test images of several sizes (upscaled, downscaled, cropped)
    expected.json              prompts, token ids, preprocessed pixels and scores computed with
                               transformers' CLIPImageProcessorPil + CLIPTokenizer and torch

Weights are random (seeded): the scores mean nothing, they only pin the numbers the TypeScript
loader must reproduce.
"""
import argparse
import json
import math
import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers import CLIPConfig, CLIPModel, CLIPTokenizer
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

ROOT = Path(__file__).resolve().parent.parent
TOKENIZER_DIR = ROOT / "test/fixtures/tiny-sd/tokenizer"
IMAGE_SIDE = 32
SEQ_LEN = 77

PROMPTS = [
    "a red cube",
    "Two  blue spheres, on a wooden TABLE!",
    "a photo of a cat's whiskers (close-up) 123",
    # More than 75 tokens: exercises truncation with eos kept last.
    " ".join(["a very long prompt about many small green things"] * 12),
]


def make_images() -> dict[str, Image.Image]:
    """Deterministic RGB test images: identity size, downscale with crop, upscale, odd sizes."""
    rng = np.random.default_rng(7)

    def pattern(w: int, h: int) -> Image.Image:
        y, x = np.mgrid[0:h, 0:w].astype(np.float64)
        r = 127.5 + 127.5 * np.sin(x / max(w, 1) * 6.3 + y / h * 2.1)
        g = 255.0 * (x + y) / (w + h - 2)
        b = 127.5 + 127.5 * np.cos((x - w / 2) * (y - h / 2) / (w * h) * 40)
        img = np.stack([r, g, b], axis=-1) + rng.normal(0, 18, (h, w, 3))
        return Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8), "RGB")

    return {
        "square-32x32.png": pattern(32, 32),
        "wide-48x40.png": pattern(48, 40),
        "small-20x28.png": pattern(20, 28),
        "tall-64x97.png": pattern(64, 97),
    }


class ClipLogits(torch.nn.Module):
    """CLIPModel's own forward, as a plain CLIP export gives it: logits_per_image [B, B]."""

    def __init__(self, clip: CLIPModel):
        super().__init__()
        self.clip = clip

    def forward(self, pixel_values: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        return self.clip(pixel_values=pixel_values, input_ids=input_ids).logits_per_image


class PickScoreStyle(torch.nn.Module):
    """score = logit_scale.exp() * <normalized image embedding, normalized text embedding>."""

    def __init__(self, clip: CLIPModel):
        super().__init__()
        self.clip = clip

    def forward(self, pixel_values: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        img = self.clip.visual_projection(self.clip.vision_model(pixel_values=pixel_values).pooler_output)
        txt = self.clip.text_projection(self.clip.text_model(input_ids=input_ids).pooler_output)
        img = img / img.norm(dim=-1, keepdim=True)
        txt = txt / txt.norm(dim=-1, keepdim=True)
        return self.clip.logit_scale.exp() * (img * txt).sum(dim=-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT / "test/fixtures/clip-reward"))
    out = Path(parser.parse_args().out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)

    for name in ("vocab.json", "merges.txt", "tokenizer_config.json"):
        shutil.copyfile(TOKENIZER_DIR / name, out / name)
    # Built from the copied vocab.json + merges.txt + tokenizer_config.json alone (no tokenizer.json),
    # the files the TypeScript loader reads.
    tokenizer = CLIPTokenizer.from_pretrained(str(out))
    assert tokenizer.model_max_length == SEQ_LEN, tokenizer.model_max_length
    vocab = json.loads((out / "vocab.json").read_text())

    config = CLIPConfig(
        text_config=dict(
            vocab_size=max(vocab.values()) + 1,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=SEQ_LEN,
            bos_token_id=vocab["<|startoftext|>"],
            eos_token_id=vocab["<|endoftext|>"],
            pad_token_id=vocab["<|endoftext|>"],
        ),
        vision_config=dict(
            image_size=IMAGE_SIDE,
            patch_size=8,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
        ),
        projection_dim=16,
        # A trained CLIP's scale (exp = 100), so scores have PickScore's magnitude.
        logit_scale_init_value=math.log(100.0),
        attn_implementation="eager",
    )
    clip = CLIPModel(config).eval()
    scorer = PickScoreStyle(clip).eval()

    processor = CLIPImageProcessorPil(
        size={"shortest_edge": IMAGE_SIDE},
        crop_size={"height": IMAGE_SIDE, "width": IMAGE_SIDE},
        resample=3,  # PIL bicubic
    )
    pre = {
        "image_processor_type": "CLIPImageProcessor",
        "do_resize": True,
        "size": {"shortest_edge": IMAGE_SIDE},
        "resample": 3,
        "do_center_crop": True,
        "crop_size": {"height": IMAGE_SIDE, "width": IMAGE_SIDE},
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": list(processor.image_mean),
        "image_std": list(processor.image_std),
        "do_convert_rgb": True,
    }
    (out / "preprocessor_config.json").write_text(json.dumps(pre, indent=2) + "\n")

    images = make_images()
    for name, img in images.items():
        img.save(out / "images" / name)
    # Re-read the PNGs, so the reference preprocesses exactly the committed bytes.
    names = sorted(images)
    loaded = [Image.open(out / "images" / n).convert("RGB") for n in names]
    pixels = processor(images=loaded, return_tensors="pt")["pixel_values"].float()
    ids = tokenizer(PROMPTS, padding="max_length", truncation=True, max_length=SEQ_LEN, return_tensors="pt")[
        "input_ids"
    ]

    # Every (image, prompt) pair, image-major.
    pairs = [(i, j) for i in range(len(names)) for j in range(len(PROMPTS))]
    pv = pixels[[i for i, _ in pairs]]
    ii = ids[[j for _, j in pairs]]
    with torch.no_grad():
        scores = scorer(pv, ii)
        full = clip(pixel_values=pixels, input_ids=ids)
    # Cross-check the wrapper against CLIPModel's own logits.
    ref = full.logits_per_image
    for k, (i, j) in enumerate(pairs):
        assert abs(float(ref[i, j]) - float(scores[k])) < 1e-4, (i, j, float(ref[i, j]), float(scores[k]))

    torch.onnx.export(
        scorer,
        (pv, ii),
        str(out / "model.onnx"),
        input_names=["pixel_values", "input_ids"],
        output_names=["scores"],
        dynamic_axes={"pixel_values": {0: "batch"}, "input_ids": {0: "batch"}, "scores": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )

    # The same weights behind CLIPModel's forward: the loader reads the diagonal of logits_per_image.
    torch.onnx.export(
        ClipLogits(clip).eval(),
        (pv, ii),
        str(out / "logits_per_image.onnx"),
        input_names=["pixel_values", "input_ids"],
        output_names=["logits_per_image"],
        dynamic_axes={
            "pixel_values": {0: "batch"},
            "input_ids": {0: "batch"},
            "logits_per_image": {0: "batch", 1: "batch"},
        },
        opset_version=17,
        dynamo=False,
    )

    expected = {
        "generator": "tools/make_clip_reward_fixture.py",
        "reference": "transformers CLIPImageProcessorPil + CLIPTokenizer, torch float32",
        "logit_scale_exp": float(clip.logit_scale.detach().exp()),
        "images": names,
        "prompts": PROMPTS,
        "input_ids": ids.tolist(),
        "pixel_values": [[round(float(v), 7) for v in p.flatten()] for p in pixels],
        "pairs": [
            {"image": i, "prompt": j, "score": float(scores[k])} for k, (i, j) in enumerate(pairs)
        ],
    }
    (out / "expected.json").write_text(json.dumps(expected) + "\n")
    size = (out / "model.onnx").stat().st_size
    print(f"wrote {out} (model.onnx {size} bytes, {len(pairs)} pairs)")


if __name__ == "__main__":
    main()
