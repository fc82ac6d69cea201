"""TRL's SFTTrainer on exactly the tokens a Flywheel run trained on, for bench/run_vs_trl.sh.

Reads a Flywheel token cache file (trainer/data/token_store.h: "FWTOKENS", header, offsets,
int32 ids, uint8 loss mask), so both sides see the same token ids and the same trained
positions; builds transformers' LlamaForCausalLM from the same config.json (its own random
init: the numbers timed do not depend on the weights); trains N steps of micro-batch B with
AdamW at the same learning rate and clipping, and prints one JSON line: the median tokens/s of
the timed steps (all but the first) and the first-step loss. Peak memory is measured from
outside (the driver's wait4), as for Flywheel.

    python bench/trl_sft_bench.py --cache FILE.tokens --config config.json --steps 4 \
        --batch 2 --threads 2 [--gradient-checkpointing]
"""

import argparse
import json
import struct
import statistics
import time

import torch


def read_token_cache(path):
    """The rows of a Flywheel token cache as (ids, labels) lists; labels -100 where untrained."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"FWTOKENS":
        raise SystemExit(f"{path}: not a Flywheel token cache")
    (header_size,) = struct.unpack_from("<Q", data, 8)
    header = json.loads(data[16 : 16 + header_size])
    examples, sequences, tokens = header["examples"], header["sequences"], header["tokens"]
    at = 16 + header_size
    at += 8 * (examples + 1)  # example offsets: one sequence per SFT example
    offsets = struct.unpack_from(f"<{sequences + 1}q", data, at)
    at += 8 * (sequences + 1)
    ids = struct.unpack_from(f"<{tokens}i", data, at)
    mask = data[at + 4 * tokens : at + 5 * tokens]
    rows = []
    for s in range(sequences):
        b, e = offsets[s], offsets[s + 1]
        row = list(ids[b:e])
        rows.append((row, [t if mask[b + i] else -100 for i, t in enumerate(row)]))
    return rows


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cache", required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--out", default="/tmp/trl-sft-bench")
    a = p.parse_args()
    torch.set_num_threads(a.threads)

    from datasets import Dataset
    from tokenizers import Tokenizer, models
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    rows = read_token_cache(a.cache)
    dataset = Dataset.from_dict({"input_ids": [r[0] for r in rows], "labels": [r[1] for r in rows]})
    config = LlamaConfig.from_json_file(a.config)
    torch.manual_seed(1)
    model = LlamaForCausalLM(config)
    # The data is tokenized already; the trainer only needs a pad token (id 0, as Flywheel pads).
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel({"<pad>": 0, "<unk>": 1}, unk_token="<unk>")),
        pad_token="<pad>",
    )

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.seconds, self.start = [], 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.seconds.append(time.perf_counter() - self.start)

    timer = StepTimer()
    args = SFTConfig(
        output_dir=a.out,
        max_steps=a.steps,
        per_device_train_batch_size=a.batch,
        gradient_accumulation_steps=1,
        learning_rate=a.lr,
        lr_scheduler_type="linear",
        max_grad_norm=1.0,
        weight_decay=0.0,
        adam_epsilon=1e-8,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        dataloader_num_workers=0,
        gradient_checkpointing=a.gradient_checkpointing,
        max_length=None,
        bf16=False,
        seed=1,
    )
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=dataset, processing_class=tokenizer, callbacks=[timer]
    )
    result = trainer.train()
    # Tokens per step as the batches held them (rows are drawn in the sampler's order).
    lengths = sorted(len(r[0]) for r in rows)
    tokens_per_step = a.batch * statistics.mean(lengths)
    timed = timer.seconds[1:] or timer.seconds
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    print(
        json.dumps(
            {
                "impl": "trl",
                "steps": a.steps,
                "tokens_per_sec": tokens_per_step / statistics.median(timed),
                "first_loss": losses[0] if losses else None,
                "train_runtime": result.metrics.get("train_runtime"),
            }
        )
    )


if __name__ == "__main__":
    main()
