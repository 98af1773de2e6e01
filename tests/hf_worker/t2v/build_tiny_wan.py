"""Build a tiny, randomly initialised ``WanPipeline`` (the default model's class) and save it.

    .venv-t2v/bin/python tests/hf_worker/t2v/build_tiny_wan.py OUT_DIR

Offline and deterministic (fixed seed): every component is made from a config, the tokenizer from
a small in-memory vocabulary. The result loads with ``DiffusionPipeline.from_pretrained(OUT_DIR)``
exactly like the real ``Wan-AI/Wan2.1-T2V-1.3B-Diffusers`` and generates 9 frames at 64x64 on CPU
in well under a second. Runs under the text-to-video venv (torch, diffusers, transformers).
"""

from __future__ import annotations

import sys
from pathlib import Path

WORDS = ["a", "an", "the", "red", "green", "blue", "ball", "cat", "dog", "runs", "on", "in", "beach", "sky",
         "sunset", "city", "night", "rain", "over"]
MAX_TOKENS = 32  # tokenizer.model_max_length (WanPipeline pads prompts to its own max_sequence_length)


def build_tokenizer() -> object:
    """A word-level tokenizer with UMT5's special ids (pad 0, eos 1, unk 2)."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
    tok = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   model_max_length=MAX_TOKENS)


def build(out: Path) -> Path:
    import torch
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(0)
    tokenizer = build_tokenizer()
    text_encoder = UMT5EncoderModel(UMT5Config(
        vocab_size=len(WORDS) + 3, d_model=32, d_kv=8, d_ff=32, num_layers=2, num_heads=4,
        relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    ))
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
        text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=32,
    )
    # The scheduler the real Wan2.1-T2V-1.3B-Diffusers repo ships (scheduler/scheduler_config.json).
    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0,
                                        num_train_timesteps=1000)
    pipe = WanPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer,
                       scheduler=scheduler)
    out.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(out)
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(build(Path(sys.argv[1])))
