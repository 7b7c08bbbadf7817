"""``eqspike verilog``: Verilog of the network top for a config, with the config JSON beside it."""

from __future__ import annotations

from pathlib import Path

NAME = "verilog"
HELP = "generate the network's Verilog (config JSON written beside it)"

#: Most synapses (weights, sum of n_l * n_{l+1}) generated. Measured on one core: 784-500-10
#: (397k synapses) 14 s and 12 MB of Verilog, 784-2000-10 (1.59M) 113 s and 48 MB: the time grows
#: about as synapses^1.5, and no supported FPGA holds even the smaller one's weights on chip.
MAX_SYNAPSES = 1 << 20


def add_arguments(parser):
    parser.add_argument("--config", metavar="CFG.json", help="config file (default: the default config)")
    parser.add_argument("-o", "--output", metavar="OUT.v", default="eqspike_top.v",
                        help="Verilog file to write (default: %(default)s); OUT.json gets the config "
                             "(an OUT.json holding a different config is not replaced without --force)")
    parser.add_argument("--force", action="store_true",
                        help="replace OUT.json even if it holds a different config")


def check_size(cfg) -> int:
    """The synapse count of ``cfg``; refuse one above :data:`MAX_SYNAPSES` before generating."""
    synapses = sum(a * b for a, b in zip(cfg.layers[:-1], cfg.layers[1:]))
    if synapses > MAX_SYNAPSES:
        raise ValueError(f"layers {'-'.join(map(str, cfg.layers))} have {synapses:,} synapses, more than "
                         f"the {MAX_SYNAPSES:,} this generator takes (784-500-10 has 397,000)")
    return synapses


def _check_config_file(path: Path, cfg, force: bool) -> None:
    """OUT.json may be replaced only by the same config (or with --force): it may be a
    checkpoint's config.json or a config some other build reads."""
    from golden_model.config import ConfigError, EqSpikeConfig
    if force or not path.exists():
        return
    try:
        same = EqSpikeConfig.load(path) == cfg
    except ConfigError:
        same = False
    if not same:
        raise ValueError(f"{path} exists and holds a different config (or none); pass --force to "
                         f"replace it, or choose another -o")


def run(args) -> int:
    from golden_model.config import EqSpikeConfig, default_config
    from rtl.verilog import generate

    from ._common import check_lanes, check_output_file

    cfg = EqSpikeConfig.load(args.config) if args.config else default_config()
    out = Path(args.output)
    if out.suffix != ".v":
        raise ValueError(f"output must end in .v, not {str(out)!r}")
    check_output_file(out, "output")
    check_output_file(out.with_suffix(".json"), "config output")
    _check_config_file(out.with_suffix(".json"), cfg, args.force)
    check_lanes(cfg)
    synapses = check_size(cfg)
    if synapses > 100_000:
        # say so before a long silent run (estimate from the measurements above)
        print(f"generating Verilog for {synapses:,} synapses (roughly {14 * (synapses / 4e5) ** 1.5:.0f} s) ...",
              flush=True)
    text = generate(cfg)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    cfg.save(out.with_suffix(".json"))
    print(f"wrote {out} ({len(text.splitlines())} lines) and {out.with_suffix('.json')}")
    return 0
