"""``eqspike train --seeds 0-3``: the same recipe trained once per seed (experiments.seeds), on
the executor (``--jobs``, ``--address``); prints per-seed accuracies, mean, min and max."""

from __future__ import annotations

from pathlib import Path

__all__ = ["run_seeds_command"]


def run_seeds_command(args, train) -> int:
    """Train ``args.seeds`` with the single-run function ``train``; writes OUT/seeds.md, OUT/seeds.json."""
    from experiments.seeds import run_seeds, seeds_table, summarise
    from runtime.executor import parse_seeds
    from runtime.progress import write

    from ._common import check_output_dir, check_output_file, write_json
    from ._executor import executor_from

    seeds = parse_seeds(args.seeds)
    dataset = args.dataset or ("idx" if args.data_dir else "digits")
    out = Path(args.out or f"out/train-{dataset}-{args.mode}-seeds")
    check_output_dir(out, "--out")
    check_output_file(args.json, "--json")
    executor = executor_from(args)
    print(f"training seeds {', '.join(map(str, seeds))} of one recipe on {executor.describe()}; "
          f"runs in {out}/seed-S (each with its train.log)")

    def show(r):
        if "error" in r:
            write(f"seed {r['seed']}: FAILED: {r['error']}")
        else:
            write(f"seed {r['seed']}: test acc {100 * r['test_accuracy']:.2f}%, train acc "
                  f"{100 * r['train_accuracy']:.2f}%, {r['seconds']} s")

    rows = run_seeds(train, args, seeds, out, executor, progress=show)
    summary = summarise(rows)
    table = seeds_table(rows, summary)
    print(table)
    out.mkdir(parents=True, exist_ok=True)
    (out / "seeds.md").write_text(table + "\n")
    result = {"per_seed": rows, **summary}
    write_json(out / "seeds.json", result)
    write_json(args.json, result)
    if "test_accuracy" in summary:
        t = summary["test_accuracy"]
        print(f"test accuracy over {len(summary['seeds'])} seeds: mean {100 * t['mean']:.2f}%, "
              f"min {100 * t['min']:.2f}%, max {100 * t['max']:.2f}%; wrote {out / 'seeds.md'}, {out / 'seeds.json'}")
    return 1 if summary["failed"] else 0
