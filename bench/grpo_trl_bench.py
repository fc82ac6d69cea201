"""TRL's GRPOTrainer on the prompts of recipes/stories260K/rlvr_constraint.yaml, for
bench/run_grpo_vs_trl.sh: the peer of one Flywheel GRPO iteration.

Same model (tests/data/stories260K loaded by transformers' LlamaForCausalLM, float32, sdpa, CPU),
same prompt rows, same rule as Flywheel's ifeval verifier for keywords:existence (reward 1 when
every keyword of the row's ground_truth occurs in the response, case-insensitively, else 0),
same shape of an iteration: 16 prompts x 8 generations of at most 48 new tokens at temperature 1
(top-p 1, no top-k), generated with transformers' generate() (no vLLM), stopping at EOS;
beta 0.01 against the frozen initial model, clip 0.2, num_iterations 1, token-mean loss over
each minibatch ("dapo", as Flywheel's token_mean), advantages scaled by the group's std, AdamW
at a constant 2e-3 with clipping at 1.0, and two optimizer steps of 64 completions per
generation (per_device_train_batch_size 64, gradient_accumulation_steps 1,
steps_per_generation 2: Flywheel's minibatches 2 with micro-batch 64).

Tokens: the prompts are encoded once with SentencePiece (spm_encode on the model's
tokenizer.model, the library Flywheel links; BOS first, as Flywheel's add_bos) and handed to TRL
as text in a word-level vocabulary of their ids ("<17>" is id 17, as bench/trl_dpo_bench.py
does), so TRL's tokenization gives back the same ids (checked). The reward function decodes
the completion ids with the model's SentencePiece pieces (spm_export_vocab).

One TRL iteration = 2 optimizer steps; the first iteration is warm-up. Each iteration's wall
time runs from the end of the previous iteration's last step to the end of its own (logging and
everything else of TRL's loop included). Split: rollout = generate(); reward = the reward
function; logps = the rest of TRL's scoring pass (mostly the old policy's and the reference's
log-prob forwards over all 128 sequences); train = the rest (two forward+backward+AdamW steps).
Prints one JSON line with the medians over the timed iterations.

    .venv/bin/python bench/grpo_trl_bench.py --model tests/data/stories260K \
        --prompts recipes/stories260K/data/constraint_train.jsonl --iterations 5 --threads 2
"""

import argparse
import json
import os
import statistics
import subprocess
import time

import torch


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--prompts", required=True)
    p.add_argument("--iterations", type=int, default=5, help="timed, after one warm-up")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    p.add_argument("--prompts-per-iteration", type=int, default=16)
    p.add_argument("--group-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--beta", type=float, default=0.01)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--minibatches", type=int, default=2)
    p.add_argument("--out", default="/tmp/trl-grpo-bench")
    return p.parse_args()


def spm_pieces(model):
    """Piece strings by id, from spm_export_vocab."""
    out = subprocess.run(["spm_export_vocab", f"--model={model}"], check=True,
                         capture_output=True, text=True).stdout
    return [line.split("\t")[0] for line in out.splitlines()]


def encode(model, texts):
    """Each text's ids (no BOS), from spm_encode."""
    for t in texts:
        if "\n" in t:
            raise SystemExit("a prompt holds a newline; spm_encode reads one per line")
    out = subprocess.run(["spm_encode", f"--model={model}", "--output_format=id"], check=True,
                         capture_output=True, text=True, input="\n".join(texts) + "\n").stdout
    rows = [[int(x) for x in line.split()] for line in out.splitlines()]
    if len(rows) != len(texts):
        raise SystemExit("spm_encode gave back a different number of lines")
    return rows


def decoder(pieces):
    """ids -> text as SentencePiece decodes (byte-fallback pieces, '▁' as space, no controls)."""

    def decode(ids):
        out = bytearray()
        for i in ids:
            p = pieces[i]
            if p in ("<unk>", "<s>", "</s>"):
                continue
            if len(p) == 6 and p.startswith("<0x") and p.endswith(">"):
                out.append(int(p[3:5], 16))
            else:
                out += p.replace("\u2581", " ").encode()
        return out.decode("utf-8", errors="replace").lstrip(" ")

    return decode


def main():
    a = parse_args()
    torch.set_num_threads(a.threads)

    import transformers
    import trl
    from datasets import Dataset
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import LlamaForCausalLM, PreTrainedTokenizerFast, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    spm = os.path.join(a.model, "tokenizer.model")
    pieces = spm_pieces(spm)
    decode = decoder(pieces)
    rows = [json.loads(line) for line in open(a.prompts) if line.strip()]
    model = LlamaForCausalLM.from_pretrained(a.model, dtype=torch.float32)
    config = model.config
    bos, eos = config.bos_token_id, config.eos_token_id
    ids = [[bos] + x for x in encode(spm, [r["prompt"] for r in rows])]
    keywords = [
        [k for kw in json.loads(r["ground_truth"])["kwargs"] for k in kw.get("keywords", [])]
        for r in rows
    ]
    for r in rows:
        if json.loads(r["ground_truth"])["instruction_id_list"] != ["keywords:existence"]:
            raise SystemExit("only keywords:existence rows are supported")
    dataset = Dataset.from_dict({
        "prompt": ["".join(f"<{t}>" for t in x) for x in ids],
        "keywords": keywords,
    })

    vocab = {f"<{i}>": i for i in range(config.vocab_size)}
    word_level = Tokenizer(models.WordLevel(vocab, unk_token="<0>"))
    word_level.pre_tokenizer = pre_tokenizers.Split(Regex(r"<\d+>"), behavior="isolated")
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=word_level, pad_token="<0>",
                                        bos_token=f"<{bos}>", eos_token=f"<{eos}>",
                                        unk_token="<0>")

    stats = {"rollout": [], "reward": [], "score": [], "tokens": [], "completions": [],
             "stopped": [], "reward_sum": []}

    def keyword_reward(completions, completion_ids, keywords, **kwargs):
        """IFEval keywords:existence, as Flywheel's verifier: every keyword, case-insensitively."""
        out = []
        for c, kws in zip(completion_ids, keywords):
            text = decode(c).lower()
            out.append(1.0 if all(k.lower() in text for k in kws) else 0.0)
        stats["reward_sum"].append(sum(out))
        return out

    timing_steps = []

    class StepClock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            timing_steps.append(time.perf_counter())

    steps_per_iteration = a.minibatches
    total = a.prompts_per_iteration * a.group_size
    args = GRPOConfig(
        output_dir=a.out,
        max_steps=steps_per_iteration * (a.iterations + 1),
        per_device_train_batch_size=total // a.minibatches,
        gradient_accumulation_steps=1,
        steps_per_generation=a.minibatches,
        num_generations=a.group_size,
        max_completion_length=a.max_new_tokens,
        temperature=a.temperature,
        top_p=1.0,
        top_k=0,
        beta=a.beta,
        epsilon=0.2,
        num_iterations=1,
        loss_type="dapo",
        scale_rewards="group",
        mask_truncated_completions=False,
        learning_rate=a.lr,
        lr_scheduler_type="constant",
        max_grad_norm=1.0,
        weight_decay=0.0,
        adam_beta1=0.9,
        adam_beta2=0.999,
        adam_epsilon=1e-8,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        bf16=False,
        dataloader_num_workers=0,
        use_vllm=False,
        log_completions=False,
        seed=1,
    )
    trainer = GRPOTrainer(model=model, reward_funcs=keyword_reward, args=args,
                          train_dataset=dataset, processing_class=tokenizer,
                          callbacks=[StepClock()])
    # TRL's tokenization must give back the SentencePiece ids.
    if tokenizer(text=[dataset[0]["prompt"]])["input_ids"][0] != ids[0]:
        raise SystemExit("TRL's tokenizer gave back other ids for prompt 0")

    # Phase timers around TRL's own methods (instance attributes shadow the class's).
    generate_single_turn = trainer._generate_single_turn
    calculate_rewards = trainer._calculate_rewards
    generate_and_score = trainer._generate_and_score_completions

    def timed_generate(*args, **kwargs):
        t0 = time.perf_counter()
        out = generate_single_turn(*args, **kwargs)
        stats["rollout"].append(time.perf_counter() - t0)
        completion_ids = out[0]
        stats["tokens"].append(sum(len(c) for c in completion_ids))
        stats["completions"].append(len(completion_ids))
        stats["stopped"].append(sum(1 for c in completion_ids if c and c[-1] == eos))
        return out

    def timed_rewards(*args, **kwargs):
        t0 = time.perf_counter()
        out = calculate_rewards(*args, **kwargs)
        stats["reward"].append(time.perf_counter() - t0)
        return out

    def timed_score(*args, **kwargs):
        t0 = time.perf_counter()
        out = generate_and_score(*args, **kwargs)
        stats["score"].append(time.perf_counter() - t0)
        return out

    trainer._generate_single_turn = timed_generate
    trainer._calculate_rewards = timed_rewards
    trainer._generate_and_score_completions = timed_score

    start = time.perf_counter()
    trainer.train()
    if len(stats["rollout"]) != a.iterations + 1 or len(timing_steps) != len(stats["rollout"]) * steps_per_iteration:
        raise SystemExit(f"expected {a.iterations + 1} generations and "
                         f"{steps_per_iteration * (a.iterations + 1)} steps, got "
                         f"{len(stats['rollout'])} and {len(timing_steps)}")
    ends = [start] + timing_steps[steps_per_iteration - 1 :: steps_per_iteration]
    wall = [ends[i + 1] - ends[i] for i in range(len(ends) - 1)]
    logps = [s - g - r for s, g, r in zip(stats["score"], stats["rollout"], stats["reward"])]
    train = [w - s for w, s in zip(wall, stats["score"])]
    tps = [t / g for t, g in zip(stats["tokens"], stats["rollout"])]

    def med(xs):
        return statistics.median(xs[1:])

    timed = slice(1, None)
    completions = sum(stats["completions"][timed])
    print(json.dumps({
        "impl": "trl",
        "trl": trl.__version__,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "iterations": a.iterations,
        "iteration_s": med(wall),
        "rollout_s": med(stats["rollout"]),
        "reward_s": med(stats["reward"]),
        "logps_s": med(logps),
        "train_s": med(train),
        "gen_tokens_per_sec": med(tps),
        "response_length": sum(stats["tokens"][timed]) / completions,
        "eos_rate": sum(stats["stopped"][timed]) / completions,
        "reward": sum(stats["reward_sum"][timed]) / completions,
        "warmup_iteration_s": wall[0],
        "all_iteration_s": wall,
    }))


if __name__ == "__main__":
    main()
