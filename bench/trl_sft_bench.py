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

import statistics

import torch

from trl_common import parse_args, read_token_cache, report, step_timer, training_arguments


def main():
    a = parse_args("trl-sft-bench")
    torch.set_num_threads(a.threads)

    from datasets import Dataset
    from tokenizers import Tokenizer, models
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    from trl import SFTConfig, SFTTrainer

    _, sequences = read_token_cache(a.cache)  # one sequence per SFT example
    rows = [(ids, [t if m else -100 for t, m in zip(ids, mask)]) for ids, mask in sequences]
    dataset = Dataset.from_dict({"input_ids": [r[0] for r in rows], "labels": [r[1] for r in rows]})
    config = LlamaConfig.from_json_file(a.config)
    torch.manual_seed(1)
    model = LlamaForCausalLM(config)
    # The data is tokenized already; the trainer only needs a pad token (id 0, as Flywheel pads).
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel({"<pad>": 0, "<unk>": 1}, unk_token="<unk>")),
        pad_token="<pad>",
    )

    timer, seconds = step_timer()
    args = SFTConfig(
        **training_arguments(a),
        max_length=None,
    )
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=dataset, processing_class=tokenizer, callbacks=[timer]
    )
    result = trainer.train()
    # Tokens per step as the batches held them (rows are drawn in the sampler's order).
    lengths = sorted(len(r[0]) for r in rows)
    tokens_per_step = a.batch * statistics.mean(lengths)
    report(a, trainer, result, seconds, tokens_per_step)

if __name__ == "__main__":
    main()
