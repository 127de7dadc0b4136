#!/usr/bin/env python3
"""Write the tiny Stable-Diffusion-format pipeline under test/fixtures/tiny-sd/ and its parity values
under test/fixtures/tiny-sd-parity/.

Run by hand (never in CI), from the repository root, in a virtualenv outside the repository:

    python3 -m venv /tmp/sd-venv
    /tmp/sd-venv/bin/pip install -r tools/requirements-sd-fixtures.txt
    /tmp/sd-venv/bin/python tools/make_sd_fixtures.py

The folder is what diffusers' `StableDiffusionPipeline.save_pretrained` writes (model_index.json,
unet/, vae/, text_encoder/, tokenizer/, scheduler/), for a random model small enough to commit: a
tiny UNet with cross-attention, a tiny AutoencoderKL, a tiny CLIP text encoder, and a CLIP BPE
tokenizer whose vocabulary and merges are learned here, in CLIP's own format, from a short corpus.
Everything is seeded; a rerun with the pinned versions rewrites the same values.

Layout convention: PyTorch is NCHW, the engine is NHWC; every image-shaped parity array is written
in NHWC (`*.nhwc`), the weights keep the libraries' own state-dict layout.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import regex
import torch
from safetensors.torch import save_file

import diffusers
import transformers
from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "test" / "fixtures" / "tiny-sd"
PARITY = ROOT / "test" / "fixtures" / "tiny-sd-parity"
SEED = 20250611
# At most this many merges; learning stops earlier once every corpus word is a single symbol.
NUM_MERGES = 600
MAX_LENGTH = 77

UNET_CONFIG = dict(
    sample_size=8,
    in_channels=4,
    out_channels=4,
    block_out_channels=[32, 32],
    layers_per_block=1,
    down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"],
    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"],
    cross_attention_dim=32,
    attention_head_dim=2,
    norm_num_groups=8,
)

VAE_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
    up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
    block_out_channels=[16, 32],
    layers_per_block=1,
    latent_channels=4,
    norm_num_groups=8,
    sample_size=16,
    scaling_factor=0.18215,
)

TEXT_CONFIG = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    max_position_embeddings=MAX_LENGTH,
    hidden_act="quick_gelu",
    layer_norm_eps=1e-5,
)

# SD1.5's scheduler/scheduler_config.json.
SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    skip_prk_steps=True,
    set_alpha_to_one=False,
    steps_offset=1,
)

# The corpus the tokenizer's merges are learned from: prompts of the kind the pipeline sees.
CORPUS = """
a photo of a red circle left of a blue square
a green triangle above a yellow star on a white background
two cats sitting on a wooden table, oil painting, highly detailed
an astronaut riding a horse on the moon, digital art, trending on artstation
a cozy cabin in the snowy mountains at sunset, warm light, 4k photograph
portrait of an old man with a beard, dramatic lighting, black and white
a bowl of fruit: apples, oranges and bananas; still life in the style of cezanne
the city skyline at night with neon lights reflected in the rain
a small robot watering flowers in a garden, cute, pixar style render
a dog wearing sunglasses at the beach, summer, bright colors
a red car parked next to a blue house under a cloudy sky
three purple balloons floating over a green field
a watercolor painting of a lighthouse by the sea
an elephant standing in the savanna during the golden hour
a steaming cup of coffee on a desk beside a laptop and a notebook
a futuristic city with flying cars and tall glass towers
a close-up photo of a butterfly on a sunflower, macro lens
a knight in shining armor fighting a dragon in a dark forest
a vintage poster of a train crossing a bridge over a river
a plate of sushi and chopsticks on a black stone table
"""

# Tricky prompts whose ids transformers computes here and the engine must reproduce.
PROMPTS = [
    "a photo of a red circle left of a blue square",
    "",
    "   A  Photo\tof\nTWO   cats!!!  ",
    "it's a dog's life; they're here, we've been, I'm sure, you'll see, he'd know",
    "Numbers: 1234, 3.14159 and 2nd/3rd place -- 100%",
    "punctuation... (brackets) [square] {curly} <angle> \"quotes\" 'single' #hash @at $5 ^_^ ~",
    "caf\u00e9 cafe\u0301 na\u00efve r\u00e9sum\u00e9 \u00fcber stra\u00dfe \u0130stanbul",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8 and \u4e2d\u6587 mixed with \u0420\u0443\u0441\u0441\u043a\u0438\u0439 \u03b5\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac",
    "emoji \U0001f600\U0001f680 \U0001f469\u200d\U0001f4bb flags \U0001f1ef\U0001f1f5 hearts \u2764\ufe0f\u2764",
    "zero\u200bwidth and\u00a0non-breaking\u3000spaces",
    "<|startoftext|>already has specials<|endoftext|> inside",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    " ".join(["a red circle left of a blue square"] * 12),
    "word " * 80,
]

# Prompts whose text-encoder outputs are parity values (ids from the tokenizer above).
TEXT_PROMPTS = [PROMPTS[0], PROMPTS[1], PROMPTS[12]]


def versions() -> dict[str, str]:
    import safetensors
    import tokenizers

    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "safetensors": safetensors.__version__,
        "numpy": np.__version__,
    }


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map, as CLIP's tokenizer defines it."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


PATTERN = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE,
)


def learn_merges(corpus: str, num_merges: int) -> list[tuple[str, str]]:
    """Byte-level BPE training in CLIP's convention: the last symbol of a word carries '</w>'.
    Ties between equally frequent pairs go to the lexicographically smallest, so it is deterministic."""
    byte_map = bytes_to_unicode()
    words = collections.Counter()
    for piece in PATTERN.findall(" ".join(corpus.split()).lower()):
        chars = [byte_map[b] for b in piece.encode("utf-8")]
        chars[-1] += "</w>"
        words[tuple(chars)] += 1
    merges: list[tuple[str, str]] = []
    for _ in range(num_merges):
        pairs = collections.Counter()
        for word, freq in words.items():
            for a, b in zip(word, word[1:]):
                pairs[(a, b)] += freq
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        merged = collections.Counter()
        for word, freq in words.items():
            out, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] += freq
        words = merged
    return merges


def write_tokenizer_files(folder: Path) -> int:
    """vocab.json and merges.txt in CLIP's layout: 256 byte symbols, the same with '</w>', one entry
    per merge, then <|startoftext|> and <|endoftext|>."""
    symbols = list(bytes_to_unicode().values())
    vocab_list = symbols + [s + "</w>" for s in symbols]
    merges = learn_merges(CORPUS, NUM_MERGES)
    seen = set(vocab_list)
    for a, b in merges:
        if a + b not in seen:
            seen.add(a + b)
            vocab_list.append(a + b)
    vocab_list += ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab_list)}, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    return len(merges)


def randomize(module: torch.nn.Module, seed: int, std_matrix: float = 0.06) -> None:
    """Redraws every parameter from a seeded normal (norm scales around 1), so a wrong wiring (a
    swapped bias, an ignored norm scale) cannot hide behind default initial values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            is_norm_scale = p.ndim == 1 and "norm" in name and name.endswith(".weight")
            std = std_matrix if p.ndim > 1 else 0.1
            mean = 1.0 if is_norm_scale else 0.0
            p.copy_(torch.randn(p.shape, generator=g) * std + mean)


def nhwc(t: torch.Tensor) -> torch.Tensor:
    return t.permute(0, 2, 3, 1).contiguous()


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    tmp = path.with_suffix(".tmp")
    save_file({k: v.detach().contiguous().float() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def write_json(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, ensure_ascii=False, indent=1) + "\n")
    os.replace(tmp, path)


def build_pipeline(tok_dir: Path) -> StableDiffusionPipeline:
    tokenizer = CLIPTokenizer.from_pretrained(str(tok_dir), model_max_length=MAX_LENGTH)
    special = tokenizer.convert_tokens_to_ids(["<|startoftext|>", "<|endoftext|>"])
    text_config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        bos_token_id=special[0],
        eos_token_id=special[1],
        pad_token_id=special[1],
        **TEXT_CONFIG,
    )
    torch.manual_seed(SEED)
    text_encoder = CLIPTextModel(text_config).eval()
    randomize(text_encoder, SEED + 1, std_matrix=0.1)
    unet = UNet2DConditionModel(**UNET_CONFIG).eval()
    randomize(unet, SEED + 2)
    vae = AutoencoderKL(**VAE_CONFIG).eval()
    randomize(vae, SEED + 3, std_matrix=0.08)
    scheduler = PNDMScheduler(**SCHEDULER_CONFIG)
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def tokenizer_parity(tokenizer) -> None:
    cases = []
    for prompt in PROMPTS:
        enc = tokenizer(prompt, padding="max_length", max_length=tokenizer.model_max_length, truncation=True)
        raw = tokenizer(prompt, add_special_tokens=False, truncation=False)["input_ids"]
        cases.append(
            {
                "prompt": prompt,
                "input_ids": list(enc["input_ids"]),
                "token_ids": list(raw),
                "tokens": tokenizer.convert_ids_to_tokens(raw),
                "decoded": tokenizer.decode(enc["input_ids"], skip_special_tokens=True),
            }
        )
    write_json(
        PARITY / "tokenizer.json",
        {
            "about": "CLIPTokenizer(tiny-sd/tokenizer) on tricky prompts: input_ids as the SD pipeline calls it "
            "(padding='max_length', truncation=True), token_ids without specials nor truncation",
            "tokenizer_class": type(tokenizer).__name__,
            "model_max_length": tokenizer.model_max_length,
            "vocab_size": len(tokenizer),
            "versions": versions(),
            "cases": cases,
        },
    )


def text_encoder_parity(pipe: StableDiffusionPipeline) -> torch.Tensor:
    ids = pipe.tokenizer(TEXT_PROMPTS, padding="max_length", max_length=MAX_LENGTH, truncation=True, return_tensors="pt")
    with torch.no_grad():
        states = pipe.text_encoder(ids.input_ids).last_hidden_state
    save_tensors(
        PARITY / "text-encoder.safetensors",
        {"input.ids": ids.input_ids, "output.last_hidden_state": states},
        {
            "about": "CLIPTextModel(tiny-sd/text_encoder): last_hidden_state [B, 77, 32] of input.ids (int ids stored as F32)",
            "prompts": json.dumps(TEXT_PROMPTS),
            "versions": json.dumps(versions()),
        },
    )
    return states


def vae_parity(vae: AutoencoderKL) -> None:
    g = torch.Generator().manual_seed(SEED + 10)
    images = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    with torch.no_grad():
        posterior = vae.encode(images).latent_dist
        noise = torch.randn(posterior.mean.shape, generator=g)
        sample = posterior.mean + posterior.std * noise
        latents = sample * vae.config.scaling_factor
        reconstruction = vae(images, sample_posterior=False).sample
        z = torch.randn(2, 4, 8, 8, generator=g)
        decoded = vae.decode(z).sample
    save_tensors(
        PARITY / "vae.safetensors",
        {
            "input.images.nhwc": nhwc(images),
            "output.mean.nhwc": nhwc(posterior.mean),
            "output.logvar.nhwc": nhwc(posterior.logvar),
            "input.noise.nhwc": nhwc(noise),
            "output.latents.nhwc": nhwc(latents),
            "output.reconstruction.nhwc": nhwc(reconstruction),
            "input.z.nhwc": nhwc(z),
            "output.decoded.nhwc": nhwc(decoded),
        },
        {
            "about": "AutoencoderKL(tiny-sd/vae): encode -> posterior mean/logvar; latents = (mean + std * noise) * "
            "scaling_factor; reconstruction = forward(sample_posterior=False); decoded = decode(z) (unscaled z)",
            "versions": json.dumps(versions()),
        },
    )


def unet_parity(unet: UNet2DConditionModel, states: torch.Tensor) -> None:
    g = torch.Generator().manual_seed(SEED + 20)
    latents = torch.randn(states.shape[0], 4, 8, 8, generator=g)
    timesteps = torch.tensor([981, 500, 3][: states.shape[0]], dtype=torch.int64)
    with torch.no_grad():
        eps = unet(latents, timesteps, encoder_hidden_states=states).sample
    save_tensors(
        PARITY / "unet.safetensors",
        {"input.latents.nhwc": nhwc(latents), "input.timesteps": timesteps.float(), "output.eps.nhwc": nhwc(eps)},
        {
            "about": "UNet2DConditionModel(tiny-sd/unet) on the text encoder's states of text-encoder.safetensors",
            "versions": json.dumps(versions()),
        },
    )


def main() -> None:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        tok_dir = Path(tmp) / "tok"
        num_merges = write_tokenizer_files(tok_dir)
        pipe = build_pipeline(tok_dir)
        if OUT.exists():
            shutil.rmtree(OUT)
        pipe.save_pretrained(str(OUT), safe_serialization=True)
        # transformers 5 saves only tokenizer.json; Stable Diffusion folders as published carry the
        # vocab.json + merges.txt pair (which the engine reads first), so the fixture has both.
        for name in ("vocab.json", "merges.txt"):
            shutil.copyfile(tok_dir / name, OUT / "tokenizer" / name)

    # Everything below reads the folder back, as a user's code would.
    pipe = StableDiffusionPipeline.from_pretrained(str(OUT), safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    PARITY.mkdir(parents=True, exist_ok=True)
    tokenizer_parity(pipe.tokenizer)
    states = text_encoder_parity(pipe)
    vae_parity(pipe.vae)
    unet_parity(pipe.unet, states)
    # The folder is a working pipeline: two denoising steps end to end.
    image = pipe("a red circle", num_inference_steps=2, height=16, width=16, output_type="np",
                 generator=torch.Generator().manual_seed(SEED)).images
    assert image.shape == (1, 16, 16, 3) and np.isfinite(image).all()

    write_json(
        PARITY / "about.json",
        {
            "seed": SEED,
            "num_merges": num_merges,
            "unet_parameters": sum(p.numel() for p in pipe.unet.parameters()),
            "vae_parameters": sum(p.numel() for p in pipe.vae.parameters()),
            "text_encoder_parameters": sum(p.numel() for p in pipe.text_encoder.parameters()),
            "vocab_size": len(pipe.tokenizer),
            "versions": versions(),
        },
    )
    for folder in (OUT, PARITY):
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                print(f"{p.relative_to(ROOT)}: {p.stat().st_size} bytes")


if __name__ == "__main__":
    main()
