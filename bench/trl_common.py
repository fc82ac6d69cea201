"""What bench/trl_sft_bench.py and bench/trl_dpo_bench.py share: their command line, the
training arguments both set alike (those of Flywheel's benchmark recipes), a reader of Flywheel's
token cache (trainer/data/token_store.h), so that TRL trains on exactly the token ids and trained
positions Flywheel did, and a step timer.

The file: "FWTOKENS", a little-endian u64 header length, the JSON header {"examples",
"sequences", "tokens", ...}, then example offsets (int64, examples + 1, into the sequences),
sequence offsets (int64, sequences + 1, into the tokens), ids (int32) and the loss mask (uint8).
"""

import argparse
import json
import statistics
import struct
import time


def parse_args(name):
    """The command line of the TRL benchmark scripts."""
    p = argparse.ArgumentParser()
    p.add_argument("--cache", required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--beta", type=float, default=0.1)
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--out", default=f"/tmp/{name}")
    return p.parse_args()


def training_arguments(a):
    """TrainingArguments as Flywheel's benchmark recipes train: micro-batch a.batch, no
    accumulation, AdamW at a.lr (linear decay, no weight decay) with clipping at 1.0, float32 on
    the CPU, no checkpoints or reports."""
    return dict(
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
        bf16=False,
        seed=1,
    )


def read_token_cache(path):
    """(example_offsets, sequences): each sequence as (ids, mask) lists, mask 1 = trained."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"FWTOKENS":
        raise SystemExit(f"{path}: not a Flywheel token cache")
    (header_size,) = struct.unpack_from("<Q", data, 8)
    header = json.loads(data[16 : 16 + header_size])
    examples, sequences, tokens = header["examples"], header["sequences"], header["tokens"]
    at = 16 + header_size
    example_offsets = struct.unpack_from(f"<{examples + 1}q", data, at)
    at += 8 * (examples + 1)
    offsets = struct.unpack_from(f"<{sequences + 1}q", data, at)
    at += 8 * (sequences + 1)
    ids = struct.unpack_from(f"<{tokens}i", data, at)
    mask = data[at + 4 * tokens : at + 5 * tokens]
    seqs = []
    for s in range(sequences):
        b, e = offsets[s], offsets[s + 1]
        seqs.append((list(ids[b:e]), list(mask[b:e])))
    return list(example_offsets), seqs


def step_timer():
    """A transformers TrainerCallback recording each optimizer step's seconds, and that list."""
    from transformers import TrainerCallback

    seconds = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            seconds.append(time.perf_counter() - self.start)

    return StepTimer(), seconds


def report(a, trainer, result, seconds, tokens_per_step):
    """Prints the run's JSON line: median tokens/s of the timed steps (all but the first), the
    first step's loss and TRL's own runtime figure."""
    timed = seconds[1:] or seconds
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
