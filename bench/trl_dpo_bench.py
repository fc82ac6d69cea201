"""TRL's DPOTrainer on exactly the pairs a Flywheel DPO run trained on, for bench/run_vs_trl.sh.

Reads the Flywheel token cache of the pairs (bench/trl_common.py: per example the chosen and
the rejected sequence, prompt untrained) and hands TRL the same token ids as text in a word-level
vocabulary of its own ("<17>" is id 17), so TRL's tokenization reproduces them exactly: prompt =
the untrained prefix, chosen / rejected = the rest (ending in EOS, so TRL adds none). The model
is transformers' LlamaForCausalLM from the same config.json (its own random init); the
reference log-probs are computed once before training (precompute_ref_log_probs, as Flywheel
caches them), so a step is the policy's forward and backward on both rows of each pair, as
Flywheel's. Trains N steps of B pairs with AdamW at the same learning rate, clipping and beta,
and prints one JSON line: the median tokens/s of the timed steps (all but the first; tokens =
both rows of every pair) and the first-step loss. Peak memory is measured from outside (the
driver's wait4).

    python bench/trl_dpo_bench.py --cache FILE.tokens --config config.json --steps 4 \
        --batch 2 --threads 2 [--gradient-checkpointing]
"""

import statistics

import torch

from trl_common import parse_args, read_token_cache, report, step_timer, training_arguments


def as_text(ids):
    return "".join(f"<{t}>" for t in ids)


def main():
    a = parse_args("trl-dpo-bench")
    torch.set_num_threads(a.threads)

    from datasets import Dataset
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    from trl import DPOConfig, DPOTrainer

    config = LlamaConfig.from_json_file(a.config)
    eos = config.eos_token_id if isinstance(config.eos_token_id, int) else config.eos_token_id[0]
    offsets, sequences = read_token_cache(a.cache)
    records = {"prompt": [], "chosen": [], "rejected": []}
    tokens = []
    for e in range(len(offsets) - 1):
        (chosen, chosen_mask), (rejected, rejected_mask) = sequences[offsets[e] : offsets[e] + 2]
        prompt = chosen_mask.index(1)
        if rejected_mask.index(1) != prompt or chosen[:prompt] != rejected[:prompt]:
            raise SystemExit(f"pair {e}: chosen and rejected do not share their prompt")
        if chosen[-1] != eos or rejected[-1] != eos:
            raise SystemExit(f"pair {e}: a completion does not end in EOS ({eos})")
        records["prompt"].append(as_text(chosen[:prompt]))
        records["chosen"].append(as_text(chosen[prompt:]))
        records["rejected"].append(as_text(rejected[prompt:]))
        tokens.append(len(chosen) + len(rejected))

    vocab = {f"<{i}>": i for i in range(config.vocab_size)}
    word_level = Tokenizer(models.WordLevel(vocab, unk_token="<0>"))
    word_level.pre_tokenizer = pre_tokenizers.Split(Regex(r"<\d+>"), behavior="isolated")
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=word_level, pad_token="<0>", eos_token=f"<{eos}>", unk_token="<0>"
    )
    torch.manual_seed(1)
    model = LlamaForCausalLM(config)

    timer, seconds = step_timer()
    args = DPOConfig(
        **training_arguments(a),
        beta=a.beta,
        loss_type=["sigmoid"],
        precompute_ref_log_probs=True,
        max_length=None,
    )
    trainer = DPOTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_dict(records),
        processing_class=tokenizer,
        callbacks=[timer],
    )
    # TRL's own tokenization must give back Flywheel's ids.
    first = trainer.train_dataset[0]
    chosen_ids = first["prompt_ids"] + first["chosen_ids"]
    want = sequences[offsets[0]][0]
    if chosen_ids != want:
        raise SystemExit("TRL tokenized pair 0 differently from Flywheel's cache")
    result = trainer.train()
    report(a, trainer, result, seconds, a.batch * statistics.mean(tokens))

if __name__ == "__main__":
    main()
