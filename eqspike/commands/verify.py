"""``eqspike verify``: the constrained-random co-simulation campaign (sim/verify, docs/cosim.md)."""

from __future__ import annotations

import json

NAME = "verify"
HELP = ("constrained-random verification: random designs in Verilator against the golden model every tick, "
        "coverage bins, shrinking and replay folders")


def add_arguments(p) -> None:
    p.add_argument("--designs", type=int, default=10, help="designs to run at least (default 10); more are drawn "
                   "while a coverage bin is missing, up to --max-designs")
    p.add_argument("--max-designs", type=int, default=None,
                   help="most designs to draw while coverage is incomplete (default max(4 x --designs, --designs + 20))")
    p.add_argument("--seed", type=int, default=0, help="campaign seed (design i is drawn from (seed, i))")
    p.add_argument("--budget", type=float, default=None, metavar="MINUTES",
                   help="start no design after this many minutes (default: no limit)")
    p.add_argument("--samples", type=int, default=3, help="inference samples per design (default 3)")
    p.add_argument("--train-samples", type=int, default=6, help="TRAIN samples per learning design (default 6)")
    p.add_argument("--plant", default=None, choices=("v_wrap", "s_floor", "queue_full", "lfsr_draw"),
                   help="build every design with this planted RTL bug (the campaign must catch it)")
    p.add_argument("--out", default="out/verify", metavar="DIR", help="where replay folders go (default out/verify)")
    p.add_argument("--json", default=None, metavar="PATH", help="write the summary, coverage and every design's row")
    p.add_argument("--jobs", type=int, default=1,
                   help="designs run at once on a local Ray (default 1: in this process, one after another)")
    p.add_argument("--address", default=None, metavar="HOST:PORT", help="run the designs on this Ray cluster")
    p.add_argument("--shrink-runs", type=int, default=8,
                   help="most shrinking runs for a failing design (default 8; 0: no shrinking)")
    p.add_argument("--optimise", action="store_true",
                   help="compile each Verilator model at -Os (slower build, faster run: many samples per design)")
    p.add_argument("--replay", default=None, metavar="DIR",
                   help="rerun the design of a replay folder (or any design folder) and report")


def _check(args) -> None:
    for name in ("designs", "samples", "jobs"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be >= 1, not {getattr(args, name)}")
    for name in ("train_samples", "shrink_runs"):
        if getattr(args, name) < 0:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 0, not {getattr(args, name)}")
    if args.budget is not None and not args.budget > 0:
        raise ValueError(f"--budget must be > 0 minutes, not {args.budget}")
    if args.max_designs is not None and args.max_designs < args.designs:
        raise ValueError(f"--max-designs must be >= --designs ({args.designs}), not {args.max_designs}")
    from ._common import check_output_dir, check_output_file
    check_output_file(args.json, "--json")
    check_output_dir(args.out, "--out")


def replay(args) -> int:
    from sim.verify.design import Design
    from sim.verify.run import run_design

    d = Design.load(args.replay)
    print(f"replaying {d.describe()}")
    r = run_design(d, optimise=args.optimise)
    if r["ok"]:
        print(f"PASSES: bit-exact, {r['ticks']} ticks, {r['checked_registers']:,} register values, "
              f"{r['train_values']:,} parameter values after TRAIN")
        return 0
    print(f"FAILS (reproduced): {r['failure']}")
    return 1


def run(args) -> int:
    if args.replay:
        return replay(args)
    _check(args)
    from sim.verify.campaign import run_campaign, write_json

    rep = run_campaign(designs=args.designs, seed=args.seed, budget=args.budget, samples=args.samples,
                       train_samples=args.train_samples, plant=args.plant, out_dir=args.out, jobs=args.jobs,
                       address=args.address, shrink_runs=args.shrink_runs, optimise=args.optimise,
                       max_designs=args.max_designs, json_path=args.json)
    print(rep.summary())
    print(rep.coverage())
    if args.json:
        write_json(args.json, rep)
        print(f"wrote {args.json}")
    return 1 if rep.mismatches or not rep.coverage_complete else 0
